"""The one network seam: the shared ``httpx.AsyncClient`` and transport-error translation.

One plain ``httpx.AsyncClient`` is created at start-up by :func:`make_http_client` and passed to
every adapter (tests inject ``httpx.MockTransport``). Adapters use httpx's public extension
points only: credentials as ``httpx.Auth`` subclasses, pacing through the ``trace`` request
extension (:mod:`providers.ratelimit`), logging through an event hook. Lower-level httpx errors
are turned into :class:`providers.errors.ProviderUnavailable` here (:func:`send_request`,
:func:`unavailable`) and nowhere else, and HTTP status codes common to every vendor are mapped
by :func:`raise_for_common_status`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from i18n import _
from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
)

USER_AGENT = "chatops-bridge/0.1"
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0
KEEPALIVE_EXPIRY = 5.0

log = logging.getLogger(__name__)


def make_http_client(
    *,
    timeout: float = 20.0,
    connect_timeout: float = 5.0,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Create the shared client every provider adapter uses.

    Without ``transport`` it is httpx's own (HTTP/1.1 over httpcore), honouring
    ``HTTP(S)_PROXY``/``NO_PROXY`` and ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from the environment.
    An injected transport is the whole network (tests): the environment is ignored then, so a
    proxy variable cannot route requests around it.

    Args:
        timeout: read/write/pool timeout in seconds.
        connect_timeout: how long to wait for a connection.
        max_connections: the pool's size; bulk sends are bounded below this.
        transport: a custom transport (``httpx.MockTransport`` in tests).

    """
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=transport is None,
        event_hooks={"response": [log_answer]},
    )


async def log_answer(response: httpx.Response) -> None:
    """Event hook: log each provider answer at DEBUG, without the query string.

    Only the method, host, path and status are logged: an SMS ``command`` URL carries the
    account's password in its query, which must never reach a log.
    """
    if log.isEnabledFor(logging.DEBUG):
        url = response.request.url
        log.debug(
            "%s %s%s -> HTTP %d", response.request.method, url.host, url.path, response.status_code
        )


def quiet_http_logging() -> None:
    """Keep httpx/httpcore from logging request URLs: the bot token is part of them."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def send_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request, translating transport failures into ``ProviderUnavailable``.

    ``kwargs`` go to ``client.request`` unchanged. A failure before the request could have
    left this machine (no connection, pool exhausted) has ``maybe_sent=False``; one after it
    was written (read timeout, dropped connection) has ``maybe_sent=True``, because the
    provider may have acted on it.
    """
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise unavailable(exc, provider=provider) from exc


def unavailable(exc: httpx.TransportError, *, provider: str) -> ProviderUnavailable:
    """The ``ProviderUnavailable`` for a transport failure.

    A failure to connect (or to get a pooled connection in time) proves nothing was sent;
    anything later may have reached the provider, so ``maybe_sent`` is set.
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderUnavailable(
            _("{provider} could not be reached ({error}).").format(
                provider=provider, error=type(exc).__name__
            ),
            provider=provider,
            not_sent=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailable(
            _("{provider} did not answer in time.").format(provider=provider),
            provider=provider,
            maybe_sent=True,
        )
    return ProviderUnavailable(
        _("The connection to {provider} broke off ({error}).").format(
            provider=provider, error=type(exc).__name__
        ),
        provider=provider,
        maybe_sent=True,
    )


def retry_after_seconds(response: httpx.Response) -> float:
    """Read ``Retry-After`` (seconds) from a 429, falling back to a sane default."""
    raw = response.headers.get("Retry-After", "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return min(max(value, 0.0), MAX_RETRY_AFTER)


def raise_for_common_status(response: httpx.Response, *, provider: str, detail: str) -> None:
    """Raise the project error for status codes whose meaning every vendor shares.

    Args:
        response: the provider's answer.
        provider: display name for messages.
        detail: the provider's own error text, already extracted from the body.

    """
    status = response.status_code
    if status in (401, 403):
        refused = (
            _("{provider} refused the credentials: {detail}.")
            if detail
            else _("{provider} refused the credentials.")
        )
        raise AuthError(
            refused.format(provider=provider, detail=detail), provider=provider, code=str(status)
        )
    if status == 429:
        raise RateLimited(
            _("{provider} is rate limiting requests.").format(provider=provider),
            provider=provider,
            retry_after=retry_after_seconds(response),
            code="429",
        )
    if status == 503:
        down = (
            _("{provider} is temporarily unavailable (HTTP 503): {detail}.")
            if detail
            else _("{provider} is temporarily unavailable (HTTP 503).")
        )
        raise ProviderUnavailable(
            down.format(provider=provider, detail=detail),
            provider=provider,
            code="503",
        )
    if status >= 500:
        failed = (
            _("{provider} failed on its side (HTTP {status}): {detail}.")
            if detail
            else _("{provider} failed on its side (HTTP {status}).")
        )
        raise ProviderUnavailable(
            failed.format(provider=provider, status=status, detail=detail),
            provider=provider,
            maybe_sent=True,
            code=str(status),
        )


def json_body(response: httpx.Response, *, provider: str) -> Any:
    """Decode a JSON body or raise ``UnexpectedResponse`` saying what came back instead."""
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponse(
            _("{provider} answered HTTP {status} with a body that is not JSON.").format(
                provider=provider, status=response.status_code
            ),
            provider=provider,
        ) from exc
