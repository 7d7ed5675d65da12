"""The Application factory.

Resources (database, HTTP client, services) are opened in ``post_init`` and closed in
``post_shutdown``; handlers come from :mod:`bot.handlers`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
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
from bot.handlers.approvals import carry_out_owed, expire_cards
from bot.inbox import replay
from bot.lifecycle import InFlight
from bot.replicas import ReplicaLoop, adopt_gone
from bot.scheduler import Scheduler, start_scheduler
from bot.services import Services
from bot.tracking.policy import Clock, system_clock
from bot.tracking.tracker import Tracker, build_tracker
from i18n import ENGLISH, LANGUAGES, use_language
from providers.http import make_http_client
from providers.registry import RECEIPT_READERS, provider_environment, provider_of_url
from storage.crypto import CredentialCipher, load_or_create_keys
from storage.db import Database, open_database
from storage.models import utcnow
from storage.pace import DatabasePace, RedisPace
from storage.replicas import Gone, Replicas, new_replica_id
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
        self.replicas: Replicas | None = None
        self.replica_loop: ReplicaLoop | None = None
        self.pace: DatabasePace | RedisPace | None = None
        # Whose leftovers this replica took at start (None: a single process took all);
        # the inbox replay (bot/inbox.py) takes the same replicas' unhandled updates.
        self.start_gone: Gone | None = None


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    provider_transport: httpx.AsyncBaseTransport | None = None,
    rate_limit: bool = True,
    metrics: bool = True,
) -> BotApplication:
    """Build the bot.

    Args:
        settings: the configuration.
        request: a custom Bot API request layer (the offline one in tests).
        get_updates_request: the layer for ``getUpdates``; defaults to ``request``.
        provider_transport: an httpx transport for provider calls (MockTransport in tests).
        rate_limit: use PTB's ``AIORateLimiter`` (off in tests that count raw calls).
        metrics: count into the application's Prometheus registry (``bench metrics`` turns
            it off for its baseline).

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
    if not metrics:
        app.bot_data.metrics = None
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
    db = Database(resources.engine)
    start_gone = await join_replicas(resources, db, settings)
    env = provider_environment(resources.http, settings.model_dump(), shared=resources.pace)
    metrics = app.bot_data.metrics
    if metrics is not None:
        metrics.instrument(resources.http, provider_of_url(env))
        if resources.replicas is not None and not resources.replicas.single_process:
            metrics.replicas = resources.replicas.count_live  # else 1: this process
    repo = Repository(db)
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
        # A one-recipient send keeps its own card even when every send is confirmed (0).
        large_above=max(settings.confirm_above, 1),
        confirm_above=settings.confirm_above,
        default_language=settings.default_language,
        approval_expiry=settings.approval_expiry,
    )
    app.bot_data.services = services
    if metrics is not None:
        services.sender.on_sent = metrics.count_sent
    rotated = await services.accounts.rotate_keys()
    if rotated:
        log.info("re-encrypted %d stored credentials under the newest SECRET_KEY", rotated)
    interrupted = await repo.messages.mark_interrupted_sends(start_gone)
    if interrupted:
        log.warning(
            "%d messages were interrupted mid-send by the last stop: now unknown", interrupted
        )
    if settings.retention_days is not None:
        if await sweeps(resources):
            await apply_retention(services, settings.retention_days)
        assert app.job_queue is not None  # python-telegram-bot[job-queue]
        app.job_queue.run_repeating(
            retention_job, interval=RETENTION_EVERY, first=RETENTION_EVERY, name="retention"
        )
    tracker = build_tracker(app.bot, services, settings, clock=clock or system_clock)
    # Sends plan their first poll on the tracker's clock, so a test driving it drives both.
    services.sender.clock = tracker.clock
    resources.tracker = tracker
    tracker.sweeper = lambda: sweeps(resources)
    if metrics is not None:
        tracker.updater.on_edit = metrics.count_card_edit
    services.card_events = tracker
    tracker.on_expire.append(lambda now: expire_cards(app.bot, services, now))
    if start_gone is not None:
        tracker.share(db.replica or "")
    # After interrupted sends became unknown: those are not polled.
    await tracker.resume(start_gone)
    if background:
        tracker.start()
    # Large sends a stop cut off go on with the rows never handed over (their cards follow).
    resumed = services.large_sends.resume_all(
        await repo.large_sends.running(start_gone), tracker.messages_sent
    )
    if resumed:
        log.info("going on with %d large sends cut off by the last stop", resumed)
    # After the interrupted sends are marked: a run completed at start shows them as unknown.
    resources.scheduler = start_scheduler(app.bot, services, settings, gone=start_gone)
    # Approved sends a stop cut off before they were stored: made now, each once.
    owed = await carry_out_owed(app.bot, services, start_gone)
    if owed:
        log.info("made %d approved sends cut off by the last stop", owed)
    if start_gone is not None and background:
        assert resources.replicas is not None
        resources.replica_loop = ReplicaLoop(
            resources.replicas,
            every=settings.replica_heartbeat_seconds,
            take_over=lambda gone: take_over(app, gone),
            fenced=lambda: os.kill(os.getpid(), signal.SIGTERM),
            on_live=lambda count: share_pace(resources, count),
        )
        resources.replica_loop.start()
    app.bot_data.bot_username = app.bot.username or ""
    await publish_commands(app)
    log.info("chatops-bridge ready as @%s", app.bot_data.bot_username)


