"""Webhook mode: one small HTTP server for Telegram updates and provider callbacks.

Routes (aiohttp; every path but /healthz and /metrics carries a per-deployment secret)::

    POST      /telegram/<secret>                       Telegram updates; the
                                                       X-Telegram-Bot-Api-Secret-Token header
                                                       must match as well
    POST|GET  /callbacks/<provider>/<kind>/<secret>    provider callbacks (JSON, form or query)
    GET       /healthz                                 200 when the database and Telegram
                                                       answer, else 503 naming which failed
    GET       /metrics                                 Prometheus metrics (:mod:`bot.ops`)

The last two come from :mod:`bot.ops`; a reverse proxy may keep ``/metrics`` inside.
A callback is accepted when its path secret is the one :func:`bot.callbacks.callback_url`
issued for that ``(provider, kind)``: nobody else can know the URL. Its body must be a JSON
object or list, or form fields, of at most 64 KiB; a validator registered in
:data:`VALIDATORS` (or with :func:`register_callback`) then checks its meaning. It is put on
``application.update_queue`` as a :class:`ProviderCallback` and handled by a
:class:`ProviderCallbackHandler` for its kind. The answer comes at once (200, or 400 with the
reason), before any handler runs.

A Telegram update is stored in the inbox (:mod:`bot.inbox`) before it is answered 200, so a
crash cannot lose an update Telegram considers delivered; when the database cannot store it
the answer is 500, and Telegram sends it again later.

The access log is off and paths are never logged: they are secrets. ``python -m bot.webhooks``
prints the URLs an operator gives to providers (e.g. to a provider's support for its push
callback).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from telegram import Update
from telegram.ext import TypeHandler

from bot.callbacks import CALLBACK_PREFIX, ProviderCallback, callback_secret, callback_url
from bot.config import Settings
from bot.context import BotApplication, BotContext
from bot.inbox import hand_on, inbox_of, may_store, replay, stored_form
from bot.lifecycle import stop_within
from bot.ops import DEFAULT_WEBHOOK_PORT, add_routes
from providers.number_checks import callback_validators
from providers.receipts import InvalidCallback
from providers.registry import RECEIPT_READERS

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 64 * 1024
MAX_UPDATE_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
_NAME = r"[a-z0-9_-]{1,32}"

CallbackValidator = Callable[[Any], object]
"""Checks a parsed callback body; raises ``ValueError`` (e.g. ``InvalidCallback``) if bad."""


# (provider, kind) → validator. Kinds without one get only the generic shape check.
VALIDATORS: dict[tuple[str, str], CallbackValidator] = {
    **RECEIPT_READERS,
    **callback_validators(),  # phone checks: at least one number with its answer
}


def register_callback(provider: str, kind: str, validator: CallbackValidator) -> None:
    """Validate the bodies of one callback kind with ``validator`` (call at import time)."""
    VALIDATORS[(provider, kind)] = validator


class ProviderCallbackHandler(TypeHandler[ProviderCallback, BotContext, None]):
    """A ``TypeHandler`` for the :class:`ProviderCallback` updates of one kind."""

    def __init__(
        self,
        kind: str,
        callback: Callable[[ProviderCallback, BotContext], Coroutine[Any, Any, None]],
        *,
        provider: str | None = None,
    ) -> None:
        super().__init__(ProviderCallback, callback)
        self.kind = kind
        self.provider = provider

    def check_update(self, update: object) -> bool:
        """Only callbacks of this kind (and provider, when given)."""
        return (
            isinstance(update, ProviderCallback)
            and update.kind == self.kind
            and (self.provider is None or update.provider == self.provider)
        )


def telegram_path(bot_token: str) -> str:
    """The Telegram webhook path: derived from the token (stable, unguessable), never it."""
    digest = hashlib.sha256(f"chatops-bridge:{bot_token}".encode()).hexdigest()[:32]
    return f"telegram/{digest}"


def telegram_secret_token(bot_token: str) -> str:
    """The ``secret_token`` Telegram echoes in every webhook request's header."""
    return callback_secret(bot_token, "telegram", "secret-token")


def webhook_secrets(bot_token: str) -> list[str]:
    """Every secret path part and token of webhook mode (masked in logs like the token)."""
    secrets = [telegram_path(bot_token).rsplit("/", 1)[-1], telegram_secret_token(bot_token)]
    secrets.extend(callback_secret(bot_token, p, k) for p, k in VALIDATORS)
    return secrets


def _answer(status: int, error: str = "") -> web.Response:
    body: dict[str, Any] = {"ok": status == 200}
    if error:
        body["error"] = error
    return web.json_response(body, status=status)


