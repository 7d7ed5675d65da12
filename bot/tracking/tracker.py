"""The tracker the application runs: resume at start, poll and edit in the background, stop.

Two loops run in production: the *poll loop* sleeps until the next poll of the in-memory
schedule is due (at most ``IDLE_SECONDS``), and the *card loop* runs card jobs as soon as
their chat and card allow. A wake with nothing due costs no database round: receipts that
arrived before their message had a ref are retried only while there are some, and expiry
(hours of granularity) is checked once every ``EXPIRE_EVERY``, with the lookups of lost
sends; among several replicas only the sweeper (the oldest live one) runs those two, so each
lost send is looked up once (:attr:`Tracker.sweeper`). New sends enter the schedule
through :meth:`Tracker.messages_sent` and wake the loop only when they are due before it
would wake anyway. Tests start neither loop: they inject a clock and call
:meth:`Tracker.tick` (a full round) or :meth:`Tracker.step` (one loop round) with explicit
times, so nothing sleeps.

Restart-safe: :meth:`Tracker.resume` re-arms a poll for every open (or read-watched) message
in the database from the hint written with its last state change (see
``PollPolicy.catch_up``), and queues every pending outbox entry (:mod:`storage.outbox`): the
cards, edits, failure notices and texts a stop cut off, including the cards of sends that a
stop interrupted before they had one. While running, the outbox tells the tracker about every
entry it writes (:meth:`Tracker.outbox_written`), so the in-memory queue and the durable one
agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from telegram import Bot

from bot.config import Settings
from bot.services import Services
from bot.tracking.limiter import ChatPacer, PacerLimits
from bot.tracking.policy import Clock, PollPolicy, system_clock
from bot.tracking.poller import Poller, ReceiptOutcome
from bot.tracking.reconcile import reconcile
from bot.tracking.scheduler import CardScheduler, JobKind
from bot.tracking.updater import CardUpdater
from providers.base import StatusReport
from providers.registry import untracked_channels
from storage.models import Message
from storage.outbox import Due
from storage.replicas import Gone
from storage.tracking_repo import TrackingRepository

if TYPE_CHECKING:
    from bot.services.sending import SendOutcome

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # longest sleep of a loop (a wake with nothing due reads nothing)
EXPIRE_EVERY = timedelta(minutes=1)  # expiry is hours late or not at all: no need to look often
MIN_SLEEP = 0.05
STOP_GRACE = 3.0
REFRESH_LIMIT = 50  # messages a Refresh asks about; the rest keep their schedule
REFRESH_COOLDOWN = 5.0
DETAILS_COOLDOWN = 10.0
ORPHAN_TTL = timedelta(minutes=10)  # a receipt may beat the send's own commit of its ref
ORPHAN_MAX = 5000
SWEEP_SECONDS = 1.0  # several replicas: how often the owner looks for others' changes
SWEEP_OVERLAP = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What a Refresh press did."""

    asked: int = 0
    changed: int = 0
    errors: list[str] = field(default_factory=list)
    throttled: bool = False


