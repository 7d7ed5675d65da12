"""Runs card jobs against Telegram: edit cards, mention the sender on failures, post details.

Every job renders the database when it runs, so a coalesced edit shows the latest states.
Telegram's answers decide what happens next:

- "message is not modified": the card already shows this; success.
- "message to edit not found" / "message can't be edited": the card was deleted; it is marked
  dead (``Batch.card_dead``) and never edited again.
- ``Forbidden`` (blocked, kicked) or "chat not found": every card of the chat is marked dead
  and the chat gets nothing more until a new card is posted there.
- ``RetryAfter``: the chat is paused for that long and the job waits for it.
- network errors: the job is retried a few times with growing delays, then given up.

Each outcome is logged once per job, so a dead card or chat does not pile up errors.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Iterable
from datetime import timedelta

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.cards import card_keyboard, render_card
from bot.render import CARD_LINES, card_details, failure_notice
from bot.tracking.scheduler import CardScheduler, Job, JobKind
from providers.base import DeliveryState
from storage.models import Batch, Message
from storage.tracking_repo import TrackingRepository

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
NO_CARD_RETRY = 2.0  # seconds; the card of a send that is still being posted
NO_CARD_ATTEMPTS = 30
DETAILS_LIMIT = 3800  # characters of HTML; Telegram's limit is 4096 after parsing
DETAILS_ROWS = 400

_NOT_MODIFIED = "message is not modified"
_CARD_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")
_CHAT_GONE = (
    "chat not found",
    "have no rights to send",
    "not enough rights",
    "chat_write_forbidden",
)


def _reason(exc: TelegramError) -> str:
    return exc.message.lower()


def retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class CardUpdater:
    """Queues card jobs on a :class:`CardScheduler` and runs the due ones."""

    def __init__(self, bot: Bot, store: TrackingRepository, scheduler: CardScheduler) -> None:
        self._bot = bot
        self._store = store
        self.scheduler = scheduler
        self._tasks: set[asyncio.Task[None]] = set()
        # Called when a job ends: a job of the same card may have been waiting for it.
        self.wake: Callable[[], None] = lambda: None

    # -- asking for jobs ---------------------------------------------------------------------

    def changed(self, moved: Iterable[Message], now: float) -> None:
        """Messages moved: edit their cards; announce the ones that finally failed."""
        batches: dict[int, tuple[int, bool]] = {}
        for message in moved:
            chat_id, failed = batches.get(message.batch_id, (message.chat_id, False))
            batches[message.batch_id] = (
                chat_id,
                failed or DeliveryState(message.state).is_failure,
            )
        for batch_id, (chat_id, failed) in batches.items():
            self.scheduler.want(JobKind.EDIT, batch_id, chat_id, now)
            if failed:
                self.scheduler.want(JobKind.NOTICE, batch_id, chat_id, now)

    def posted(self, chat_id: int, batch_id: int, now: float) -> None:
        """A card was posted elsewhere: it counts for the chat's pace and the card's window."""
        self.scheduler.chat_back(chat_id)
        self.scheduler.pacer.take(chat_id, now)
        self.scheduler.edited(batch_id, now)

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
        try:
            if job.kind is JobKind.EDIT:
                await self._edit(job, now)
            elif job.kind is JobKind.NOTICE:
                await self._notice(job)
            else:
                await self._details(job)
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            log.info("Telegram asked to wait %.0f s before writing to chat %s", wait, job.chat_id)
            self.scheduler.pacer.block(job.chat_id, now + wait)
            self.scheduler.want(job.kind, job.batch_id, job.chat_id, now, delay=wait)
        except Forbidden as exc:
            await self._chat_gone(job.chat_id, exc)
        except BadRequest as exc:
            if any(reason in _reason(exc) for reason in _CHAT_GONE):
                await self._chat_gone(job.chat_id, exc)
            else:
                log.error("Telegram refused the %s of send %s: %s", job.kind, job.batch_id, exc)
        except TelegramError as exc:  # network trouble: try again a little later
            if job.attempts + 1 >= MAX_ATTEMPTS:
                log.warning("gave up the %s of send %s: %s", job.kind, job.batch_id, exc)
            else:
                delay = 2.0 ** (job.attempts + 1)
                self.scheduler.want(
                    job.kind,
                    job.batch_id,
                    job.chat_id,
                    now,
                    delay=delay,
                    attempts=job.attempts + 1,
                )
        except Exception:  # a bug must not stop the other cards
            log.exception("the %s of send %s failed", job.kind, job.batch_id)
        finally:
            self.scheduler.done(job)
            self.wake()

    async def _chat_gone(self, chat_id: int, exc: TelegramError) -> None:
        log.info("chat %s cannot be reached (%s): its cards stop updating", chat_id, exc.message)
        self.scheduler.chat_gone(chat_id)
        await self._store.mark_chat_dead(chat_id)

    async def _edit(self, job: Job, now: float) -> None:
        view = await self._store.card_view(job.batch_id, lines=CARD_LINES)
        if view is None or view.batch.card_dead:
            return
        batch = view.batch
        if batch.card_message_id is None:  # still being posted; its post shows these states
            if job.attempts < NO_CARD_ATTEMPTS:
                self.scheduler.want(
                    job.kind,
                    job.batch_id,
                    job.chat_id,
                    now,
                    delay=NO_CARD_RETRY,
                    attempts=job.attempts + 1,
                )
            return
        if (batch.card_event_id or 0) >= view.last_event_id:
            return  # nothing new since the card was posted or last edited
        try:
            await self._bot.edit_message_text(
                render_card(view),
                chat_id=batch.chat_id,
                message_id=batch.card_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=card_keyboard(view),
            )
        except BadRequest as exc:
            reason = _reason(exc)
            if any(gone in reason for gone in _CARD_GONE):
                log.info("card of send %s is gone (%s): no more edits", batch.id, exc.message)
                self.scheduler.drop(JobKind.EDIT, job.batch_id)
                await self._store.mark_card_dead(job.batch_id)
                return
            if _NOT_MODIFIED not in reason:
                raise
        await self._store.card_synced(job.batch_id, view.last_event_id)

    async def _notice(self, job: Job) -> None:
        batch = await self._store.messages.batch(job.batch_id)
        if batch is None:
            return
        failures = await self._store.failures_since(job.batch_id, batch.notice_event_id or 0)
        if not failures:
            return
        last = max(f.event.id or 0 for f in failures)
        try:
            await self._bot.send_message(
                batch.chat_id,
                failure_notice(batch, [(f.message, f.event) for f in failures]),
                parse_mode=ParseMode.HTML,
                reply_parameters=_reply_to(batch),
            )
        except BadRequest as exc:
            if any(reason in _reason(exc) for reason in _CHAT_GONE):
                raise
            # A notice Telegram refuses would be refused again: do not retry it forever.
            log.error("Telegram refused the failure notice of send %s: %s", batch.id, exc)
        await self._store.notified(job.batch_id, last)

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


def _reply_to(batch: Batch) -> ReplyParameters | None:
    if batch.card_message_id is None or batch.card_dead:
        return None
    return ReplyParameters(batch.card_message_id, allow_sending_without_reply=True)
