"""Which card job runs when: coalesced edits per card, paced messages per chat.

A job is "bring the card of batch 7 up to date" (post it if the send has none yet, else edit
it), "post the failure notice of batch 7", "post the details of batch 7" or "post outbox text
12". Asking for a job that is already pending changes nothing, so a burst of receipts for one
card becomes one edit, and the edit renders the database when it *runs*: the last state
always wins. An edit of a card waits until ``edit_interval`` seconds after its previous
edit; every job waits for its chat's turn in the :class:`ChatPacer`. Nothing here sleeps or
talks to Telegram; :class:`bot.tracking.updater.CardUpdater` runs the jobs. Every job but the
details is owed by a pending outbox entry (:mod:`storage.outbox`), so what this in-memory
queue held at a stop is rebuilt from the database at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.tracking.limiter import ChatPacer

EDIT_INTERVAL = 3.0
_PRUNE_AT = 4096


class JobKind(StrEnum):
    """What a job does; in one chat cards go first, then notices, details and texts."""

    EDIT = "edit"  # the card: posted when the send has none yet, else edited
    NOTICE = "notice"
    DETAILS = "details"
    TEXT = "text"  # an outbox text (target: the entry's id)


_ORDER = {JobKind.EDIT: 0, JobKind.NOTICE: 1, JobKind.DETAILS: 2, JobKind.TEXT: 3}


@dataclass(slots=True)
class Job:
    """One pending piece of chat output: for a batch, or an outbox text (``target``)."""

    kind: JobKind
    target: int  # the batch id; the outbox entry id of a text
    chat_id: int
    not_before: float
    attempts: int = 0

    @property
    def batch_id(self) -> int:
        """The batch of a card, notice or details job."""
        return self.target

    @property
    def key(self) -> tuple[JobKind, int]:
        """Jobs with the same key are the same job."""
        return self.kind, self.target


class CardScheduler:
    """Pending jobs, the time of each card's last edit, and chats that cannot be reached."""

    def __init__(self, pacer: ChatPacer, *, edit_interval: float = EDIT_INTERVAL) -> None:
        self.pacer = pacer
        self.edit_interval = edit_interval
        self._jobs: dict[tuple[JobKind, int], Job] = {}
        self._running: set[tuple[JobKind, int]] = set()
        self._last_edit: dict[int, float] = {}
        self._dead_chats: set[int] = set()

    @property
    def pending(self) -> int:
        """Jobs waiting to run."""
        return len(self._jobs)

    def want(
        self,
        kind: JobKind,
        target: int,
        chat_id: int,
        now: float,
        *,
        delay: float = 0.0,
        attempts: int = 0,
    ) -> None:
        """Ask for a job; merges with the same pending job (the earliest allowed time wins)."""
        if chat_id in self._dead_chats:
            return
        not_before = now + delay
        if kind is JobKind.EDIT:
            not_before = max(not_before, self._edit_allowed(target))
        job = self._jobs.get((kind, target))
        if job is None:
            self._jobs[(kind, target)] = Job(kind, target, chat_id, not_before, attempts)
        else:
            job.not_before = min(job.not_before, not_before)
            job.attempts = max(job.attempts, attempts)

    def edited(self, batch_id: int, now: float) -> None:
        """The card was just posted or edited outside a job: its window starts now."""
        if len(self._last_edit) > _PRUNE_AT:
            horizon = now - self.edit_interval
            self._last_edit = {b: t for b, t in self._last_edit.items() if t > horizon}
        self._last_edit[batch_id] = now

    def take_due(self, now: float) -> list[Job]:
        """Jobs to run now: at most one per chat, each within its chat's and card's limits."""
        ready = sorted(
            (j for j in self._jobs.values() if j.not_before <= now and j.key not in self._running),
            key=lambda j: (j.not_before, _ORDER[j.kind], j.target),
        )
        taken: list[Job] = []
        chats: set[int] = set()
        for job in ready:
            if job.chat_id in chats or not self.pacer.ready(job.chat_id, now):
                continue
            if job.kind is JobKind.EDIT and self._edit_allowed(job.batch_id) > now:
                continue
            self.pacer.take(job.chat_id, now)
            if job.kind is JobKind.EDIT:
                self.edited(job.batch_id, now)
            chats.add(job.chat_id)
            del self._jobs[job.key]
            self._running.add(job.key)
            taken.append(job)
        return taken

    def done(self, job: Job) -> None:
        """A job taken by :meth:`take_due` has finished (whatever its outcome)."""
        self._running.discard(job.key)

    def next_wake(self, now: float) -> float | None:
        """When the earliest pending job may run, or None when nothing waits."""
        times = [
            max(job.not_before, self.pacer.free_at(job.chat_id, now))
            for job in self._jobs.values()
            if job.key not in self._running
        ]
        return min(times) if times else None

    def chat_gone(self, chat_id: int) -> None:
        """The chat blocked the bot: drop its jobs and take no more until it is seen again."""
        self._dead_chats.add(chat_id)
        for key in [k for k, j in self._jobs.items() if j.chat_id == chat_id]:
            del self._jobs[key]

    def chat_back(self, chat_id: int) -> None:
        """The bot reached the chat again (a new card was posted there)."""
        self._dead_chats.discard(chat_id)

    def drop(self, kind: JobKind, target: int, *, from_time: float | None = None) -> None:
        """Drop a pending job (e.g. edits of a card that was deleted).

        With ``from_time``, only a job not due before then (a card's hold, once its sender
        posted the card itself): a job asked for by a newer change is due sooner and stays.
        """
        job = self._jobs.get((kind, target))
        if job is not None and (from_time is None or job.not_before >= from_time):
            del self._jobs[(kind, target)]

    def _edit_allowed(self, batch_id: int) -> float:
        last = self._last_edit.get(batch_id)
        return float("-inf") if last is None else last + self.edit_interval
