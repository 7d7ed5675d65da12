"""A lean httpx transport over one shared ``aiohttp.ClientSession``.

httpx keeps the API the adapters and their ``MockTransport`` tests use; aiohttp does the
network, because httpx's own pool costs ~2 ms of CPU a request with 10–50 in flight. Compared
with the general httpx-aiohttp bridge this one does only what a provider call needs (~30 % less
CPU under ``AsyncClient.post``; with the adapters' direct path of :mod:`providers.http` a
provider call costs ~1.3–1.5 × a plain aiohttp request, see ``bench/fanout.py``):

- headers go to aiohttp as a plain list (the bridge copied httpx's ``Headers`` key by key, an
  O(n²) walk), with their original spelling (``APIKey``, not ``apikey``);
- no cookie jar (``DummyCookieJar``): provider APIs are stateless and httpx builds cookie
  objects for every response otherwise;
- the body is read fully before returning (a provider's answers are small), so the connection
  goes back to the pool at once;
- httpx's ``timeout`` extension maps to aiohttp's per-request timeouts (pool → ``connect``,
  connect → ``sock_connect``, read → ``sock_read``).

aiohttp's errors become httpx's, keeping the one distinction callers rely on: nothing can have
been sent (:class:`httpx.ConnectError`, :class:`httpx.ConnectTimeout`) versus the request may
have reached the server (read timeouts, dropped connections, unreadable answers).
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import httpx
from aiohttp.helpers import ProxyInfo, proxies_from_env

# Most specific first: ConnectionTimeoutError is a ServerTimeoutError, ClientConnectorError a
# ClientOSError, and ClientResponseError covers a status line or headers that are not HTTP.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerFingerprintMismatch, httpx.ConnectError),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.ReadError),
    (OSError, httpx.ReadError),
)


def _translated(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for one of aiohttp's (or the socket's)."""
    target: type[httpx.TransportError] = httpx.ReadError
    for source, mapped in _ERRORS:
        if isinstance(exc, source):
            target = mapped
            break
    return target(str(exc) or type(exc).__name__, request=request)


def _text_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The request's headers as aiohttp takes them, spelled as given."""
    raw = headers.raw
    try:
        return [(k.decode("ascii"), v.decode("ascii")) for k, v in raw]
    except UnicodeDecodeError:
        encoding = headers.encoding
        return [(k.decode(encoding), v.decode(encoding)) for k, v in raw]


def _response(
    status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes, request: httpx.Request
) -> httpx.Response:
    """An ``httpx.Response`` already holding ``body``.

    httpx reads even an in-memory body through its streaming decoder (~10 µs, a tenth of the
    whole request). A body without ``Content-Encoding`` needs no decoding, so it is stored as
    httpx itself stores a read body (``_content``, stable across httpx 0.2x; httpx is pinned
    below 0.29 and every test over a socket reads through here). Encoded bodies take the
    ordinary path, which decodes them.
    """
    if any(name.lower() == b"content-encoding" for name, _ in headers):
        return httpx.Response(status, headers=headers, content=body, request=request)
    response = httpx.Response(
        status, headers=headers, stream=httpx.ByteStream(body), request=request
    )
    response._content = body
    response.is_stream_consumed = True
    response.is_closed = True
    return response


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over one ``aiohttp.ClientSession``, opened on first use.

    Args:
        max_connections: the pool's size, all hosts together.
        keepalive_expiry: seconds an idle connection is kept.
        ssl_context: TLS settings; ``httpx.create_ssl_context()`` (honours ``SSL_CERT_FILE``)
            when omitted.
        trust_env: use ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` as httpx would (read once).
        trace_configs: aiohttp request hooks (the pacer's, see ``providers.ratelimit``).

    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        trust_env: bool = True,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self._trace_configs = list(trace_configs)
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._env_proxies: Mapping[str, ProxyInfo] = proxies_from_env() if trust_env else {}
        self._proxy_for: dict[tuple[str, str], ProxyInfo | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Loading the CA bundle takes ~20 ms: on first use, not while the bot starts.
        ssl_context = self._ssl if self._ssl is not None else httpx.create_ssl_context()
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=self._keepalive_expiry,
            ssl=ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            timeout=aiohttp.ClientTimeout(),
            trace_configs=self._trace_configs or None,
        )
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        raw: Mapping[str, float | None] = request.extensions.get("timeout") or {}
        key = (raw.get("pool"), raw.get("connect"), raw.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(connect=key[0], sock_connect=key[1], sock_read=key[2])
            self._timeouts[key] = timeout
        return timeout

    def _proxy(self, url: httpx.URL) -> ProxyInfo | None:
        key = (url.scheme, url.host)
        if key not in self._proxy_for:
            info = self._env_proxies.get(url.scheme)
            if info is not None and urllib.request.proxy_bypass(key[1]):
                info = None
            self._proxy_for[key] = info
        return self._proxy_for[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response with the body already read."""
        session = self._session if self._session is not None else self._open()
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        headers = _text_headers(request.headers)
        options: dict[str, Any] = {}
        if self._env_proxies:
            proxy = self._proxy(request.url)
            if proxy is not None:
                options["proxy"] = proxy.proxy
                if proxy.proxy_auth is not None:
                    options["proxy_headers"] = {"Proxy-Authorization": proxy.proxy_auth.encode()}
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=self._timeout(request),
                **options,
            ) as answer:
                body = await answer.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _translated(exc, request) from exc
        return _response(answer.status, answer.raw_headers, body, request)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
