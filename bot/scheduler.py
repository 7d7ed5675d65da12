"""The background task that fires due schedules, and how their chats are told.

What a chat is told about a run is stored with the run's end (the outbox) and posted right
after; a stop in between is caught up at the next start by the delivery tracker.

The database is the source of truth: the task keeps nothing in memory but a wake-up event. Each
pass fires what is due (:meth:`ScheduleRunner.run_due`), then sleeps until the soonest pending
schedule is due, at most ``SCHEDULE_CHECK_SECONDS`` (so schedules made by another process are
seen), or until a /schedule or /reschedule wakes it. The first pass runs at start, after claims
left by a stopped process have been taken over, so the missed-while-down policy applies there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from telegram import Bot

from bot.cards import post_card
from bot.config import Settings
from bot.schedule_text import failed_text, fired_note, missed_text, quiet_held_text
from bot.services import Services
from bot.services.schedule_runner import ScheduleRunner
from bot.services.sending import SendOutcome
from storage.models import OutboxEntry, Schedule, utcnow
from storage.replicas import Gone
from storage.schedules import ScheduleRepository

log = logging.getLogger(__name__)

MIN_PAUSE = 0.2
STOP_WAIT = 10.0


class TelegramNotifier:
    """Renders what a chat is told about its schedules, and posts it once it is stored."""

    def __init__(self, bot: Bot, services: Services, *, grace: timedelta) -> None:
        self._bot = bot
        self._services = services
        self._grace_minutes = grace.total_seconds() / 60

    def fired(self, schedule: Schedule, note: str) -> str:
        """The line above the card: which schedule fired, and how late."""
        return fired_note(schedule, note)

    def failed(self, schedule: Schedule, reason: str) -> str:
        """A run could not be sent, and why."""
        return failed_text(schedule, reason)

    def missed(self, schedule: Schedule, due: datetime) -> str:
        """A run was missed while the bot was not running."""
        return missed_text(schedule, due, self._grace_minutes)

    def held(self, schedule: Schedule, until: datetime) -> str:
        """A run waits for the end of the chat's quiet hours."""
        return quiet_held_text(schedule, until)

    async def deliver(self, told: OutboxEntry | None, outcome: SendOutcome | None) -> None:
        """Post the run's card (unless the chat has it) or its text, now."""
        events = self._services.card_events
        if events is None:  # no tracker (yet): the outbox keeps it for the delivery loop
            return
        if outcome is not None:  # the line above it was stored with the run's end
            await post_card(self._services, outcome, note=told.text if told is not None else "")
        elif told is not None and told.id is not None:
            await events.post_text(told.id, told.chat_id)


class Scheduler:
    """Runs :class:`ScheduleRunner` passes in one asyncio task; ``clock`` is injectable."""

    def __init__(
        self,
        runner: ScheduleRunner,
        store: ScheduleRepository,
        *,
        check_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runner = runner
        self._store = store
        self._check = check_seconds
        self.clock = clock
        self._wake = asyncio.Event()
        self._first_pass = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Claims to take over, in the task: the start's (None: every claim) and then those
        # of replicas seen dead while running (bot/replicas.py).
        self._recover: list[Gone | None] = [None]

    @property
    def running(self) -> bool:
        """Whether the background task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (``SCHEDULE_CHECK_SECONDS=0``: this process fires nothing)."""
        if self._check > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="scheduler")

    def wake(self) -> None:
        """Look again now: a schedule was made or moved."""
        self._wake.set()

    def adopt(self, gone: Gone, *, at_start: bool = False) -> None:
        """Take over the claims of ``gone`` replicas (in the task, before its next pass).

        ``at_start`` replaces the start's "every claim" (several replicas: only the dead's).
        """
        if at_start and self._recover == [None]:
            self._recover = [gone]
        else:
            self._recover.append(gone)
        self._wake.set()

    async def first_pass(self) -> None:
        """Wait until the pass made at start (recovery and overdue runs) is over."""
        if self._task is None:
            raise RuntimeError("the scheduler task is not running (SCHEDULE_CHECK_SECONDS=0?)")
        await self._first_pass.wait()

    async def stop(self, wait: float = STOP_WAIT) -> None:
        """Stop the task: the run being sent may finish for ``wait`` seconds, no new one starts.

        A run still sending after that is cancelled like any send cut off by a stop: its claim
        is given back, or its run ended if the send had begun (``ScheduleRunner._abandon``).
        """
        if self._task is None:
            return
        self._stopping = True
        self.runner.halt()
        self._wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=wait)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            while self._recover and not self._stopping:
                try:
                    await self.runner.recover(self.clock(), self._recover.pop(0))
                except Exception:
                    log.exception("could not recover schedules claimed by a stopped process")
            try:
                await self.runner.run_due(self.clock())
                pause = await self._pause()
            except Exception:
                log.exception("scheduler pass failed; trying again later")
                pause = self._check
            self._first_pass.set()
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _pause(self) -> float:
        soonest = await self._store.next_due_at()
        wait = self._check if soonest is None else (soonest - self.clock()).total_seconds()
        return max(MIN_PAUSE, min(wait, self._check))


def start_scheduler(
    bot: Bot, services: Services, settings: Settings, *, gone: Gone | None = None
) -> Scheduler:
    """Build the scheduler over the services and start its task.

    Its claims are this replica's (``claimed_by``); at start it takes over the claims of
    ``gone`` replicas (None: every claim, a single process).
    """
    grace = timedelta(minutes=settings.schedule_grace_minutes)
    runner = ScheduleRunner(
        services.schedules.store,
        services.repo,
        services.sender,
        TelegramNotifier(bot, services, grace=grace),
        grace=grace,
        worker=services.repo.db.replica,
        language_of=services.chats.language_of,
    )
    scheduler = Scheduler(
        runner, services.schedules.store, check_seconds=settings.schedule_check_seconds
    )
    if gone is not None:
        scheduler.adopt(gone, at_start=True)
    services.schedules.on_change = scheduler.wake
    scheduler.start()
    return scheduler