class Tracker:
    """Polls, receives and expires delivery states and keeps the cards current."""

    def __init__(
        self,
        poller: Poller,
        updater: CardUpdater,
        store: TrackingRepository,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.poller = poller
        self.updater = updater
        self.store = store
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake_polls = asyncio.Event()
        self._wake_cards = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._pressed: dict[tuple[str, int], float] = {}
        self._orphans: dict[tuple[str, str], tuple[list[StatusReport], datetime]] = {}
        self._expire_at: datetime | None = None  # the next expiry sweep; None: at once
        self._polls_sleep_until: float | None = None  # while the poll loop sleeps
        # Several replicas: this one's id. It delivers only the outbox entries it owns and
        # finds other replicas' changes of them by a sweep (``SWEEP_SECONDS``).
        self.me: str | None = None
        # Several replicas: whether this one runs the sweeps now (expiry and lost-send
        # lookups), so each is made once (``Replicas.sweeps``); None: always (one process).
        self.sweeper: Callable[[], Awaitable[bool]] | None = None
        updater.wake = self._wake_cards.set
        # Other things that expire, checked in the same sweep (approvals waiting too long).
        self.on_expire: list[Callable[[datetime], Awaitable[object]]] = []

    @property
    def policy(self) -> PollPolicy:
        """The poll schedule."""
        return self.poller.policy

    # -- lifecycle ---------------------------------------------------------------------------

    async def resume(self, gone: Gone | None = None) -> int:
        """At start: arm polls of open messages, queue what the chats are still owed.

        A single process (``gone`` None) takes everything: holds on card entries belonged to
        the stopped process (its sends cannot post their cards any more), so they end first.
        A replica among several takes only what ``gone`` replicas left (:meth:`adopt`).
        Returns how many messages are tracked.
        """
        if gone is not None:
            await self.adopt(gone)
            return len(self.poller.schedule)
        now = self.clock()
        self.poller.resume(await self.store.poll_hints(self.policy.watch(now)), now)
        tracked = len(self.poller.schedule)
        await self.store.outbox.release_holds()
        owed = [Due.of(entry) for entry in await self.store.outbox.pending()]
        self.updater.due(owed, now.timestamp())
        log.info("tracking %d open messages; %d chat messages owed", tracked, len(owed))
        return tracked

    async def adopt(self, gone: Gone) -> tuple[int, int]:
        """Take over the polls and the owed chat messages of ``gone`` replicas.

        Returns how many messages and outbox entries became this replica's.
        """
        now = self.clock()
        hints = await self.store.adopt_polls(gone, self.policy.watch(now))
        self.poller.resume(hints, now)
        owed = await self.store.outbox.adopt(gone)
        self.updater.due(owed, now.timestamp())
        if hints or owed:
            log.info(
                "took over %d open messages and %d chat messages owed from stopped replicas",
                len(hints),
                len(owed),
            )
        self._wake_polls.set()
        return len(hints), len(owed)

    def share(self, me: str) -> None:
        """Run as replica ``me`` among several (before :meth:`resume` and :meth:`start`)."""
        self.me = me
        self.updater.me = me

    def start(self) -> None:
        """Start the background loops (production; tests call :meth:`tick` instead)."""
        if self._tasks:
            return
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._poll_loop(), name="tracking-polls"),
            asyncio.create_task(self._card_loop(), name="tracking-cards"),
        ]
        if self.me is not None:
            self._tasks.append(asyncio.create_task(self._sweep_loop(), name="tracking-sweep"))

    async def stop(self) -> None:
        """Stop the loops and let running card jobs finish briefly; safe to call twice."""
        self._stopping.set()
        self._wake_polls.set()
        self._wake_cards.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.updater.drain(STOP_GRACE)

    async def tick(self, now: datetime | None = None) -> None:
        """One full round at ``now``: receipts waiting for a ref, due polls, expiry, cards."""
        now = now or self.clock()
        await self._polls(now, expire=True)
        await self.updater.flush(now.timestamp())

    async def step(self, now: datetime | None = None) -> float:
        """One round of the poll loop at ``now``; returns the seconds it may sleep after it.

        Only what is due runs: the polls due now, waiting receipts if there are any, and the
        expiry sweep once every ``EXPIRE_EVERY``.
        """
        now = now or self.clock()
        await self._polls(now, expire=self._expire_at is None or now >= self._expire_at)
        wait = IDLE_SECONDS
        due = self.poller.schedule.next_due()
        if due is not None:
            wait = min(wait, (due - self.clock()).total_seconds())
        return wait

    # -- events from the chat and from providers ----------------------------------------------

    def messages_sent(self, messages: Sequence[Message]) -> None:
        """A send stored these messages (see :class:`bot.tracking.events.CardEvents`)."""
        self.poller.track(messages, self.clock())
        self._wake_if_sooner()

    def card_posted(self, chat_id: int, batch_id: int) -> None:
        """A card was posted by the send path (see :class:`bot.tracking.events.CardEvents`)."""
        self.updater.posted(chat_id, batch_id, self.clock().timestamp())
        self._wake_if_sooner()

    async def post_card(
        self, outcome: SendOutcome, *, note: str = "", reply_to: int | None = None
    ) -> int | None:
        """Post a send's card now unless it has one (see :meth:`CardUpdater.post_now`)."""
        if not outcome.replayed:
            self.messages_sent(outcome.messages)  # tracked even if no card posts
        stamp = self.clock().timestamp()
        return await self.updater.post_now(outcome, stamp, note=note, reply_to=reply_to)

    async def post_text(self, entry_id: int, chat_id: int) -> None:
        """Post an outbox text now; the loop tries again if Telegram cannot take it."""
        await self.updater.tell_now(entry_id, chat_id, self.clock().timestamp())

    def outbox_written(self, entries: Sequence[Due]) -> None:
        """The outbox's listener: entries became pending (after their commit).

        Among several replicas, entries another replica delivers are left to it (it finds
        the change in its sweep).
        """
        me = self.me
        if me is not None:
            entries = [e for e in entries if e.replica is None or e.replica == me]
        self.updater.due(entries, self.clock().timestamp())

    async def sweep(self, since: datetime) -> int:
        """Queue this replica's entries that another replica made pending since ``since``."""
        owed = await self.store.outbox.owned_since(since)
        if owed:
            self.updater.due(owed, self.clock().timestamp())
        return len(owed)

    async def receive(
        self, provider: str, reports: Sequence[StatusReport], *, source: str = "webhook"
    ) -> ReceiptOutcome:
        """Apply receipts a provider pushed; unknown refs are retried for a few minutes."""
        now = self.clock()
        outcome = await self.poller.receive(provider, reports, now, source=source)
        unknown = set(outcome.unknown_refs)
        for report in reports:
            if report.ref in unknown and len(self._orphans) < ORPHAN_MAX:
                kept, first = self._orphans.get((provider, report.ref), ([], now))
                self._orphans[(provider, report.ref)] = ([*kept, report], first)
        return outcome

    async def refresh(self, batch_id: int, chat_id: int) -> RefreshOutcome:
        """Poll the open messages of one send now (the card's Refresh button)."""
        now = self.clock()
        if not self._press(("refresh", batch_id), now.timestamp(), REFRESH_COOLDOWN):
            return RefreshOutcome(throttled=True)
        messages = await self.store.open_in_batch(
            batch_id, self.policy.watch(now), limit=REFRESH_LIMIT
        )
        outcome = await self.poller.poll(messages, now, source="refresh")
        return RefreshOutcome(outcome.asked, len(outcome.moved), outcome.errors)

    def request_details(self, batch_id: int, chat_id: int) -> bool:
        """Queue the Details message of a send; False when it was just posted."""
        stamp = self.clock().timestamp()
        if not self._press(("details", batch_id), stamp, DETAILS_COOLDOWN):
            return False
        self.updater.scheduler.want(JobKind.DETAILS, batch_id, chat_id, stamp)
        self._wake_cards.set()
        return True

    def may_press(self, action: str, batch_id: int, cooldown: float) -> bool:
        """Whether a press of ``action`` on a send's card is not a repeat within ``cooldown`` s."""
        return self._press((action, batch_id), self.clock().timestamp(), cooldown)

    # -- internals ---------------------------------------------------------------------------

    def _wake_if_sooner(self) -> None:
        """Wake the sleeping poll loop only when a poll is now due before it would wake."""
        until = self._polls_sleep_until
        due = self.poller.schedule.next_due()
        if until is not None and due is not None and due.timestamp() < until:
            self._wake_polls.set()

    def _press(self, key: tuple[str, int], stamp: float, cooldown: float) -> bool:
        last = self._pressed.get(key)
        if last is not None and 0 <= stamp - last < cooldown:
            return False
        if len(self._pressed) > 1024:
            self._pressed = {k: t for k, t in self._pressed.items() if stamp - t < cooldown}
        self._pressed[key] = stamp
        return True

    async def _polls(self, now: datetime, *, expire: bool) -> None:
        async with self._pass_lock:
            if self._orphans:
                await self._retry_orphans(now)
            await self.poller.poll_due(now, stopping=self._stopping.is_set)
            if expire:
                self._expire_at = now + EXPIRE_EVERY
                if self.sweeper is None or await self.sweeper():
                    await self.poller.expire(now)
                    await reconcile(self.poller, self.store.messages, now)
                    for expire_more in self.on_expire:
                        await expire_more(now)

    async def _retry_orphans(self, now: datetime) -> None:
        for key, (_reports, first) in list(self._orphans.items()):
            if now - first > ORPHAN_TTL:
                log.info("no message has %s ref %s: receipt dropped", key[0], key[1])
                del self._orphans[key]
        by_provider: dict[str, list[StatusReport]] = {}
        for (provider, _ref), (reports, _first) in self._orphans.items():
            by_provider.setdefault(provider, []).extend(reports)
        for provider, reports in by_provider.items():
            outcome = await self.poller.receive(provider, reports, now, source="webhook")
            unknown = set(outcome.unknown_refs)
            for report in reports:
                if report.ref not in unknown:
                    self._orphans.pop((provider, report.ref), None)

    async def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            wait = IDLE_SECONDS
            try:
                wait = await self.step()
            except Exception:  # keep tracking through a bad round; it is logged
                log.exception("a delivery-tracking round failed")
            wait = min(max(wait, MIN_SLEEP), IDLE_SECONDS)
            self._polls_sleep_until = self.clock().timestamp() + wait
            try:
                await self._sleep(self._wake_polls, wait)
            finally:
                self._polls_sleep_until = None

    async def _card_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake_cards.clear()
            stamp = self.clock().timestamp()
            wait = IDLE_SECONDS
            try:
                await self.updater.flush(stamp, wait=False)
                wake = self.updater.scheduler.next_wake(stamp)
                if wake is not None:
                    wait = wake - stamp
            except Exception:
                log.exception("a status-card round failed")
            await self._sleep(self._wake_cards, wait)

    async def _sweep_loop(self) -> None:
        since = self.clock() - SWEEP_OVERLAP
        while not self._stopping.is_set():
            started = self.clock()
            try:
                await self.sweep(since)
                # Overlapping windows: a writer's clock or a commit may lag a little.
                since = started - SWEEP_OVERLAP
            except Exception:
                log.exception("a sweep of the outbox failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), SWEEP_SECONDS)

    async def _sleep(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(max(seconds, MIN_SLEEP), IDLE_SECONDS))
        if not self._stopping.is_set():
            event.clear()


def build_tracker(
    bot: Bot,
    services: Services,
    settings: Settings,
    *,
    clock: Clock = system_clock,
    limits: PacerLimits | None = None,
) -> Tracker:
    """Wire a tracker to the application's bot, services and settings."""
    store = TrackingRepository(services.repo.messages, untracked=untracked_channels())
    poller = Poller(
        store,
        services.repo,
        services.accounts,
        PollPolicy.from_settings(settings),
        language_of=services.chats.language_of,
    )
    updater = CardUpdater(
        bot,
        store,
        CardScheduler(ChatPacer(limits)),
        clock=lambda: clock().timestamp(),
        language_of=services.chats.language_of,
    )
    tracker = Tracker(poller, updater, store, clock=clock)
    store.outbox.listener = tracker.outbox_written
    return tracker
