"""Messages and their sends (batches): the send path, forward-only state changes, queries.

The one home of every query on ``batch``, ``message`` and ``statusevent``. The guarantees the
rest of the bot builds on:

- a send's rows are written ``queued`` in one transaction before any provider call, and the
  batch's ``origin`` is unique, so a send delivered twice is found, never repeated;
- a state only moves forward (:meth:`~providers.base.DeliveryState.can_become`): receipts that
  arrive twice, late or out of order are ignored, and every real change is one history row;
- the read and the write of a change are one write transaction (see :class:`storage.db.Database`),
  so two receipts racing cannot both pass the check against the same old state;
- what the chat must be told about a send or a change (its card, an edit, a failure mention)
  is written to the outbox (:mod:`storage.outbox`) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from providers.base import DeliveryState
from storage.audit import record
from storage.db import Database
from storage.models import (
    Batch,
    Message,
    OutboxKind,
    Progress,
    StatusEvent,
    may_be_row_id,
    utcnow,
)
from storage.outbox import Due, Outbox, Want
from storage.replicas import Gone

INTERRUPTED = "the bot stopped while sending; check before resending"
RECONCILE = "reconcile"  # the history source of looking up a send whose answer was lost
# What a text or number reads as once RETENTION_DAYS removed it.
REMOVED = "(removed)"
# Ids read in one ``IN (…)``: a driver takes at most 32,767 parameters a statement (asyncpg),
# and a restart may find more messages to change at once.
READ_SLICE = 5_000
# The columns of a message a state change may write (:meth:`Messages.apply_changes`).
CHANGEABLE = (
    "state",
    "provider_ref",
    "provider_status",
    "detail",
    "updated_at",
    "next_poll_at",
    "poll_attempts",
)


@dataclass(frozen=True, slots=True)
class StateChange:
    """A new state for one message, from a send result, a poll or a callback."""

    message_id: int
    state: DeliveryState
    source: str
    provider_ref: str | None = None
    provider_status: str = ""
    detail: str = ""
    next_poll_at: datetime | None = None
    poll_attempts: int | None = None  # with next_poll_at: the tracker's restart hint


@dataclass(frozen=True, slots=True)
class Reroute:
    """A queued message moving to the next route of its chain (failover), and why."""

    message_id: int
    provider: str
    channel: str
    recipient: str
    detail: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One recipient's message of a send about to be stored (``queued``, no id yet).

    A plain value: a send of 10,000 recipients builds 10,000 of these, and a table object
    costs ~100 µs to build (validation and ORM instrumentation), a tenth of a second a
    thousand; the stored rows come back as :class:`~storage.models.Message` objects.
    """

    provider: str
    channel: str
    recipient: str
    text: str
    idempotency_key: str  # unique: ``<origin>:<index>``
    media_name: str | None = None
    send_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredSend:
    """A send as stored: the batch, whether it is new, and its newest history row's id.

    ``messages`` are the stored rows in the order given (empty for a replay).
    """

    batch: Batch
    new: bool
    last_event_id: int
    card_hold_until: datetime | None = None  # its card's outbox entry is held until then
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Applied:
    """What :meth:`Messages.apply_changes` did.

    ``current`` holds every changed message as now stored, ``moved`` those whose state really
    moved, ``last_event_id`` the newest history row written (0 when none was).
    """

    current: list[Message]
    moved: list[Message]
    last_event_id: int