async def join_replicas(resources: Resources, db: Database, settings: Settings) -> Gone | None:
    """Register this process as a replica; whose leftovers it takes (None: all, SQLite).

    Several replicas can share a PostgreSQL database: then this one adopts the dead ones
    (and rows from before replicas existed), and provider accounts are paced on a schedule
    shared through Redis (``REDIS_URL``) or the database. SQLite is one process.
    """
    db.replica = new_replica_id()
    replicas = Replicas(
        db, me=db.replica, dead_after=timedelta(seconds=settings.replica_dead_seconds)
    )
    resources.replicas = replicas
    await replicas.register()
    if replicas.single_process:
        return None  # SQLite: one process, paced in memory
    if settings.redis_url is not None:
        resources.pace = RedisPace.from_url(settings.redis_url.get_secret_value())
    else:
        resources.pace = DatabasePace(db)
    share_pace(resources, len(await replicas.live()))
    resources.start_gone = await adopt_gone(replicas, ownerless=True)
    log.info("replica %s started", db.replica)
    return resources.start_gone


def share_pace(resources: Resources, live: int) -> None:
    """Pace provider accounts on the shared schedule only while other replicas run."""
    if resources.pace is not None:
        resources.pace.active = live > 1


async def take_over(app: BotApplication, gone: Gone) -> None:
    """Take over the work of replicas found dead while running (see ``bot/replicas.py``)."""
    services, resources = app.bot_data.services, app.bot_data.resources
    if services is None or resources is None:
        return
    interrupted = await services.repo.messages.mark_interrupted_sends(gone)
    if interrupted:
        log.warning("%d messages of dead replicas were interrupted mid-send: unknown", interrupted)
    if resources.tracker is not None:
        await resources.tracker.adopt(gone)
    if resources.scheduler is not None:
        resources.scheduler.adopt(gone)
    if resources.tracker is not None:  # their large sends go on here, each row still once
        services.large_sends.resume_all(
            await services.repo.large_sends.running(gone), resources.tracker.messages_sent
        )
    await carry_out_owed(app.bot, services, gone)  # sends they approved but did not make
    await replay(app, gone)


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
    """The daily JobQueue run of :func:`apply_retention` (on the sweeping replica)."""
    resources = context.bot_data.resources
    if resources is not None and await sweeps(resources):
        await apply_retention(context.services, context.settings.retention_days)


async def sweeps(resources: Resources) -> bool:
    """Whether this process runs the sweeps now: among several replicas, only the oldest.

    Expiry, lost-send lookups and retention look at every replica's rows; run on each
    replica they would look up one lost send once per replica (``Replicas.sweeps``).
    """
    return resources.replicas is None or await resources.replicas.sweeps()


async def publish_commands(app: BotApplication) -> None:
    """Push the command menus (private and group) generated from the registry.

    One menu per language the bot speaks: Telegram shows a user the one of their app's
    language, and DEFAULT_LANGUAGE's to everyone else.
    """
    default = app.bot_data.settings.default_language if app.bot_data.settings else ENGLISH
    try:
        for code in LANGUAGES:
            language_code = None if code == default else code
            with use_language(code):
                await app.bot.set_my_commands(
                    handlers.bot_commands(private=True),
                    scope=BotCommandScopeAllPrivateChats(),
                    language_code=language_code,
                )
                await app.bot.set_my_commands(
                    handlers.bot_commands(private=False),
                    scope=BotCommandScopeAllGroupChats(),
                    language_code=language_code,
                )
    except TelegramError as exc:
        log.warning("could not publish the command list: %s", exc.message)


async def stop_background(app: BotApplication) -> None:
    """Stop the delivery tracker while the bot can still edit cards (``post_stop``)."""
    resources = app.bot_data.resources
    if app.bot_data.services is not None:  # resumed large sends: the next start goes on
        await app.bot_data.services.large_sends.stop_resumed(0)
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
    if resources.replica_loop is not None:
        await resources.replica_loop.stop()  # marks this replica stopped
        resources.replica_loop = None
    elif resources.replicas is not None:
        with contextlib.suppress(Exception):  # best effort: the database may be gone
            await resources.replicas.stop()
    if resources.pace is not None:
        await resources.pace.close()
    if resources.http is not None:
        await resources.http.aclose()
    if resources.engine is not None:
        await resources.engine.dispose()
    app.bot_data.resources = None