class WebhookServer:
    """The aiohttp server; :meth:`start` binds it, :meth:`stop` closes it."""

    def __init__(self, app: BotApplication, bot_token: str) -> None:
        self._app = app
        self._token = bot_token
        self._telegram_path = "/" + telegram_path(bot_token)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def web_app(self) -> web.Application:
        """The aiohttp application with its routes."""
        web_app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        web_app.router.add_post(self._telegram_path, self._telegram)
        route = (
            f"/{CALLBACK_PREFIX}/{{provider:{_NAME}}}/{{kind:{_NAME}}}/{{secret:[0-9a-f]{{32}}}}"
        )
        web_app.router.add_route("POST", route, self._callback)
        web_app.router.add_route("GET", route, self._callback)
        add_routes(web_app, self._app)
        return web_app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, host, port)
        await site.start()
        self.port = int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Close the listener and open connections; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _telegram(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), telegram_secret_token(self._token).encode()):
            log.warning("a Telegram webhook request had no or a wrong secret token")
            return _answer(403, "forbidden")
        if request.content_type != "application/json":
            return _answer(415, "expected application/json")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self._app.bot)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("an unreadable Telegram update was refused: %s", type(exc).__name__)
            return _answer(400, "unreadable update")
        fresh = True
        if may_store(update):
            try:
                # Stored before the 200: once Telegram has that answer, it never sends it again.
                fresh = bool(await inbox_of(self._app).add([stored_form(update)]))
            except Exception:
                log.exception("could not store Telegram update %s", update.update_id)
                return _answer(500, "not stored")  # Telegram sends it again later
        if fresh:  # one already stored is being handled, or is replayed at the next start
            await hand_on(self._app, update)
        return _answer(200)

    async def _callback(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        kind = request.match_info["kind"]
        expected = callback_secret(self._token, provider, kind)
        if not hmac.compare_digest(request.match_info["secret"].encode(), expected.encode()):
            return _answer(404, "not found")
        try:
            body = await _callback_body(request)
            VALIDATORS.get((provider, kind), _shape)(body)
        except ValueError as exc:
            log.warning("refused a %s %s callback: %s", provider, kind, exc)
            return _answer(400, str(exc))
        await self._app.update_queue.put(ProviderCallback(provider, kind, body))
        log.info("accepted a %s %s callback", provider, kind)
        return _answer(200)


async def _callback_body(request: web.Request) -> Any:
    """A callback's body: JSON, form fields, or the query string of a GET."""
    if request.content_length is not None and request.content_length > MAX_CALLBACK_BYTES:
        raise ValueError(f"the body is larger than {MAX_CALLBACK_BYTES} bytes")
    raw = await request.content.read(MAX_CALLBACK_BYTES + 1)
    if len(raw) > MAX_CALLBACK_BYTES:
        raise ValueError(f"the body is larger than {MAX_CALLBACK_BYTES} bytes")
    if not raw.strip():
        body: Any = dict(request.query)
    elif request.content_type == "application/x-www-form-urlencoded":
        body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    else:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ValueError("the body is neither JSON nor form fields") from exc
    _shape(body)
    return body


def _shape(body: Any) -> None:
    """The generic check every callback passes: a non-empty JSON object or list."""
    if not isinstance(body, dict | list) or not body:
        raise InvalidCallback("the body must be a non-empty JSON object, list or form")


async def serve_webhook_mode(
    app: BotApplication,
    settings: Settings,
    stop: asyncio.Event,
    *,
    server: WebhookServer | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the bot in webhook mode until ``stop`` is set (the application's whole life).

    Mirrors PTB's ``run_webhook``: initialise, ``post_init``, start, replay the inbox's
    unhandled updates (:func:`bot.inbox.replay`), serve and register the webhook with
    Telegram; then stop (bounded: :func:`bot.lifecycle.stop_within`),
    ``post_stop``, shut down, ``post_shutdown``.
    """
    token = settings.telegram_bot_token.get_secret_value()
    base = (settings.webhook_url or "").rstrip("/")
    server = server or WebhookServer(app, token)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        try:
            await replay(app)  # what the last life left unhandled, before any new update
            listen = settings.webhook_listen or "0.0.0.0"  # noqa: S104 - a webhook must listen
            wanted = settings.webhook_port
            if wanted is None:
                wanted = DEFAULT_WEBHOOK_PORT
            port = await server.start(listen, wanted)
            await app.bot.set_webhook(
                url=f"{base}/{telegram_path(token)}",
                secret_token=telegram_secret_token(token),
                allowed_updates=Update.ALL_TYPES,
            )
            log.info("webhook mode: listening on %s:%d for %s", listen, port, base)
            if ready is not None:
                ready.set()
            await stop.wait()
        finally:
            await server.stop()
            await stop_within(app, settings.shutdown_grace_seconds)
            if app.post_stop is not None:
                await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def public_urls(settings: Settings) -> dict[str, str]:
    """The URLs to hand out: Telegram's and each known provider callback's."""
    token = settings.telegram_bot_token.get_secret_value()
    base = (settings.webhook_url or "").rstrip("/")
    urls = {"Telegram updates (set automatically)": f"{base}/{telegram_path(token)}"}
    for provider, kind in sorted(VALIDATORS):
        url = callback_url(base, token, provider, kind)
        if url:
            urls[f"{provider} {kind} callback"] = url
    return urls


def main() -> None:
    """``python -m bot.webhooks``: print the callback URLs (to stdout, never to the log)."""
    from bot.__main__ import load_settings  # here: bot.__main__ imports this module

    settings = load_settings(Settings)
    if not settings.webhook_url:
        sys.exit("chatops-bridge: set WEBHOOK_URL (the public base URL) to get callback URLs.")
    for name, url in public_urls(settings).items():
        print(f"{name}: {url}")


if __name__ == "__main__":
    main()
