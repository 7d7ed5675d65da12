"""``/metrics`` and ``/healthz`` over HTTP: on the webhook server, and on ``METRICS_PORT``.

:func:`add_routes` puts both on an aiohttp application: the webhook server's (webhook mode)
and :class:`OpsServer`'s, the small server ``METRICS_PORT`` starts in either mode. Neither
path carries a secret, and neither answer holds one.

``/metrics`` reads what lives in the database or in the poll schedule first (due schedules,
poll lag, replicas alive), each reading bounded by a short timeout, then renders the
application's registry (:mod:`bot.metrics`). ``/healthz`` answers 200 when the database and
Telegram both answer, else 503 naming which one failed (:mod:`bot.health`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.config import Settings
from bot.context import BotApplication
from bot.health import NOT_STARTED, Report, check_database

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0  # seconds for each scrape-time reading
DEFAULT_WEBHOOK_PORT = 8443
METRICS_LISTEN = "0.0.0.0"  # noqa: S104 - scraped from another host or container


async def refresh(app: BotApplication) -> None:
    """Set the gauges read at scrape time; a reading that fails keeps its last value."""
    data = app.bot_data
    metrics = data.metrics
    if metrics is None:
        return
    services = data.services
    tracker = data.resources.tracker if data.resources is not None else None
    if tracker is not None:
        now = tracker.clock()
        due = tracker.poller.schedule.next_due()
        late = (now - due).total_seconds() if due is not None else 0.0
        metrics.poll_lag.set(max(late, 0.0))
        metrics.polls_tracked.set(len(tracker.poller.schedule))
    if services is not None:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                now = services.schedules.clock()
                count, oldest = await services.schedules.store.backlog(now)
            metrics.schedule_backlog.set(count)
            metrics.schedule_lag.set((now - oldest).total_seconds() if oldest else 0.0)
        except Exception as exc:  # a scrape must still answer while the database is down
            log.warning("metrics: could not read the schedule backlog (%s)", type(exc).__name__)
            metrics.scrape_errors.labels("schedule_backlog").inc()
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            await metrics.read_replicas()
    except Exception as exc:
        log.warning("metrics: could not count the replicas alive (%s)", type(exc).__name__)
        metrics.scrape_errors.labels("replicas_alive").inc()


async def health(app: BotApplication) -> Report:
    """The database's and Telegram's state for ``/healthz``."""
    data = app.bot_data
    if data.services is None:  # starting (migrations, Telegram's getMe): nothing to ask yet
        return Report(database=NOT_STARTED, telegram=NOT_STARTED)
    database, telegram = await asyncio.gather(
        check_database(data.services.repo.db), data.telegram_check(app.bot)
    )
    return Report(database=database, telegram=telegram)


def add_routes(web_app: web.Application, app: BotApplication) -> None:
    """``GET /metrics`` and ``GET /healthz`` for ``app`` on ``web_app``."""

    async def metrics(_request: web.Request) -> web.Response:
        registry = app.bot_data.metrics
        if registry is None:
            return web.json_response({"ok": False, "error": "metrics are off"}, status=404)
        await refresh(app)
        return web.Response(
            body=registry.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_request: web.Request) -> web.Response:
        report = await health(app)
        if not report.ok:
            log.warning("health check failed: %s", report.as_json())
        return web.json_response(report.as_json(), status=200 if report.ok else 503)

    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_get("/healthz", healthz)


class OpsServer:
    """The ``METRICS_PORT`` server: ``/metrics`` and ``/healthz`` only."""

    def __init__(self, app: BotApplication) -> None:
        self._app = app
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        web_app = web.Application()
        add_routes(web_app, self._app)
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, host, port).start()
        self.port = int(runner.addresses[0][1])
        log.info("metrics and health on %s:%d (/metrics, /healthz)", host, self.port)
        return self.port

    async def stop(self) -> None:
        """Close the listener; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def wants_own_port(settings: Settings) -> bool:
    """Whether ``METRICS_PORT`` needs a server of its own (not the webhook server's port)."""
    if settings.metrics_port is None:
        return False
    if not settings.webhook_url or settings.metrics_port == 0:
        return True
    webhook = settings.webhook_port
    return settings.metrics_port != (DEFAULT_WEBHOOK_PORT if webhook is None else webhook)


@asynccontextmanager
async def ops_server(
    app: BotApplication, settings: Settings, *, host: str = METRICS_LISTEN
) -> AsyncIterator[OpsServer | None]:
    """Serve ``/metrics`` and ``/healthz`` on ``METRICS_PORT`` (if set) for the block's length.

    Started before the bot so that a slow start shows as a failing ``/healthz`` ("not
    started") rather than a closed port; in webhook mode on the webhook port itself, the
    webhook server answers both already.
    """
    if not wants_own_port(settings):
        yield None
        return
    assert settings.metrics_port is not None
    server = OpsServer(app)
    await server.start(host, settings.metrics_port)
    try:
        yield server
    finally:
        await server.stop()