class Messages:
    """Every query on sends, messages and their history."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or Outbox(db)

    # -- the send path -----------------------------------------------------------------------

    async def store_send(
        self,
        batch: Batch,
        messages: Sequence[NewMessage],
        *,
        hold: timedelta | None = None,
        note: str = "",
        audit_note: str = "",
    ) -> StoredSend:
        """Store a send, its queued messages, their history, the audit row and its card entry.

        One transaction, a few statements whatever the number of recipients (the rows and
        their history rows are one executemany each). The batch's ``origin`` is unique: the
        same Telegram update (or schedule run) delivered twice finds the first batch (``new``
        False) instead of sending again. The stored rows come back in the given order. The card
        entry in the outbox is held for ``hold`` (the caller posts the card itself when the
        send is done) and carries ``note``, the line above the card. ``audit_note`` ends the
        audit row's detail (e.g. how many recipients the stoplist removed).
        """
        now = utcnow()
        try:
            async with self.db.write() as s:
                batch.created_at = now
                s.add(batch)
                await s.flush()
                assert batch.id is not None
                stored = await self._insert_messages(s, batch, messages, now)
                events = await _insert_events(
                    s, [_event_row(m.id, m.state, "send", now) for m in stored]
                )
                last = max((e.id for e in events), default=0)
                record(
                    s,
                    chat_id=batch.chat_id,
                    user_id=batch.created_by,
                    action="send",
                    detail=f"send {batch.id}: {len(messages)} recipient(s) via {batch.route}"
                    + audit_note,
                    at=now,
                )
                hold_until = now + hold if hold is not None else None
                card = await self.outbox.add_card(
                    s,
                    Want(batch.id, batch.chat_id, last),
                    now=now,
                    hold_until=hold_until,
                    text=note,
                )
            self.outbox.announce([card])
            return StoredSend(batch, True, last, hold_until, stored)
        except IntegrityError:  # this origin is stored already: a replay
            found = await self.batch_for_origin(batch.origin)
            if found is None:  # another constraint: a real error
                raise
            return StoredSend(found, False, 0)

    async def _insert_messages(
        self, s: AsyncSession, batch: Batch, messages: Sequence[NewMessage], now: datetime
    ) -> list[Message]:
        """Insert a send's rows in one executemany; the stored rows in the given order.

        ``idempotency_key`` is unique, so the rows ``RETURNING`` gives back are put in order
        by it (their order is not promised on every database).
        """
        if not messages:
            return []
        result = await s.exec(
            insert(Message).returning(Message),
            params=[
                {
                    "batch_id": batch.id,
                    "chat_id": batch.chat_id,
                    "provider": m.provider,
                    "channel": m.channel,
                    "recipient": m.recipient,
                    "text": m.text,
                    "media_name": m.media_name,
                    "idempotency_key": m.idempotency_key,
                    "send_at": m.send_at,
                    "state": DeliveryState.QUEUED.value,
                    "provider_status": "",
                    "detail": "",
                    "poll_attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "replica": self.db.replica,
                }
                for m in messages
            ],
        )
        by_key = {row.idempotency_key: row for row in result.scalars()}
        return [by_key[m.idempotency_key] for m in messages]

    async def reroute(self, moves: Sequence[Reroute]) -> list[int]:
        """Move still-``queued`` messages to another route, each with a history row saying why.

        Only a message no provider acted on may move (failover happens before transmission),
        so a message that is no longer ``queued`` is left alone; returns the ids moved.
        """
        by_id = {m.message_id: m for m in moves}
        if not by_id:
            return []
        now = utcnow()
        async with self.db.write() as s:
            rows = await s.exec(
                select(Message)
                .where(
                    col(Message.id).in_(list(by_id)),
                    col(Message.state) == DeliveryState.QUEUED.value,
                )
                .order_by(col(Message.id))
                .with_for_update()
            )
            moved: list[int] = []
            history: list[dict[str, object]] = []
            for message in rows:
                assert message.id is not None
                move = by_id[message.id]
                message.provider, message.channel = move.provider, move.channel
                message.recipient, message.updated_at = move.recipient, now
                message.handed_at = None  # not sent: the next route takes it over afresh
                history.append(
                    _event_row(message.id, message.state, "failover", now, detail=move.detail)
                )
                moved.append(message.id)
            await s.flush()
            await _insert_events(s, history)
            return moved

    async def lost_sends(self, before: datetime, limit: int) -> list[Message]:
        """Lost sends to look up: ``unknown``, no provider ref, unchanged since ``before``.

        Only messages never looked up (no ``reconcile`` history row), oldest first.
        """
        looked_up = (
            select(StatusEvent.id)
            .where(
                col(StatusEvent.message_id) == col(Message.id),
                col(StatusEvent.source) == RECONCILE,
            )
            .exists()
        )
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(
                    col(Message.state) == DeliveryState.UNKNOWN.value,
                    col(Message.provider_ref).is_(None),
                    col(Message.updated_at) <= before,
                    ~looked_up,
                )
                .order_by(col(Message.id))
                .limit(limit)
            )
            return list(rows)

    async def note(self, message_ids: Sequence[int], detail: str, *, source: str) -> list[Message]:
        """Replace these messages' detail, state unchanged, with one history row each.

        Their cards are owed an edit showing it (outbox entries of the same transaction).
        """
        if not message_ids:
            return []
        now = utcnow()
        async with self.db.write() as s:
            rows = list(
                await s.exec(
                    select(Message)
                    .where(col(Message.id).in_(list(message_ids)))
                    .order_by(col(Message.id))
                    .with_for_update()
                )
            )
            for message in rows:
                message.detail, message.updated_at = detail, now
            await s.flush()
            events = await _insert_events(
                s, [_event_row(m.id, m.state, source, now, detail=detail) for m in rows]
            )
            told = await self._tell(s, rows, events, now)
        self.outbox.announce(told)
        return rows

    async def apply_changes(self, changes: Iterable[StateChange]) -> Applied:
        """Apply state changes forward-only, in one transaction.

        A change that would move a state backwards, or repeats the current state, is ignored;
        its provider ref and poll hint are still kept. Each real change adds one history row;
        a message whose columns did not change is not written at all. Every batch with a
        real change owes its chat a card edit, and one whose messages finally failed after the
        send a mention of the sender: both are outbox entries of the same transaction.
        """
        by_id: dict[int, list[StateChange]] = {}
        for change in changes:
            by_id.setdefault(change.message_id, []).append(change)
        if not by_id:
            return Applied([], [], 0)
        now = utcnow()
        ids = sorted(by_id)
        async with self.db.write() as s:
            current: list[Message] = []
            for start in range(0, len(ids), READ_SLICE):
                rows = await s.exec(
                    select(Message)
                    .where(col(Message.id).in_(ids[start : start + READ_SLICE]))
                    .order_by(col(Message.id))
                    .with_for_update()  # PostgreSQL: another writer waits; SQLite: Database
                )
                current.extend(rows)
            moved: list[Message] = []
            history: list[dict[str, object]] = []
            writes: list[dict[str, object]] = []
            for message in current:
                assert message.id is not None
                before = {name: getattr(message, name) for name in CHANGEABLE}
                after = dict(before)
                if _apply(message.id, after, by_id[message.id], now, history):
                    moved.append(message)
                changed = {k: v for k, v in after.items() if v != before[k]}
                if changed:
                    writes.append({"id": message.id, **changed})
                    for name, value in changed.items():
                        # Written below: the object shows it, the session owes nothing.
                        set_committed_value(message, name, value)
            if writes:  # by primary key: one executemany per set of changed columns
                await s.exec(
                    update(Message).execution_options(synchronize_session=False), params=writes
                )
            events = await _insert_events(s, history)
            last = max((e.id for e in events), default=0)
            told = await self._tell(s, moved, events, now)
        self.outbox.announce(told)
        return Applied(current, moved, last)

    async def _tell(
        self, s: AsyncSession, moved: list[Message], events: list[Recorded], now: datetime
    ) -> list[Due]:
        """The outbox entries of these changes: each batch's card, and late failures."""
        if not moved:
            return []
        batches = {m.id: (m.batch_id, m.chat_id) for m in moved}
        cards: list[Want] = []
        failures: list[Want] = []
        for event in events:
            batch_id, chat_id = batches[event.message_id]
            want = Want(batch_id, chat_id, event.id)
            cards.append(want)
            if DeliveryState(event.state).is_failure and event.source != "send":
                failures.append(want)  # the card shows failures of the send itself
        told = await self.outbox.want(s, OutboxKind.CARD, cards, now=now)
        return told + await self.outbox.want(s, OutboxKind.FAILURES, failures, now=now)

    async def mark_interrupted_sends(self, gone: Gone | None = None) -> int:
        """Messages still ``queued`` by a replica that stopped were interrupted mid-send.

        Their provider call may or may not have happened, so they become ``unknown`` (never
        resent blindly). With several replicas only the ``gone`` ones' messages are touched
        (``storage/replicas.py``): a live replica's queued messages are its sends in flight.
        Without ``gone``, every queued message (one process: at its start). Rows of a large
        send still running that were never handed to the provider are not interrupted: it goes
        on with them (:mod:`storage.large_sends`). Returns how many were found.
        """
        resumable = and_(
            col(Message.handed_at).is_(None),
            col(Message.batch_id).in_(
                select(Batch.id).where(col(Batch.progress) == Progress.SENDING.value)
            ),
        )
        interrupted = and_(col(Message.state) == DeliveryState.QUEUED.value, ~resumable)
        if gone is not None:
            interrupted = and_(interrupted, gone.where(Message.replica))
        async with self.db.read() as s:
            ids = list(await s.exec(select(Message.id).where(interrupted)))
        applied = await self.apply_changes(
            StateChange(i, DeliveryState.UNKNOWN, "restart", detail=INTERRUPTED)
            for i in ids
            if i is not None
        )
        return len(applied.moved)

    async def forget_contents(self, before: datetime) -> int:
        """Retention: remove the texts and numbers of messages finished before ``before``.

        A message whose state is final and last changed before ``before`` keeps its row (state,
        route, provider ref, times and history), so counts per day, state and route stay as
        they were; its recipient, text and file name are replaced. A send's text goes with the
        last of its messages. One transaction; returns how many messages were changed.
        """
        final = [state.value for state in DeliveryState if state.is_final]
        finished_long_ago = and_(
            col(Message.state).in_(final),
            col(Message.updated_at) < before,  # ix_message_state_updated
            col(Message.recipient) != REMOVED,
        )
        holds_contents = exists().where(
            col(Message.batch_id) == col(Batch.id), col(Message.recipient) != REMOVED
        )
        async with self.db.write() as s:
            result = await s.exec(
                update(Message)
                .where(finished_long_ago)
                .values(recipient=REMOVED, text=REMOVED, media_name=None)
            )
            await s.exec(
                update(Batch)
                .where(col(Batch.created_at) < before, col(Batch.text) != REMOVED, ~holds_contents)
                .values(text=REMOVED)
            )
        return int(result.rowcount)

    # -- queries -----------------------------------------------------------------------------

    async def get_message(self, chat_id: int, message_id: int) -> Message | None:
        """A message of this chat by its id."""
        if not may_be_row_id(message_id):
            return None
        async with self.db.read() as s:
            message = await s.get(Message, message_id)
        return message if message is not None and message.chat_id == chat_id else None

    async def by_ids(self, ids: Iterable[int]) -> list[Message]:
        """These messages as stored now, by id."""
        wanted = list(ids)
        if not wanted:
            return []
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message).where(col(Message.id).in_(wanted)).order_by(col(Message.id))
            )
            return list(rows)

    async def history(self, message_id: int) -> list[StatusEvent]:
        """A message's state changes, oldest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(StatusEvent)
                .where(StatusEvent.message_id == message_id)
                .order_by(col(StatusEvent.id))
            )
            return list(rows)

    async def latest(self, chat_id: int, limit: int) -> list[Message]:
        """The chat's most recent messages, newest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(Message.chat_id == chat_id)
                .order_by(col(Message.id).desc())
                .limit(limit)
            )
            return list(rows)

    async def of_batch(self, batch_id: int, *, limit: int | None = None) -> list[Message]:
        """The messages of one send, in recipient order (the first ``limit`` of them)."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(Message.batch_id == batch_id)
                .order_by(col(Message.id))
                .limit(limit)
            )
            return list(rows)

    async def batch(self, batch_id: int) -> Batch | None:
        """One send by id."""
        if not may_be_row_id(batch_id):
            return None
        async with self.db.read() as s:
            return await s.get(Batch, batch_id)

    async def batch_for_origin(self, origin: str) -> Batch | None:
        """The send stored for this origin (an update, a schedule run), if any."""
        async with self.db.read() as s:
            return (await s.exec(select(Batch).where(Batch.origin == origin))).first()

    async def sent_since(self, chat_id: int, since: datetime) -> set[tuple[str, str]]:
        """Every ``(recipient, text)`` the chat's sends stored since ``since``.

        Found through the sends' creation time (indexed), not by reading every message of a
        chat with a long history.
        """
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message.recipient, Message.text)
                .join(Batch, col(Batch.id) == col(Message.batch_id))
                .where(Batch.chat_id == chat_id, col(Batch.created_at) >= since)
            )
            return {(recipient, text) for recipient, text in rows}


@dataclass(frozen=True, slots=True)
class Recorded:
    """A history row as written: what the outbox needs to know about it."""

    id: int
    message_id: int
    state: str
    source: str


def _event_row(
    message_id: int | None,
    state: str,
    source: str,
    at: datetime,
    *,
    provider_status: str = "",
    detail: str = "",
) -> dict[str, object]:
    """The column values of one history row, for :func:`_insert_events`."""
    assert message_id is not None
    return {
        "message_id": message_id,
        "state": state,
        "source": source,
        "at": at,
        "provider_status": provider_status,
        "detail": detail,
    }


async def _insert_events(s: AsyncSession, rows: list[dict[str, object]]) -> list[Recorded]:
    """Insert history rows in one executemany; each as written, with its id."""
    if not rows:
        return []
    result = await s.exec(
        insert(StatusEvent).returning(
            col(StatusEvent.id),
            col(StatusEvent.message_id),
            col(StatusEvent.state),
            col(StatusEvent.source),
        ),
        params=rows,
    )
    return [Recorded(int(i), int(m), state, source) for i, m, state, source in result.all()]


def _apply(
    message_id: int,
    values: dict[str, object],
    changes: list[StateChange],
    now: datetime,
    events: list[dict[str, object]],
) -> bool:
    """Apply one message's changes to its ``values`` (:data:`CHANGEABLE`); whether it moved."""
    moved = False
    for change in changes:
        if change.provider_ref and not values["provider_ref"]:
            values["provider_ref"] = change.provider_ref
        if change.next_poll_at is not None or change.state.is_final:
            values["next_poll_at"] = None if change.state.is_final else change.next_poll_at
        if change.poll_attempts is not None:
            values["poll_attempts"] = change.poll_attempts
        if not DeliveryState(str(values["state"])).can_become(change.state):
            continue
        values["state"] = change.state.value
        values["provider_status"] = change.provider_status or values["provider_status"]
        values["detail"] = change.detail
        values["updated_at"] = now
        events.append(
            _event_row(
                message_id,
                change.state.value,
                change.source,
                now,
                provider_status=change.provider_status,
                detail=change.detail,
            )
        )
        moved = True
    return moved
