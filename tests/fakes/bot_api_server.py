"""A real HTTP fake of the Telegram Bot API on 127.0.0.1, for end-to-end tests.

The bot under test (e.g. a subprocess started with ``TELEGRAM_BASE_URL=server.base_url`` and
``TELEGRAM_BASE_FILE_URL=server.file_url``) talks to it exactly like to ``api.telegram.org``:
``POST {base_url}{token}/{method}`` with a form-encoded or multipart body (JSON bodies work too)
and ``GET {file_url}{token}/{file_path}`` for downloads. Answers come from the same
:class:`~tests.fakes.telegram.FakeTelegram` state as the offline request layer, and
``getUpdates`` long-polls like the real server::

    async with BotApiServer(token="123:ABC") as server:
        server.push_update(private_message("/ping"))
        call = await server.wait_for("sendMessage", lambda c: c.params["text"] == "pong")

``before_call`` (optional) sees every call before it is answered, with the time it arrived,
and may hold it, or hang up without answering it (returning False): as if the network lost
the request before Telegram saw it (tests/test_crash_notices.py kills the bot that way).

:class:`ThreadedBotApiServer` runs the same server on its own event loop in a thread, for
synchronous tests (``with ThreadedBotApiServer() as server: ...``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, hdrs, web

from tests.fakes.telegram import (
    DEFAULT_TOKEN,
    Call,
    FakeTelegram,
    UploadedFile,
    decode_form_value,
    normalize_params,
)

__all__ = ["BotApiServer", "ThreadedBotApiServer"]

MAX_BODY_BYTES = 64 * 1024 * 1024
_UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}
# (method, params, arrival time on time.monotonic()) → answer it (True) or hang up (False).
BeforeCall = Callable[[str, dict[str, Any], float], Awaitable[bool]]
_NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}


def _encode(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return {"file_name": value.file_name, "mime_type": value.mime_type}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(
        body, status=status, dumps=lambda data: json.dumps(data, default=_encode)
    )


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Decode query, JSON, form-urlencoded and multipart parameters of one Bot API call."""
    params: dict[str, Any] = {k: decode_form_value(k, v) for k, v in request.query.items()}
    uploads: dict[str, UploadedFile] = {}
    if request.content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            decoded = json.loads(raw)
            if not isinstance(decoded, dict):
                raise ValueError("JSON body must be an object")
            params.update(decoded)
    elif request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                content = await part.read(decode=True)
                mime = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                uploads[part.name] = UploadedFile(part.filename, bytes(content), mime)
            else:
                params[part.name] = decode_form_value(part.name, await part.text())
    else:
        raw = await request.read()
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        params.update({k: decode_form_value(k, v) for k, v in pairs})
    return normalize_params(params, uploads)


class BotApiServer:
    """The fake Bot API as an aiohttp server on ``127.0.0.1`` (a free port unless given).

    ``state`` (a :class:`FakeTelegram`, created if not given) answers every call; the server only
    adds HTTP: token checking (401 ``Unauthorized``), body decoding, long polling and files.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        state: FakeTelegram | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.state = state if state is not None else FakeTelegram(token=token)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.before_call: BeforeCall | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` for PTB / ``TELEGRAM_BASE_URL``: ``http://127.0.0.1:PORT/bot``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def file_url(self) -> str:
        """The ``base_file_url`` / ``TELEGRAM_BASE_FILE_URL``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"http://{self.host}:{self.port}/file/bot"

    def env(self) -> dict[str, str]:
        """Environment variables pointing the bot process at this server."""
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_BASE_URL": self.base_url,
            "TELEGRAM_BASE_FILE_URL": self.file_url,
        }

    async def start(self) -> None:
        """Bind the port and start serving."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._closing = False
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """End pending long polls, close connections and release the port."""
        if self._runner is None:
            return
        self._closing = True
        self.state.notify()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for the bot's ``getUpdates``; returns the assigned ``update_id``."""
        return self.state.push_update(update)

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one I/O
        *,
        since: int = 0,
    ) -> Call:
        """Wait until the bot made a matching call (calls from index ``since`` on count)."""
        return await self.state.wait_for(method, predicate, timeout, since=since)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        path = request.path
        if path.startswith("/file/bot"):
            token, _, file_path = path.removeprefix("/file/bot").partition("/")
            if token != self.token:
                return _json_response(_UNAUTHORIZED, 401)
            content = self.state.file_by_path(file_path)
            if content is None:
                return _json_response(_NOT_FOUND, 404)
            return web.Response(body=content, content_type="application/octet-stream")
        token, _, method = path.removeprefix("/bot").partition("/")
        if not path.startswith("/bot") or not method or "/" in method:
            return _json_response(_NOT_FOUND, 404)
        if token != self.token:
            return _json_response(_UNAUTHORIZED, 401)
        try:
            params = await _read_params(request)
        except ValueError as error:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {error}"}
            return _json_response(body, 400)
        if self.before_call is not None and not await self.before_call(method, params, arrived):
            if request.transport is not None:  # hang up: the call was never seen
                request.transport.close()
            raise asyncio.CancelledError
        status, answer = await self.state.handle(method, params, stop=lambda: self._closing)
        return _json_response(answer, status)


class ThreadedBotApiServer:
    """:class:`BotApiServer` on its own event loop in a daemon thread, for synchronous code."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        state: FakeTelegram | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.server = BotApiServer(token, state=state, host=host, port=port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> FakeTelegram:
        """The shared :class:`FakeTelegram`."""
        return self.server.state

    @property
    def token(self) -> str:
        """The bot token the server accepts."""
        return self.server.token

    @property
    def base_url(self) -> str:
        """See :attr:`BotApiServer.base_url`."""
        return self.server.base_url

    @property
    def file_url(self) -> str:
        """See :attr:`BotApiServer.file_url`."""
        return self.server.file_url

    def env(self) -> dict[str, str]:
        """See :meth:`BotApiServer.env`."""
        return self.server.env()

    def start(self) -> None:
        """Start the loop thread and the server; returns once the port is bound."""
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server, then the loop, and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._loop = self._thread = None

    def __enter__(self) -> ThreadedBotApiServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for ``getUpdates`` (thread-safe); returns its ``update_id``."""
        return self.state.push_update(update)

    def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> Call:
        """Block until the bot made a matching call (calls from index ``since`` on count)."""
        return self.state.wait_for_sync(method, predicate, timeout, since=since)
