"""The Application factory.

Resources (database, HTTP client, services) are opened in ``post_init`` and closed in
``post_shutdown``; handlers come from :mod:`bot.handlers`.
"""

from __future__ import annotations

import gc
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder, ContextTypes
from telegram.request import BaseRequest

from bot import handlers
from bot.callbacks import callback_url
from bot.config import Settings
from bot.context import BotApplication, BotContext, BotData
from bot.errors import on_error
from bot.lifecycle import InFlight
from bot.scheduler import Scheduler, start_scheduler
from bot.services import Services
from bot.tracking.policy import Clock, system_clock
from bot.tracking.tracker import Tracker, build_tracker
from providers.http import make_http_client
from providers.registry import RECEIPT_READERS, provider_environment
from storage.crypto import CredentialCipher, load_or_create_keys
from storage.db import Database, open_database
from storage.models import utcnow
from storage.repo import Repository

STATUS_KIND = "status"  # the callback kind of delivery receipts (see bot/webhooks.py)
log = logging.getLogger(__name__)

RETENTION_EVERY = timedelta(days=1)


class Resources:
    """What ``post_init`` opens and ``post_shutdown`` closes."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        self.http: httpx.AsyncClient | None = None
        self.scheduler: Scheduler | None = None
        self.tracker: Tracker | None = None


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    provider_transport: httpx.AsyncBaseTransport | None = None,
    rate_limit: bool = True,
) -> BotApplication:
    """Build the bot.

    Args:
        settings: the configuration.
        request: a custom Bot API request layer (the offline one in tests).
        get_updates_request: the layer for ``getUpdates``; defaults to ``request``.
        provider_transport: an httpx transport for provider calls (MockTransport in tests).
        rate_limit: use PTB's ``AIORateLimiter`` (off in tests that count raw calls).

    """
    builder = (
        ApplicationBuilder()
        .application_class(BotApplication)  # deletes an update's inbox copy once handled
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .context_types(ContextTypes(context=BotContext, bot_data=BotData))
        .concurrent_updates(True)
        # PTB types these hooks with its base Application; they get the BotApplication above.
        .post_init(start_resources)  # type: ignore[arg-type]
        .post_stop(stop_background)  # type: ignore[arg-type]
        .post_shutdown(close_resources)  # type: ignore[arg-type]
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(get_updates_request or request)
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))  # type: ignore[arg-type]
    app = builder.build()
    assert isinstance(app, BotApplication)
    app.bot_data.settings = settings
    app.bot_data.provider_transport = provider_transport
    handlers.register(app)
    app.bot_data.in_flight = InFlight()
    app.bot_data.in_flight.register(app)  # a stop waits for the updates in hand, bounded
    app.add_error_handler(on_error)
    return app


def freeze_long_lived_objects() -> None:
    """Take what is alive now (imports, the Application) out of the garbage collector's way.

    A full collection walks every tracked object; with the ~half a million that imports leave,
    that is a 50–150 ms pause in the middle of some update (the worst ``/send`` latencies of
    ``bench overhead``). Frozen objects are never scanned again; they live as long as the
    process anyway. Once per process, after building the application (``python -m bot``).
    No collection first: it would cost ~60 ms of start-up to reclaim a few start-up cycles.
    """
    gc.freeze()


async def start_resources(
    app: BotApplication, *, clock: Clock | None = None, background: bool = True
) -> None:
    """Open the database (migrated), the HTTP client and the services; publish commands.

    Args:
        app: the application.
        clock: the delivery tracker's clock (tests inject one and drive ``tick()``).
        background: run the tracker's loops; tests pass False and tick it themselves.

    """
    settings = app.bot_data.settings
    assert settings is not None
    resources = Resources()
    app.bot_data.resources = resources
    resources.engine = await open_database(settings.database_url)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    cipher = CredentialCipher(load_or_create_keys(secret, settings.data_dir))
    resources.http = make_http_client(
        timeout=settings.http_timeout,
        max_connections=max(settings.send_concurrency * 2, 20),
        transport=app.bot_data.provider_transport,
    )
    env = provider_environment(resources.http, settings.model_dump())
    repo = Repository(Database(resources.engine))
    webhook_url, token = settings.webhook_url, app.bot.token

    def status_callback(provider: str) -> str | None:
        # Only where a reader of that provider's status posts exists (RECEIPT_READERS).
        if (provider, STATUS_KIND) not in RECEIPT_READERS:
            return None
        return callback_url(webhook_url, token, provider, STATUS_KIND)

    services = Services.build(
        repo,
        cipher,
        env,
        send_concurrency=settings.send_concurrency,
        first_poll=settings.status_poll_seconds,
        status_callback=status_callback,
        confirm_above=settings.confirm_above,
    )
    app.bot_data.services = services
    rotated = await services.accounts.rotate_keys()
    if rotated:
        log.info("re-encrypted %d stored credentials under the newest SECRET_KEY", rotated)
    interrupted = await repo.messages.mark_interrupted_sends()
    if interrupted:
        log.warning(
            "%d messages were interrupted mid-send by the last stop: now unknown", interrupted
        )
    if settings.retention_days is not None:
        await apply_retention(services, settings.retention_days)
        assert app.job_queue is not None  # python-telegram-bot[job-queue]
        app.job_queue.run_repeating(
            retention_job, interval=RETENTION_EVERY, first=RETENTION_EVERY, name="retention"
        )
    tracker = build_tracker(app.bot, services, settings, clock=clock or system_clock)
    # Sends plan their first poll on the tracker's clock, so a test driving it drives both.
    services.sender.clock = tracker.clock
    resources.tracker = tracker
    services.card_events = tracker
    await tracker.resume()  # after interrupted sends became unknown: those are not polled
    if background:
        tracker.start()
    # After the interrupted sends are marked: a run completed at start shows them as unknown.
    resources.scheduler = start_scheduler(app.bot, services, settings)
    app.bot_data.bot_username = app.bot.username or ""
    await publish_commands(app)
    log.info("chatops-bridge ready as @%s", app.bot_data.bot_username)


async def apply_retention(
    services: Services, days: int | None, *, now: datetime | None = None
) -> int:
    """``RETENTION_DAYS``: remove texts and numbers of messages finished longer ago than that.

    Runs at start and then daily (:func:`retention_job`); returns how many messages it changed
    (none when ``days`` is None: keep everything).
    """
    if days is None:
        return 0
    before = (now or utcnow()) - timedelta(days=days)
    count = await services.repo.messages.forget_contents(before)
    if count:
        log.info(
            "retention: removed the texts and numbers of %d messages finished before %s UTC",
            count,
            f"{before:%Y-%m-%d %H:%M}",
        )
    return count


async def retention_job(context: BotContext) -> None:
    """The daily JobQueue run of :func:`apply_retention`."""
    await apply_retention(context.services, context.settings.retention_days)


async def publish_commands(app: BotApplication) -> None:
    """Push the command menus (private and group) generated from the registry."""
    try:
        await app.bot.set_my_commands(
            handlers.bot_commands(private=True), scope=BotCommandScopeAllPrivateChats()
        )
        await app.bot.set_my_commands(
            handlers.bot_commands(private=False), scope=BotCommandScopeAllGroupChats()
        )
    except TelegramError as exc:
        log.warning("could not publish the command list: %s", exc.message)


async def stop_background(app: BotApplication) -> None:
    """Stop the delivery tracker while the bot can still edit cards (``post_stop``)."""
    resources = app.bot_data.resources
    if resources is not None and resources.scheduler is not None:
        await resources.scheduler.stop()  # a run being sent may still post its card
    if resources is not None and resources.tracker is not None:
        await resources.tracker.stop()


async def close_resources(app: BotApplication) -> None:
    """Close what ``start_resources`` opened."""
    resources = app.bot_data.resources
    if resources is None:
        return
    await stop_background(app)  # again here: tests and errors may skip post_stop
    services = app.bot_data.services
    if services is not None:
        await services.accounts.close()
    if resources.http is not None:
        await resources.http.aclose()
    if resources.engine is not None:
        await resources.engine.dispose()
    app.bot_data.resources = None
