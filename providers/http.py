"""The one network seam: the shared ``httpx.AsyncClient`` and transport-error translation.

One client is created at start-up and passed to every adapter. Lower-level httpx errors are
turned into :class:`providers.errors.ProviderUnavailable` here and nowhere else, and HTTP status
codes common to every vendor are mapped by :func:`raise_for_common_status`.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient

from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
)
from providers.ratelimit import pacing_trace_config

USER_AGENT = "chatops-bridge/0.1"
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0


def make_http_client(
    *,
    timeout: float = 20.0,
    connect_timeout: float = 5.0,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Create the shared client every provider adapter uses.

    Without ``transport`` the requests go over aiohttp (the httpx-aiohttp transport): the
    same httpx API, but httpx's own pool costs ~2 ms of CPU a request once 10–50 are in
    flight, which caps a bulk send near 500 requests/s (see ``bench/fanout.py``).

    Args:
        timeout: read/write/pool timeout in seconds.
        connect_timeout: how long to wait for a connection.
        max_connections: the pool's size; bulk sends are bounded below this.
        transport: a custom transport (``httpx.MockTransport`` in tests).

    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return HttpxAiohttpClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=limits,
        headers={"User-Agent": USER_AGENT},
        transport=transport if transport is not None else _paced_transport(limits),
        follow_redirects=False,
    )


def _paced_transport(limits: httpx.Limits) -> AiohttpTransport:
    """The httpx-aiohttp transport, plus the hooks of ``providers.ratelimit``.

    They tell a paced request's pacer when its bytes went out and its answer came back.
    """
    transport = AiohttpTransport(limits=limits)

    def session() -> aiohttp.ClientSession:
        # What ``AiohttpTransport.get_client`` builds, with the trace hooks added.
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=transport.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, trace_configs=[pacing_trace_config()])

    transport.client = session
    return transport


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

    A failure before the request could have left this machine (no connection, pool exhausted)
    has ``maybe_sent=False``; one after it was written (read timeout, dropped connection) has
    ``maybe_sent=True``, because the provider may have acted on it.
    """
    try:
        return await client.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        if _lost_after_sending(exc):
            raise ProviderUnavailable(
                f"The connection to {provider} broke off ({type(exc.__cause__).__name__}).",
                provider=provider,
                maybe_sent=True,
            ) from exc
        raise ProviderUnavailable(
            f"{provider} could not be reached ({type(exc).__name__}).", provider=provider
        ) from exc
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(
            f"{provider} did not answer in time.", provider=provider, maybe_sent=True
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"The connection to {provider} broke off ({type(exc).__name__}).",
            provider=provider,
            maybe_sent=True,
        ) from exc


def _lost_after_sending(exc: httpx.TransportError) -> bool:
    """Whether a "connect" error really is a connection lost after the request went out.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``,
    including a server that dropped the connection mid-request, which may have acted on it.
    Only a failure to connect (or to get a connection in time) proves nothing was sent.
    """
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(
        cause, aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError
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
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        raise AuthError(
            f"{provider} refused the credentials{suffix}.", provider=provider, code=str(status)
        )
    if status == 429:
        raise RateLimited(
            f"{provider} is rate limiting requests.",
            provider=provider,
            retry_after=retry_after_seconds(response),
            code="429",
        )
    if status == 503:
        raise ProviderUnavailable(
            f"{provider} is temporarily unavailable (HTTP 503){suffix}.",
            provider=provider,
            code="503",
        )
    if status >= 500:
        raise ProviderUnavailable(
            f"{provider} failed on its side (HTTP {status}){suffix}.",
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
            f"{provider} answered HTTP {response.status_code} with a body that is not JSON.",
            provider=provider,
        ) from exc
