"""The outbox: what each chat must still be told, written with the change that causes it.

A chat is owed a message by a stored send (its status card), by a state change (an edit of
the card, or a mention of the sender when messages finally failed) and by the end of a
scheduled run (the line above its card, or a text saying why it was not sent). Each of these
writes an :class:`~storage.models.OutboxEntry` **in the same transaction** as the change, so
a crash can never keep the change and lose what the chat must hear about it. The delivery
loop (:mod:`bot.tracking`) posts pending entries to Telegram and settles each one in the
transaction that records Telegram's answer (a card's message id), so every entry is either
pending, and delivered again after a restart, or delivered.

- **Coalesced.** One entry per batch and kind: a later change makes the same row pending
  again with a newer ``event_id``, and a post or an edit that shows that event settles it.
  A hundred receipts for one card are one pending row and one edit.
- **Held.** An entry written with ``hold_until`` is posted by the process that wrote it
  (``/send`` answers with its own card at once); nobody else posts it before then. A new
  process releases every hold at start (:meth:`Outbox.release_holds`): one bot process per
  database is the supported deployment, so a hold it finds belonged to a stopped process.
- **Told in process.** Writers pass what they wrote to :meth:`Outbox.announce` after their
  commit, which hands it to the in-process :attr:`Outbox.listener` (the delivery loop); at
  start the loop reads :meth:`Outbox.pending` instead.

Nothing here talks to Telegram or renders text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import OutboxEntry, OutboxKind, OutboxState, utcnow

PENDING = OutboxState.PENDING.value


@dataclass(frozen=True, slots=True)
class Want:
    """A batch whose chat must see its states up to ``event_id`` (0: whatever is stored)."""

    batch_id: int
    chat_id: int
    event_id: int = 0


@dataclass(frozen=True, slots=True)
class Due:
    """A pending entry as the delivery loop is told about it (a plain value, no session)."""

    entry_id: int
    kind: OutboxKind
    chat_id: int
    batch_id: int | None
    hold_until: datetime | None

    @classmethod
    def of(cls, entry: OutboxEntry) -> Due:
        """The value of a stored entry."""
        assert entry.id is not None
        return cls(
            entry.id, OutboxKind(entry.kind), entry.chat_id, entry.batch_id, entry.hold_until
        )


Listener = Callable[[Sequence[Due]], None]


class Outbox:
    """Writes entries inside other writers' transactions; reads and settles them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Told after a commit about every entry that became pending (the delivery loop).
        self.listener: Listener | None = None

    # -- writing, inside the caller's write transaction -------------------------------------

    async def want(
        self,
        s: AsyncSession,
        kind: OutboxKind,
        wants: Iterable[Want],
        *,
        now: datetime,
        hold_until: datetime | None = None,
        text: str = "",
    ) -> list[OutboxEntry]:
        """Make the ``kind`` entry of each batch pending (created if new); the entries.

        An existing entry keeps its hold and text and takes the newer ``event_id``; a new one
        gets ``hold_until`` and ``text``.
        """
        newest: dict[int, Want] = {}
        for want in wants:
            seen = newest.get(want.batch_id)
            if seen is None or want.event_id > seen.event_id:
                newest[want.batch_id] = want
        if not newest:
            return []
        rows = await s.exec(
            select(OutboxEntry)
            .where(OutboxEntry.kind == kind.value, col(OutboxEntry.batch_id).in_(list(newest)))
            .order_by(col(OutboxEntry.id))
            .with_for_update()  # PostgreSQL: a concurrent settle waits; SQLite: see Database
        )
        found = {entry.batch_id: entry for entry in rows}
        entries: list[OutboxEntry] = []
        for batch_id, want in newest.items():
            entry = found.get(batch_id)
            if entry is None:
                entry = OutboxEntry(
                    chat_id=want.chat_id,
                    batch_id=batch_id,
                    kind=kind.value,
                    event_id=want.event_id,
                    text=text,
                    hold_until=hold_until,
                    created_at=now,
                    updated_at=now,
                )
                s.add(entry)
            else:
                entry.state = PENDING
                entry.event_id = max(entry.event_id, want.event_id)
                entry.updated_at = now
            entries.append(entry)
        await s.flush()
        return entries

    async def add_text(
        self, s: AsyncSession, chat_id: int, text: str, *, now: datetime
    ) -> OutboxEntry:
        """A new pending text for the chat (HTML, rendered by the caller)."""
        entry = OutboxEntry(
            chat_id=chat_id,
            kind=OutboxKind.TEXT.value,
            text=text,
            created_at=now,
            updated_at=now,
        )
        s.add(entry)
        await s.flush()
        return entry

    async def note_card(
        self, s: AsyncSession, batch_id: int, note: str, *, now: datetime
    ) -> OutboxEntry | None:
        """Give a card not yet posted the line above it; the entry (None: posted already)."""
        entry = (
            await s.exec(
                select(OutboxEntry)
                .where(
                    OutboxEntry.batch_id == batch_id,
                    OutboxEntry.kind == OutboxKind.CARD.value,
                    OutboxEntry.state == PENDING,
                )
                .with_for_update()
            )
        ).first()
        if entry is not None:
            entry.text = note
            entry.updated_at = now
            await s.flush()
        return entry

    def announce(self, entries: Iterable[OutboxEntry | None]) -> None:
        """After the commit: tell the listener about the entries that are pending."""
        if self.listener is None:
            return
        due = [Due.of(e) for e in entries if e is not None and e.state == PENDING]
        if due:
            self.listener(due)

    # -- settling, inside the transaction that records Telegram's answer --------------------

    async def settle(
        self,
        s: AsyncSession,
        kind: OutboxKind,
        batch_id: int,
        *,
        shown_event_id: int,
        now: datetime,
        message_id: int | None = None,
    ) -> bool:
        """The chat now shows the batch up to ``shown_event_id``: deliver what that covers.

        Whether the entry was delivered; False when it is still pending (a newer change came
        meanwhile) or there is none. A card's post also ends its hold and keeps its message id.
        """
        if message_id is not None:
            await s.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.batch_id) == batch_id, col(OutboxEntry.kind) == kind.value)
                .values(message_id=message_id, hold_until=None)
            )
        result = await s.exec(
            update(OutboxEntry)
            .where(
                col(OutboxEntry.batch_id) == batch_id,
                col(OutboxEntry.kind) == kind.value,
                col(OutboxEntry.state) == PENDING,
                col(OutboxEntry.event_id) <= shown_event_id,
            )
            .values(state=OutboxState.DELIVERED.value, delivered_at=now, updated_at=now)
        )
        return result.rowcount == 1

    async def drop_batch(self, s: AsyncSession, kind: OutboxKind, batch_id: int) -> None:
        """Give up the batch's pending ``kind`` entry (its card was deleted)."""
        await s.exec(
            update(OutboxEntry)
            .where(
                col(OutboxEntry.batch_id) == batch_id,
                col(OutboxEntry.kind) == kind.value,
                col(OutboxEntry.state) == PENDING,
            )
            .values(state=OutboxState.DROPPED.value, updated_at=utcnow())
        )

    async def drop_chat(self, s: AsyncSession, chat_id: int) -> None:
        """Give up every pending entry of a chat that blocked the bot."""
        await s.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.chat_id) == chat_id, col(OutboxEntry.state) == PENDING)
            .values(state=OutboxState.DROPPED.value, updated_at=utcnow())
        )

    # -- units of work of their own ----------------------------------------------------------

    async def text_delivered(self, entry_id: int, message_id: int) -> None:
        """Telegram accepted a text entry as ``message_id`` (urgent: see ``Database.write``)."""
        now = utcnow()
        async with self.db.write(urgent=True) as s:
            await s.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.id) == entry_id, col(OutboxEntry.state) == PENDING)
                .values(
                    state=OutboxState.DELIVERED.value,
                    message_id=message_id,
                    delivered_at=now,
                    updated_at=now,
                )
            )

    async def drop(self, entry_id: int) -> None:
        """Give up one entry (Telegram refuses it for good)."""
        async with self.db.write() as s:
            await s.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.id) == entry_id, col(OutboxEntry.state) == PENDING)
                .values(state=OutboxState.DROPPED.value, updated_at=utcnow())
            )

    async def release(self, batch_id: int) -> None:
        """End the hold of a batch's card (its sender could not post it): the loop will."""
        async with self.db.write() as s:
            await s.exec(
                update(OutboxEntry)
                .where(
                    col(OutboxEntry.batch_id) == batch_id,
                    col(OutboxEntry.kind) == OutboxKind.CARD.value,
                )
                .values(hold_until=None)
            )

    async def release_holds(self) -> int:
        """At start: end every hold (they belonged to a stopped process); how many."""
        async with self.db.write() as s:
            result = await s.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.hold_until).is_not(None))
                .values(hold_until=None)
            )
            return int(result.rowcount)

    async def pending(self) -> list[OutboxEntry]:
        """Every pending entry, oldest first (at start)."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(OutboxEntry)
                .where(OutboxEntry.state == PENDING)
                .order_by(col(OutboxEntry.id))
            )
            return list(rows)

    async def get(self, entry_id: int) -> OutboxEntry | None:
        """One entry by id."""
        async with self.db.read() as s:
            return await s.get(OutboxEntry, entry_id)

    async def of_batch(self, batch_id: int, kind: OutboxKind) -> OutboxEntry | None:
        """The batch's ``kind`` entry, if it has one."""
        async with self.db.read() as s:
            return (
                await s.exec(
                    select(OutboxEntry).where(
                        OutboxEntry.batch_id == batch_id, OutboxEntry.kind == kind.value
                    )
                )
            ).first()
