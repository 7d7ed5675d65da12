"""The bot's life in one process: start, run until SIGINT or SIGTERM, then a bounded stop.

PTB's ``run_polling`` stops on a signal by waiting for every update in hand, however long a
slow provider keeps a send busy, and a supervisor (Docker waits 10 s) then kills the process
at a random point. Here polling is driven with PTB's public lifecycle methods instead (what
``run_polling`` does; updates are taken by :class:`bot.inbox.Poller`, which stores them before
Telegram forgets them), and both modes (webhooks: :func:`bot.webhooks.serve_webhook_mode`) stop
through :func:`stop_within`:

1. no new updates are taken (polling or the webhook server stops first);
2. the updates being handled and the schedule run being sent get ``SHUTDOWN_GRACE_SECONDS``
   to finish as usual (cards posted, claims finished);
3. what is still running then is cancelled: a send records the outcomes it has and marks the
   recipients it never reached ``failed`` ("not sent"); a schedule run gives its claim back, or
   ends its run if its send had started, so no claim outlives the process;
4. messages still ``queued`` (their request was in flight) become ``unknown``, as the next
   start would do after a crash: the provider may or may not have them, so none is resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from asyncio import FIRST_COMPLETED

from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import BotApplication, BotContext
from bot.inbox import Poller, replay

log = logging.getLogger(__name__)

FIRST = -1  # the handler group that sees every update before any feature handler


class InFlight:
    """The tasks handling updates right now, so a stop can wait for them or cut them off.

    PTB handles each update (with concurrent updates) in a task of its own and runs all of the
    update's handlers in that task, so the first handler can name it.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self.closed = False

    def register(self, app: BotApplication) -> None:
        """See every update first (a handler group of its own, before the features')."""
        app.add_handler(TypeHandler(object, self.enter), group=FIRST)

    async def enter(self, _update: object, _context: BotContext) -> None:
        """Remember the task handling this update; once cut off, handle nothing more."""
        if self.closed:
            raise ApplicationHandlerStop
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def cut_off(self) -> int:
        """Cancel every update still being handled; returns how many there were."""
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return len(tasks)


async def stop_within(app: BotApplication, seconds: float) -> None:
    """Stop the running application, giving the work in hand ``seconds`` before cutting it off.

    Call after updates stopped coming in; ``post_stop`` and the shutdown follow.
    """
    data = app.bot_data
    scheduler = data.resources.scheduler if data.resources is not None else None
    stops: list[asyncio.Task[object]] = [asyncio.create_task(app.stop(), name="stop-updates")]
    if scheduler is not None:  # the schedule run being sent, bounded the same way
        stops.append(asyncio.create_task(scheduler.stop(wait=seconds), name="stop-schedules"))
    if data.services is not None:  # large sends resumed at start, the same way
        resumed = data.services.large_sends.stop_resumed(seconds)
        stops.append(asyncio.create_task(resumed, name="stop-resumed-sends"))
    _done, late = await asyncio.wait(stops, timeout=seconds)
    if late and data.in_flight is not None:
        cut = data.in_flight.cut_off()
        if cut:
            log.warning("stopping: %d updates in hand after %.0f s were cut off", cut, seconds)
    await asyncio.gather(*stops)
    if data.services is None:
        return
    try:
        interrupted = await data.services.repo.messages.mark_interrupted_sends()
    except Exception:  # the next start marks them instead
        log.exception("could not mark the messages a stop cut off")
        return
    if interrupted:
        log.warning("%d messages were cut off mid-send by the stop: now unknown", interrupted)


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT and SIGTERM (the running loop's handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows' loop
            loop.add_signal_handler(sig, stop.set)


async def serve_polling(app: BotApplication, stop: asyncio.Event, *, grace: float) -> None:
    """Run the bot in polling mode until ``stop`` is set (the application's whole life).

    Mirrors PTB's ``run_polling``: initialise, ``post_init``, start and poll; then stop
    (bounded, :func:`stop_within`), ``post_stop``, shut down, ``post_shutdown``. Updates are
    taken by :class:`bot.inbox.Poller` rather than PTB's updater, which would confirm an
    update to Telegram before anything stored it; what the last life left unhandled is
    replayed first. Telegram refusing the token, or another process polling with it, ends
    the run with that error.
    """
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.bot.delete_webhook()  # Telegram refuses getUpdates while a webhook is set
        await app.start()
        poller = Poller(app, last_update_id=await replay(app))
        polling = asyncio.create_task(poller.run(), name="polling")
        stopping = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            done, _ = await asyncio.wait({polling, stopping}, return_when=FIRST_COMPLETED)
            if polling in done:
                polling.result()  # raises why polling ended
        finally:
            stopping.cancel()
            if not polling.done():
                polling.cancel()
                await asyncio.wait({polling})
                await poller.confirm()  # what was stored is handled or replayed next time
            await stop_within(app, grace)
            if app.post_stop is not None:
                await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
