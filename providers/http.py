"""The one network seam: the shared ``httpx.AsyncClient`` and transport-error translation.

One client is created at start-up and passed to every adapter: a :class:`ProviderClient` on the
lean aiohttp transport of :mod:`providers.transport` (or on an injected one, ``MockTransport``
in tests). Adapters send through a :class:`Caller`, which hands a prepared ``httpx.Request``
straight to that transport: httpx's client machinery (merging, auth, redirects, cookies, event
hooks) costs ~120 µs of CPU a request and provider calls need none of it. Lower-level httpx
errors are turned into :class:`providers.errors.ProviderUnavailable` here and nowhere else, and
HTTP status codes common to every vendor are mapped by :func:`raise_for_common_status`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
)
from providers.ratelimit import pacing_trace_config
from providers.transport import AiohttpTransport

USER_AGENT = "chatops-bridge/0.1"
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0
MAX_CACHED = 256


class ProviderClient(httpx.AsyncClient):
    """The shared client: httpx's whole API, plus the transport it sends through.

    Environment proxies are the transport's business (it reads them once), so httpx itself
    does not mount transports of its own for them.
    """

    def __init__(
        self, *, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout, user_agent: str
    ) -> None:
        super().__init__(
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=False,
            trust_env=False,
        )
        self.transport = transport

    async def send_direct(self, request: httpx.Request) -> httpx.Response:
        """Send a fully built request over the transport, skipping the client's machinery.

        The request must carry every header itself (see :class:`Caller`); the client's
        timeout applies unless the request has its own ``timeout`` extension. The response
        comes back read.
        """
        if "timeout" not in request.extensions:
            request.extensions["timeout"] = self.timeout.as_dict()
        response = await self.transport.handle_async_request(request)
        response.request = request
        await response.aread()
        return response


def make_http_client(
    *,
    timeout: float = 20.0,
    connect_timeout: float = 5.0,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ProviderClient:
    """Create the shared client every provider adapter uses.

    Without ``transport`` the requests go over aiohttp (:class:`AiohttpTransport`): the same
    httpx API, but httpx's own pool costs ~2 ms of CPU a request once 10–50 are in flight,
    which caps a bulk send near 500 requests/s (see ``bench/fanout.py``).

    Args:
        timeout: read/write/pool timeout in seconds.
        connect_timeout: how long to wait for a connection.
        max_connections: the pool's size; bulk sends are bounded below this.
        transport: a custom transport (``httpx.MockTransport`` in tests).

    """
    return ProviderClient(
        transport=transport
        or AiohttpTransport(
            max_connections=max_connections, trace_configs=[pacing_trace_config()]
        ),
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        user_agent=USER_AGENT,
    )


def quiet_http_logging() -> None:
    """Keep httpx/httpcore from logging request URLs: the bot token is part of them."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Caller:
    """Sends one adapter's requests with its fixed headers, translating transport failures.

    On a :class:`ProviderClient` the request is built here, with exactly the headers httpx
    would send (``Host``, the client's defaults, ``headers``, ``Content-Type``,
    ``Content-Length``), and handed to the transport (:meth:`ProviderClient.send_direct`).
    Building it through the client costs ~40 µs, most of it re-parsing the same URL and
    re-normalising the same headers; here parsed URLs and header lists are kept. Any other
    ``httpx.AsyncClient`` gets the request through its ordinary ``request`` method.

    Args:
        client: the shared client.
        provider: display name for error messages.
        headers: headers every request of this adapter carries (its credentials, Accept).

    """

    def __init__(
        self, client: httpx.AsyncClient, *, provider: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self._client = client
        self._provider = provider
        self._headers = dict(headers or {})
        self._direct = client if isinstance(client, ProviderClient) else None
        self._urls: dict[str, httpx.URL] = {}
        self._raw: dict[tuple[bytes, str | None], list[tuple[bytes, bytes]]] = {}

    async def send(
        self, method: str, url: str, *, content: bytes = b"", content_type: str | None = None
    ) -> httpx.Response:
        """Send one request and return the read response.

        Raises:
            ProviderUnavailable: the transport failed; ``maybe_sent`` as in
                :func:`send_request`.

        """
        try:
            if self._direct is None:
                headers = self._headers
                if content_type is not None:
                    headers = {**headers, "Content-Type": content_type}
                return await self._client.request(method, url, headers=headers, content=content)
            request = self._request(method, url, content, content_type)
            return await self._direct.send_direct(request)
        except httpx.TransportError as exc:
            raise unavailable(exc, provider=self._provider) from exc

    def _request(
        self, method: str, url: str, content: bytes, content_type: str | None
    ) -> httpx.Request:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url)
            if len(self._urls) >= MAX_CACHED:  # per-message URLs (status) must not pile up
                self._urls.clear()
            self._urls[url] = parsed
        key = (parsed.netloc, content_type)
        raw = self._raw.get(key)
        if raw is None:
            raw = self._raw[key] = self._raw_headers(key[0], content_type)
        if content or method in ("POST", "PUT", "PATCH"):
            raw = [*raw, (b"Content-Length", str(len(content)).encode("ascii"))]
        request = httpx.Request(method, parsed, headers=raw, stream=httpx.ByteStream(content))
        request.read()  # in memory already: makes ``request.content`` available, as httpx does
        return request

    def _raw_headers(self, netloc: bytes, content_type: str | None) -> list[tuple[bytes, bytes]]:
        assert self._direct is not None
        merged = httpx.Headers({"Host": netloc.decode("ascii")})
        merged.update(self._direct.headers)
        merged.update(self._headers)
        if content_type is not None:
            merged["Content-Type"] = content_type
        return merged.raw


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
    except httpx.TransportError as exc:
        raise unavailable(exc, provider=provider) from exc


def unavailable(exc: httpx.TransportError, *, provider: str) -> ProviderUnavailable:
    """The ``ProviderUnavailable`` for a transport failure.

    A failure to connect (or to get a pooled connection in time) proves nothing was sent;
    anything later may have reached the provider, so ``maybe_sent`` is set.
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderUnavailable(
            f"{provider} could not be reached ({type(exc).__name__}).", provider=provider
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailable(
            f"{provider} did not answer in time.", provider=provider, maybe_sent=True
        )
    return ProviderUnavailable(
        f"The connection to {provider} broke off ({type(exc).__name__}).",
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
