"""Runs card jobs against Telegram: post and edit cards, mention the sender, post texts.

Every job renders the database when it runs, so a coalesced edit shows the latest states, and
every job but the details is owed by a pending outbox entry (:mod:`storage.outbox`) that the
job settles in the transaction recording Telegram's answer. Telegram's answers decide what
happens next:

- "message is not modified": the card already shows this; success.
- "message to edit not found" / "message can't be edited": the card was deleted; it is marked
  dead (``Batch.card_dead``) and never edited again.
- ``Forbidden`` (blocked, kicked) or "chat not found": every card of the chat is marked dead,
  what the chat is owed is dropped, and the chat gets nothing more until a new card is posted.
- ``RetryAfter``: the chat is paused for that long and the job waits for it.
- network errors: the job is tried again with growing delays (at most a minute apart) for as
  long as the bot runs; what is owed stays pending in the outbox across a restart.
- any other refusal of a new message: it would be refused again, so it is logged and dropped.

**No duplicate cards.** A batch's card is posted once: every post of a card (the sender's own
at the end of a send, the loop's for a send whose sender could not) runs under one lock per
batch and first reads whether the batch has a card already, in which case it is edited
instead; among several replicas the poster first claims the card's outbox entry in the
database (one conditional UPDATE), so a replica adopted while it stalled leaves the card to
its adopter. The post and its record are two steps no transaction can join (Telegram has no
idempotent send): a stop after Telegram accepted a post and before the ~1 ms commit that
records its message id leaves the entry pending, and the post is made again after the
restart. That window is kept as small as it can be: the record is the first thing done with
Telegram's answer, in one short transaction (``TrackingRepository.set_card``).

Each outcome is logged once per job, so a dead card or chat does not pile up errors.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.cards import card_keyboard, outcome_view, render_card
from bot.render import CARD_LINES, card_details, failure_notice
from bot.services.sending import SendOutcome
from bot.tracking.scheduler import CardScheduler, Job, JobKind
from i18n import ENGLISH, N_, _, use_language
from storage.models import Batch, OutboxKind, OutboxState
from storage.outbox import Due
from storage.tracking_repo import CardView, TrackingRepository

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # of a Details post (a button press; nothing durable owes it)
MAX_RETRY_DELAY = 60.0  # seconds between two tries of something owed
POST_RETRY = 2.0  # seconds; a card its sender could not post is tried by the loop after this
HOLD_MARGIN = 5.0  # seconds: a hold this close to its end may have been taken over
DETAILS_LIMIT = 3800  # characters of HTML; Telegram's limit is 4096 after parsing
DETAILS_ROWS = 400

# Telegram's own error texts, matched against its answers.
_NOT_MODIFIED = "message is not modified"  # i18n: not shown
_CARD_GONE = (
    "message to edit not found",  # i18n: not shown
    "message can't be edited",  # i18n: not shown
    "message_id_invalid",
)
_CHAT_GONE = (
    "chat not found",  # i18n: not shown
    "have no rights to send",  # i18n: not shown
    "not enough rights",  # i18n: not shown
    "chat_write_forbidden",
)
# Above a card the loop posts because its sender could not (a stop, Telegram unreachable).
LATE_NOTE = N_(
    "♻️ Posted late: the bot was restarted or could not reach Telegram during this send."
)
_KINDS = {
    OutboxKind.CARD: JobKind.EDIT,
    OutboxKind.FAILURES: JobKind.NOTICE,
    OutboxKind.TEXT: JobKind.TEXT,
}


def _reason(exc: TelegramError) -> str:
    return exc.message.lower()


def _chat_gone_reason(exc: TelegramError) -> bool:
    return isinstance(exc, Forbidden) or any(r in _reason(exc) for r in _CHAT_GONE)


def retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Exclusive:
    """One asyncio lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[JobKind, int], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[JobKind, int]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class CardUpdater:
    """Queues card jobs on a :class:`CardScheduler` and runs the due ones."""

    def __init__(
        self,
        bot: Bot,
        store: TrackingRepository,
        scheduler: CardScheduler,
        *,
        clock: Callable[[], float] | None = None,
        language_of: Callable[[int], Awaitable[str]] | None = None,
    ) -> None:
        self._bot = bot
        self._store = store
        # Cards and notices are rendered in their chat's language (None: English).
        self._language_of = language_of
        self.scheduler = scheduler
        # Seconds, the tracker's clock: a card's edit window starts when Telegram answered,
        # not when its job was taken (a busy loop may delay the call by a fraction of it).
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._exclusive = _Exclusive()
        # Several replicas: this one's id; a card is posted only by the replica owning its
        # outbox entry (None: a single process, which owns everything).
        self.me: str | None = None
        # Called when a job ends, or a new one may run: wakes the card loop.
        self.wake: Callable[[], None] = lambda: None
        # Told each card edit's result (edited, not_modified, gone, retry_after, error).
        self.on_edit: Callable[[str], None] = lambda result: None

    def _answered(self, now: float) -> float:
        """When Telegram answered the call a job made at ``now``."""
        return now if self._clock is None else max(now, self._clock())

    # -- asking for jobs ---------------------------------------------------------------------

    def due(self, entries: Sequence[Due], now: float) -> None:
        """Outbox entries became pending: queue the job that delivers each (after its hold)."""
        for entry in entries:
            target = entry.entry_id if entry.kind is OutboxKind.TEXT else entry.batch_id
            if target is None:
                continue
            delay = 0.0
            if entry.hold_until is not None:
                delay = max(0.0, entry.hold_until.timestamp() - now)
            self.scheduler.want(_KINDS[entry.kind], target, entry.chat_id, now, delay=delay)
        self.wake()

    def posted(self, chat_id: int, batch_id: int, now: float) -> None:
        """A card was posted: it counts for the chat's pace and the card's window."""
        self.scheduler.chat_back(chat_id)
        self.scheduler.pacer.take(chat_id, now)
        self.scheduler.edited(batch_id, now)

    # -- delivering at once (the send path) ---------------------------------------------------

    async def post_now(
        self, outcome: SendOutcome, now: float, *, note: str = "", reply_to: int | None = None
    ) -> int | None:
        """Post a send's card now, unless it has one; its message id (None: not posted).

        A fresh send's card is rendered from its outcome in memory, and while its outbox entry
        is held for this caller nobody else can have posted it, so the database is not even
        read (among several replicas the entry is only claimed, :meth:`_claim`); a replay's
        card (or a fresh one past its hold) is checked and rendered from the database. What
        cannot be posted now stays owed: the loop posts it a little later.
        """
        batch_id = outcome.batch.id
        assert batch_id is not None
        hold = outcome.card_hold_until
        owed = True  # a fresh send's card is owed by its (held) outbox entry
        async with self._exclusive.hold((JobKind.EDIT, batch_id)):
            if outcome.replayed or hold is None or hold.timestamp() - HOLD_MARGIN <= now:
                found = await self._store.card_state(batch_id)
                if found is None:
                    return None
                batch, entry = found
                if batch.card_message_id is not None or batch.card_dead:
                    if entry is not None and entry.state == OutboxState.PENDING.value:
                        self.scheduler.want(JobKind.EDIT, batch_id, batch.chat_id, now)
                        self.wake()  # posted by the loop meanwhile: bring it up to date
                    return batch.card_message_id
                if outcome.replayed and outcome.still_sending:
                    return None  # its first send is still running here and posts it
                if entry is not None and not self._owns(entry.replica):
                    return None  # another replica's card: it posts it
                note = note or (entry.text if entry is not None else "")
                owed = entry is not None  # a send from before the outbox has none
            if not await self._claim(batch_id, owed=owed):
                return None  # adopted while this replica stalled: its adopter posts it
            view: CardView | None
            if outcome.replayed or outcome.batch.progress is not None:  # a large one: stored
                view = await self._store.card_view(batch_id, lines=CARD_LINES)
            else:
                assert outcome.last_event_id is not None
                view = outcome_view(outcome, outcome.last_event_id)
            if view is None:
                return None
            try:
                return await self._post(view, now, note=note, reply_to=reply_to)
            except TelegramError as exc:
                await self._not_posted(outcome.batch, exc, now)
                return None

    async def _claim(self, batch_id: int, *, owed: bool) -> bool:
        """Among several replicas: whether the card's entry is still ours, right before posting.

        What was read a moment ago may be stale: a replica that stalls past its expiry (a
        paused VM, a starved process) is adopted, and its adopter posts the card. A single
        process owns everything and skips the round trip.
        """
        if self.me is None or not owed:
            return True
        return await self._store.outbox.claim(batch_id, OutboxKind.CARD, self.me)

    def _owns(self, owner: str | None) -> bool:
        """Whether this process delivers an entry owned by ``owner``."""
        return self.me is None or owner is None or owner == self.me

    async def tell_now(self, entry_id: int, chat_id: int, now: float) -> None:
        """Post an outbox text now; on failure the loop tries again."""
        try:
            await self._text(entry_id)
        except TelegramError as exc:
            if _chat_gone_reason(exc):
                await self._chat_gone(chat_id, exc)
                return
            log.info("could not post a text to chat %s now (%s); retrying", chat_id, exc)
            delay = retry_seconds(exc) if isinstance(exc, RetryAfter) else POST_RETRY
            self.scheduler.want(JobKind.TEXT, entry_id, chat_id, now, delay=delay)
            self.wake()

    async def _not_posted(self, batch: Batch, exc: TelegramError, now: float) -> None:
        assert batch.id is not None
        log.warning("could not post the card of send %s now: %s", batch.id, exc.message)
        if _chat_gone_reason(exc):
            await self._chat_gone(batch.chat_id, exc)
            return
        delay = POST_RETRY
        if isinstance(exc, RetryAfter):
            delay = retry_seconds(exc)
            self.scheduler.pacer.block(batch.chat_id, now + delay)
        await self._store.outbox.release(batch.id)  # the loop takes it over
        self.scheduler.want(JobKind.EDIT, batch.id, batch.chat_id, now, delay=delay)
        self.wake()

    # -- running jobs ------------------------------------------------------------------------

    async def flush(self, now: float, *, wait: bool = True) -> int:
        """Start every job due at ``now``; with ``wait``, return when they are done."""
        jobs = self.scheduler.take_due(now)
        tasks = [asyncio.create_task(self._run(job, now)) for job in jobs]
        for task in tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if wait and tasks:
            await asyncio.gather(*tasks)
        return len(jobs)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a deadline for shutdown
        """Wait for running jobs (at shutdown), cancelling what is left after ``timeout``."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, job: Job, now: float) -> None:
        language = ENGLISH
        if self._language_of is not None:
            try:
                language = await self._language_of(job.chat_id)
            except Exception:  # the job meets the same database and handles what it says
                log.warning("could not read the language of chat %s", job.chat_id)
        with use_language(language):
            await self._run_job(job, now)

    async def _run_job(self, job: Job, now: float) -> None:
        try:
            if job.kind is JobKind.EDIT:
                await self._card(job, now)
            elif job.kind is JobKind.NOTICE:
                await self._notice(job)
            elif job.kind is JobKind.TEXT:
                await self._text(job.target)
            else:
                await self._details(job)
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            log.info("Telegram asked to wait %.0f s before writing to chat %s", wait, job.chat_id)
            self.scheduler.pacer.block(job.chat_id, now + wait)
            self.scheduler.want(job.kind, job.target, job.chat_id, now, delay=wait)
        except TelegramError as exc:
            if _chat_gone_reason(exc):
                await self._chat_gone(job.chat_id, exc)
            elif isinstance(exc, BadRequest):
                log.error("Telegram refused the %s of send %s: %s", job.kind, job.target, exc)
            elif job.kind is JobKind.DETAILS and job.attempts + 1 >= MAX_ATTEMPTS:
                log.warning("gave up the %s of send %s: %s", job.kind, job.target, exc)
            else:  # network trouble: try again a little later (what is owed, for good)
                self.scheduler.want(
                    job.kind,
                    job.target,
                    job.chat_id,
                    now,
                    delay=min(2.0 ** (job.attempts + 1), MAX_RETRY_DELAY),
                    attempts=job.attempts + 1,
                )
        except Exception:  # a bug must not stop the other cards; the outbox keeps what is owed
            log.exception("the %s of send %s failed", job.kind, job.target)
        finally:
            self.scheduler.done(job)
            self.wake()

    async def _chat_gone(self, chat_id: int, exc: TelegramError) -> None:
        log.info("chat %s cannot be reached (%s): its cards stop updating", chat_id, exc.message)
        self.scheduler.chat_gone(chat_id)
        await self._store.mark_chat_dead(chat_id)

    async def _card(self, job: Job, now: float) -> None:
        async with self._exclusive.hold((JobKind.EDIT, job.batch_id)):
            view = await self._store.card_view(job.batch_id, lines=CARD_LINES)
            if view is None:
                return
            batch = view.batch
            if batch.card_dead:
                await self._store.mark_card_dead(job.batch_id)  # drops what a change owed it
                return
            if batch.card_message_id is None:
                await self._post_owed(job, view, now)
            else:
                await self._edit(job, view, batch.card_message_id, now)

    async def _post_owed(self, job: Job, view: CardView, now: float) -> None:
        """A send without a card: post it, unless nothing owes it or its sender still may."""
        entry = await self._store.outbox.of_batch(job.batch_id, OutboxKind.CARD)
        if entry is None or entry.state != OutboxState.PENDING.value:
            return
        if not self._owns(entry.replica):
            return  # another replica posts it (its owner, or whoever takes it over)
        if entry.hold_until is not None and entry.hold_until.timestamp() > now:
            wait = entry.hold_until.timestamp() - now
            self.scheduler.want(JobKind.EDIT, job.batch_id, job.chat_id, now, delay=wait)
            return
        if not await self._claim(job.batch_id, owed=True):
            return  # adopted meanwhile: the adopter posts it
        # A large send's card is posted by the loop from the start (it shows progress).
        late = _(LATE_NOTE) if view.batch.progress is None else ""
        await self._post(view, now, note=entry.text or late)

    async def _post(
        self, view: CardView, now: float, *, note: str = "", reply_to: int | None = None
    ) -> int | None:
        """Post a card and record it (under the batch's lock); its message id."""
        batch = view.batch
        assert batch.id is not None
        text = render_card(view, _at(now))
        try:
            card = await self._bot.send_message(
                batch.chat_id,
                f"{note}\n{text}" if note else text,
                parse_mode=ParseMode.HTML,
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
                reply_markup=card_keyboard(view),
            )
        except BadRequest as exc:
            if _chat_gone_reason(exc):
                raise
            # Refused for what it says: it would be refused again. Nothing to retry.
            log.error("Telegram refused the card of send %s: %s", batch.id, exc.message)
            await self._store.outbox.drop_card(batch.id)
            return None
        # Recorded before anything else: this commit is the end of the only window in which a
        # stop makes the card be posted twice (see the module docstring).
        delivered = await self._store.set_card(batch.id, card.message_id, view.last_event_id)
        self.posted(batch.chat_id, batch.id, self._answered(now))
        if delivered:  # the hold's job is not needed any more
            self.scheduler.drop(JobKind.EDIT, batch.id, from_time=now + 10 * POST_RETRY)
        else:  # a change newer than what the card shows: edit it in
            self.scheduler.want(JobKind.EDIT, batch.id, batch.chat_id, now)
            self.wake()
        return card.message_id

    async def _edit(self, job: Job, view: CardView, card_message_id: int, now: float) -> None:
        batch = view.batch
        if (batch.card_event_id or 0) >= view.last_event_id:
            await self._store.card_synced(job.batch_id, view.last_event_id)  # settles the entry
            return  # nothing new since the card was posted or last edited
        try:
            await self._bot.edit_message_text(
                render_card(view, _at(now)),
                chat_id=batch.chat_id,
                message_id=card_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=card_keyboard(view),
            )
        except BadRequest as exc:
            reason = _reason(exc)
            if any(gone in reason for gone in _CARD_GONE):
                self.on_edit("gone")
                log.info("card of send %s is gone (%s): no more edits", batch.id, exc.message)
                self.scheduler.drop(JobKind.EDIT, job.batch_id)
                await self._store.mark_card_dead(job.batch_id)
                return
            if _NOT_MODIFIED not in reason:
                self.on_edit("error")
                raise
            self.on_edit("not_modified")
        except RetryAfter:
            self.on_edit("retry_after")
            raise
        except TelegramError:
            self.on_edit("error")
            raise
        else:
            self.on_edit("edited")
        self.scheduler.edited(job.batch_id, self._answered(now))
        await self._store.card_synced(job.batch_id, view.last_event_id)

    async def _notice(self, job: Job) -> None:
        batch = await self._store.messages.batch(job.batch_id)
        if batch is None:
            return
        told = batch.notice_event_id or 0
        failures = await self._store.failures_since(job.batch_id, told)
        if not failures:  # told already (a card posted later shows them): settle the entry
            await self._store.notified(job.batch_id, told)
            return
        last = max(f.event.id or 0 for f in failures)
        message_id = None
        try:
            sent = await self._bot.send_message(
                batch.chat_id,
                failure_notice(batch, [(f.message, f.event) for f in failures]),
                parse_mode=ParseMode.HTML,
                reply_parameters=_reply_to(batch),
            )
            message_id = sent.message_id
        except BadRequest as exc:
            if _chat_gone_reason(exc):
                raise
            # A notice Telegram refuses would be refused again: do not retry it forever.
            log.error("Telegram refused the failure notice of send %s: %s", batch.id, exc)
        await self._store.notified(job.batch_id, last, message_id)

    async def _text(self, entry_id: int) -> None:
        async with self._exclusive.hold((JobKind.TEXT, entry_id)):
            entry = await self._store.outbox.get(entry_id)
            if entry is None or entry.state != OutboxState.PENDING.value:
                return
            if not self._owns(entry.replica):
                return  # another replica tells it
            try:
                sent = await self._bot.send_message(
                    entry.chat_id, entry.text, parse_mode=ParseMode.HTML
                )
            except BadRequest as exc:
                if _chat_gone_reason(exc):
                    raise
                log.error("Telegram refused a text for chat %s: %s", entry.chat_id, exc)
                await self._store.outbox.drop(entry_id)
                return
            await self._store.outbox.text_delivered(entry_id, sent.message_id)

    async def _details(self, job: Job) -> None:
        view = await self._store.card_view(job.batch_id, lines=0)
        if view is None:
            return
        messages = await self._store.messages.of_batch(job.batch_id, limit=DETAILS_ROWS)
        await self._bot.send_message(
            view.batch.chat_id,
            card_details(view.batch, messages, view.total, DETAILS_LIMIT),
            parse_mode=ParseMode.HTML,
            reply_parameters=_reply_to(view.batch),
        )


def _at(stamp: float) -> datetime:
    """A clock stamp (seconds) as the aware UTC time a card shows progress at."""
    return datetime.fromtimestamp(stamp, UTC)


def _reply_to(batch: Batch) -> ReplyParameters | None:
    if batch.card_message_id is None or batch.card_dead:
        return None
    return ReplyParameters(batch.card_message_id, allow_sending_without_reply=True)
