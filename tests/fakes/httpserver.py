"""Serve an ``httpx`` handler (a fake API) as a real HTTP server on 127.0.0.1.

The fakes are written as ``httpx.MockTransport`` handlers. This module puts the same handler
behind aiohttp so code that opens real sockets (a subprocess, a client with its own transport)
can talk to it::

    async with serve(fake) as base_url:            # in a test's event loop
        ...
    with ServerThread(fake) as server:             # on its own loop in a thread
        subprocess.run([...], env={"NUSASMS_BASE_URL": server.base_url + "/nusasms_api/1.0"})

A handler that raises an ``httpx.TransportError`` (``fake.raise_next(...)``) makes the server
drop the connection without an answer, which is what a client sees when the network fails
after the request was sent. Any other exception becomes aiohttp's plain 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType

import httpx
from aiohttp import web
from multidict import CIMultiDict

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

# aiohttp computes these itself; copying them from the handler's response would corrupt framing.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


async def to_httpx_request(request: web.Request) -> httpx.Request:
    """Rebuild an aiohttp request as the ``httpx.Request`` a MockTransport handler expects."""
    body = await request.read()
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    headers = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers
    ]
    return httpx.Request(request.method, url, headers=headers, content=body)


async def to_aiohttp_response(response: httpx.Response) -> web.Response:
    """Turn a handler's ``httpx.Response`` into what aiohttp sends."""
    body = await response.aread()
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in response.headers.multi_items():
        if name.lower() not in _HOP_BY_HOP:
            headers.add(name, value)
    return web.Response(status=response.status_code, body=body, headers=headers)


def _make_view(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def view(request: web.Request) -> web.StreamResponse:
        incoming = await to_httpx_request(request)
        try:
            result = handler(incoming)
            response = await result if inspect.isawaitable(result) else result
        except httpx.TransportError:
            # Simulated network failure: hang up without answering.
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError from None
        return await to_aiohttp_response(response)

    return view


@asynccontextmanager
async def serve(handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``handler`` over HTTP while the block runs; yields the base URL.

    Args:
        handler: a ``MockTransport``-style handler, sync or async.
        host: the address to bind; keep it on loopback.
        port: the port to bind; 0 lets the OS choose a free one.

    """
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _make_view(handler))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()


class ServerThread:
    """Run :func:`serve` on its own event loop in a daemon thread (for subprocess tests).

    Use as a context manager; ``base_url`` is set once the server listens. The handler is
    called on the server's thread, so it must be safe to share with the test's thread (the
    fakes take a lock).
    """

    def __init__(
        self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._timeout = timeout
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __enter__(self) -> ServerThread:
        self._thread = threading.Thread(target=self._run, name="fake-http-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError("the fake HTTP server did not start in time")
        if self._error is not None:
            self._thread.join(self._timeout)
            raise RuntimeError("the fake HTTP server failed to start") from self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call twice."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(self._timeout)
            if thread.is_alive():
                raise TimeoutError("the fake HTTP server did not stop in time")
        if self._error is not None:
            raise RuntimeError("the fake HTTP server failed") from self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with serve(self._handler, host=self._host, port=self._port) as base_url:
                self.base_url = base_url
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to the test's thread by __enter__/stop
            self._error = exc
        finally:
            self._ready.set()
