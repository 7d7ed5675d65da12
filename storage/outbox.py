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
  (``/send`` answers with its own card at once); nobody else posts it before then. A single
  process releases every hold at start (:meth:`Outbox.release_holds`).
- **Owned.** Each entry names the replica that delivers it (``replica``: its writer), so with
  several replicas one card is posted by one process. A replica that changes another's
  *pending* entry tells only its own process; the owner finds the change with
  :meth:`Outbox.owned_since`. An entry already told (its card is out) goes to the replica
  that makes it pending again. A dead replica's pending entries are taken over
  (:meth:`Outbox.adopt`), holds and all. Right before posting a card its deliverer claims
  the entry (:meth:`Outbox.claim`, one conditional ``UPDATE``): a replica that stalled past
  its expiry while its adopter took the card over finds the entry gone and posts nothing.
- **Told in process.** Writers pass what they wrote to :meth:`Outbox.announce` after their
  commit, which hands it to the in-process :attr:`Outbox.listener` (the delivery loop); at
  start the loop reads :meth:`Outbox.pending` instead.

Nothing here talks to Telegram or renders text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import OutboxEntry, OutboxKind, OutboxState, utcnow
from storage.replicas import Gone

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
    replica: str | None = None  # who delivers it (None: whoever has it)

    @classmethod
    def of(cls, entry: OutboxEntry) -> Due:
        """The value of a stored entry."""
        assert entry.id is not None
        return cls(
            entry.id,
            OutboxKind(entry.kind),
            entry.chat_id,
            entry.batch_id,
            entry.hold_until,
            entry.replica,
        )


Listener = Callable[[Sequence[Due]], None]


class Outbox:
    """Writes entries inside other writers' transactions; reads and settles them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Told after a commit about every entry that became pending (the delivery loop).
        self.listener: Listener | None = None

    # -- writing, inside the caller's write transaction -------------------------------------

    async def add_card(
        self,
        s: AsyncSession,
        want: Want,
        *,
        now: datetime,
        hold_until: datetime | None = None,
        text: str = "",
    ) -> Due:
        """The card entry of a batch just stored (it cannot have one yet): one INSERT."""
        entry = OutboxEntry(
            chat_id=want.chat_id,
            batch_id=want.batch_id,
            kind=OutboxKind.CARD.value,
            event_id=want.event_id,
            text=text,
            hold_until=hold_until,
            created_at=now,
            updated_at=now,
            replica=self.db.replica,
        )
        s.add(entry)
        await s.flush()
        return Due.of(entry)

    async def want(
        self, s: AsyncSession, kind: OutboxKind, wants: Iterable[Want], *, now: datetime
    ) -> list[Due]:
        """Make the ``kind`` entry of each batch pending with the newest ``event_id``.

        One UPDATE for the entries that exist (they keep their hold and text), an INSERT for
        the batches that have none yet; what became pending, for :meth:`announce`.
        """
        newest: dict[int, Want] = {}
        for want in wants:
            seen = newest.get(want.batch_id)
            if seen is None or want.event_id > seen.event_id:
                newest[want.batch_id] = want
        if not newest:
            return []
        event_id = col(OutboxEntry.event_id)
        batch_id = col(OutboxEntry.batch_id)
        result = await s.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.kind) == kind.value, batch_id.in_(list(newest)))
            .values(
                state=PENDING,
                updated_at=now,
                # An entry told already (its card is out) is delivered by whoever changes it
                # now; a pending one stays with its owner, who may be posting it right now.
                replica=case(
                    (col(OutboxEntry.state) == PENDING, col(OutboxEntry.replica)),
                    else_=self.db.replica,
                )
                if self.db.replica is not None
                else col(OutboxEntry.replica),
                event_id=case(
                    *(
                        (and_(batch_id == b, event_id < w.event_id), w.event_id)
                        for b, w in newest.items()
                    ),
                    else_=event_id,
                ),
            )
            .returning(
                col(OutboxEntry.id),
                col(OutboxEntry.chat_id),
                col(OutboxEntry.batch_id),
                col(OutboxEntry.hold_until),
                col(OutboxEntry.replica),
            )
            .execution_options(synchronize_session=False)
        )
        due = [Due(i, kind, c, b, h, r) for i, c, b, h, r in result.all()]
        found = {d.batch_id for d in due}
        new = [
            OutboxEntry(
                chat_id=w.chat_id,
                batch_id=b,
                kind=kind.value,
                event_id=w.event_id,
                created_at=now,
                updated_at=now,
                replica=self.db.replica,
            )
            for b, w in newest.items()
            if b not in found
        ]
        if new:
            s.add_all(new)
            await s.flush()
        return due + [Due.of(entry) for entry in new]

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
            replica=self.db.replica,
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

    def announce(self, due: Iterable[Due | OutboxEntry | None]) -> None:
        """After the commit: tell the listener about entries that became pending."""
        if self.listener is None:
            return
        told = [d if isinstance(d, Due) else Due.of(d) for d in due if d is not None]
        if told:
            self.listener(told)

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

        Whether nothing is left pending (False: a newer change came meanwhile). A post (a
        ``message_id``) is kept on the entry and ends its hold. One UPDATE.
        """
        covered = and_(
            col(OutboxEntry.state) == PENDING, col(OutboxEntry.event_id) <= shown_event_id
        )
        values: dict[str, object] = {
            "state": case((covered, OutboxState.DELIVERED.value), else_=col(OutboxEntry.state)),
            "delivered_at": case((covered, now), else_=col(OutboxEntry.delivered_at)),
            "updated_at": now,
        }
        if message_id is not None:
            values.update(message_id=message_id, hold_until=None)
        result = await s.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.batch_id) == batch_id, col(OutboxEntry.kind) == kind.value)
            .values(**values)
            .returning(col(OutboxEntry.state))
            .execution_options(synchronize_session=False)
        )
        return all(state != PENDING for (state,) in result.all())

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

    async def drop_card(self, batch_id: int) -> None:
        """Give up a batch's card (Telegram refuses it for good)."""
        async with self.db.write() as s:
            await self.drop_batch(s, OutboxKind.CARD, batch_id)

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
        """At start of a single process: end every hold (a stopped process's); how many."""
        async with self.db.write() as s:
            result = await s.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.hold_until).is_not(None))
                .values(hold_until=None)
            )
            return int(result.rowcount)

    async def claim(self, batch_id: int, kind: OutboxKind, me: str) -> bool:
        """Whether the batch's pending ``kind`` entry is still this replica's to deliver.

        Checked in the database right before posting, so an entry adopted meanwhile (this
        replica was seen dead while it stalled) is left to its adopter; an ownerless one
        becomes ``me``'s. One conditional UPDATE: it waits for an adoption in progress.
        """
        owner = col(OutboxEntry.replica)
        async with self.db.write() as s:
            result = await s.exec(
                update(OutboxEntry)
                .where(
                    col(OutboxEntry.batch_id) == batch_id,
                    col(OutboxEntry.kind) == kind.value,
                    col(OutboxEntry.state) == PENDING,
                    or_(owner == me, owner.is_(None)),
                )
                .values(replica=me)
            )
            return result.rowcount == 1

    async def pending(self) -> list[OutboxEntry]:
        """Every pending entry, oldest first (at start)."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(OutboxEntry)
                .where(OutboxEntry.state == PENDING)
                .order_by(col(OutboxEntry.id))
            )
            return list(rows)

    async def adopt(self, gone: Gone) -> list[Due]:
        """Take over the pending entries of ``gone`` replicas: ours now, holds ended.

        One UPDATE, so two replicas adopting at once split the rows, never share one.
        Returns what became ours, oldest first, for the delivery loop.
        """
        if gone.empty:
            return []
        async with self.db.write() as s:
            result = await s.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.state) == PENDING, gone.where(OutboxEntry.replica))
                .values(replica=gone.me, hold_until=None)
                .returning(
                    col(OutboxEntry.id),
                    col(OutboxEntry.kind),
                    col(OutboxEntry.chat_id),
                    col(OutboxEntry.batch_id),
                )
                .execution_options(synchronize_session=False)
            )
            rows = sorted(result.all())
        return [Due(i, OutboxKind(k), c, b, None, gone.me) for i, k, c, b in rows]

    async def owned_since(self, since: datetime) -> list[Due]:
        """Pending entries of this replica changed since ``since`` (by any replica), oldest first.

        Another replica's change of an entry this one delivers (a receipt that reached it)
        is told to its own process only; the owner finds it here.
        """
        async with self.db.read() as s:
            rows = await s.exec(
                select(OutboxEntry)
                .where(
                    OutboxEntry.state == PENDING,
                    OutboxEntry.replica == self.db.replica,
                    col(OutboxEntry.updated_at) >= since,
                )
                .order_by(col(OutboxEntry.id))
            )
            return [Due.of(entry) for entry in rows]

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
