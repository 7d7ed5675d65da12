"""The units of work of the send path: store a send, record its outcomes, apply state changes.

Each function here is a synchronous unit of work (:mod:`storage.units`): it runs start to
commit in one call on the database's thread, so a ``/send`` costs a handful of thread hops
instead of ~100. They write in bulk (multi-row INSERT … RETURNING, executemany UPDATEs)
rather than through the ORM's unit of work, which cost ~0.5 ms a message on a 10,000-recipient
send; tests/test_storage_bulk.py pins what the ORM used to guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel

from providers.base import DeliveryState
from storage.bulk import Bulk, binds_for
from storage.models import AuditEntry, Batch, Message, StatusEvent


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
class StoredSend:
    """A send as stored: the batch, whether it is new, and its newest history row's id."""

    batch: Batch
    new: bool
    last_event_id: int


class NotQueued(Exception):
    """A send outcome found a message that was no longer ``queued`` (see record_outcomes)."""


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


MESSAGES = table_of(Message)
EVENTS = table_of(StatusEvent)
BATCHES = table_of(Batch)

# The message columns a state change may write (see apply_changes).
_CHANGED = (
    "state",
    "provider_ref",
    "provider_status",
    "detail",
    "next_poll_at",
    "poll_attempts",
    "updated_at",
)
# SQLAlchemy reserves a column's own name for the SET clause, hence the ``b_`` bind names.
_UPDATE_CHANGED = Bulk(
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("b_id"))
    .values(binds_for(MESSAGES, _CHANGED, prefix="b_"))
)
# A send's own outcome: the row is still the sender's (queued, no ref yet, so no receipt or
# poll can have touched it); the WHERE keeps it forward-only all the same.
_RECORD_OUTCOME = Bulk(
    update(MESSAGES)
    .where(
        and_(
            MESSAGES.c.id == bindparam("b_id"),
            MESSAGES.c.state == DeliveryState.QUEUED.value,
        )
    )
    .values(binds_for(MESSAGES, _CHANGED, prefix="b_"))
)
_LAST_EVENT = select(func.max(EVENTS.c.id))
# Statements are built once: building one costs ~100 µs here, executing a built one ~20 µs.
_INSERT_BATCH = insert(BATCHES).returning(BATCHES.c.id)
_INSERT_AUDIT = insert(table_of(AuditEntry))
_MESSAGE_COLUMNS = tuple(c.key for c in MESSAGES.columns if c.key != "id")
_INSERT_MESSAGES = Bulk(insert(MESSAGES).values(binds_for(MESSAGES, _MESSAGE_COLUMNS)))
_MESSAGE_IDS_OF_BATCH = select(MESSAGES.c.idempotency_key, MESSAGES.c.id).where(
    MESSAGES.c.batch_id == bindparam("batch_id")
)
_EVENT_COLUMNS = ("message_id", "state", "provider_status", "detail", "source", "at")
_INSERT_EVENTS = Bulk(insert(EVENTS).values(binds_for(EVENTS, _EVENT_COLUMNS)))
_MESSAGES_BY_ID = select(Message).where(MESSAGES.c.id.in_(bindparam("ids", expanding=True)))


def _event(change: StateChange, now: datetime) -> dict[str, object]:
    return {
        "message_id": change.message_id,
        "state": change.state.value,
        "provider_status": change.provider_status,
        "detail": change.detail,
        "source": change.source,
        "at": now,
    }


def _insert_events(s: Connection, rows: list[dict[str, object]]) -> int:
    """Insert history rows; the newest one's id."""
    _INSERT_EVENTS.run(s, rows)
    # Inside a write transaction (BEGIN IMMEDIATE on SQLite) the newest row is this unit's.
    return int(s.execute(_LAST_EVENT).scalar_one() or 0)


def store_send(
    s: Connection, batch: Batch, messages: Sequence[Message], now: datetime
) -> StoredSend:
    """Insert a batch, its queued messages, their first history rows and the audit entry.

    ``origin`` is unique: a send whose origin is already stored raises ``IntegrityError`` (the
    caller then returns the stored one: an update or schedule run delivered twice never sends
    twice). The given objects get their ids and times set.
    """
    values = {c.key: getattr(batch, c.key) for c in BATCHES.columns if c.key != "id"}
    batch_id = s.execute(_INSERT_BATCH, values).scalar_one()
    set_committed_value(batch, "id", batch_id)
    last_event_id = _insert_queued(s, batch, messages, now) if messages else 0
    s.execute(
        _INSERT_AUDIT,
        {
            "chat_id": batch.chat_id,
            "user_id": batch.created_by,
            "action": "send",
            "detail": f"send {batch_id}: {len(messages)} recipient(s) via {batch.route}",
            "at": now,
        },
    )
    return StoredSend(batch, True, last_event_id)


def _insert_queued(s: Connection, batch: Batch, messages: Sequence[Message], now: datetime) -> int:
    # Ids are read back by the unique idempotency key (one indexed query for the batch).
    fixed = {"batch_id": batch.id, "chat_id": batch.chat_id, "created_at": now, "updated_at": now}
    rows = [{**{n: m.__dict__.get(n) for n in _MESSAGE_COLUMNS}, **fixed} for m in messages]
    _INSERT_MESSAGES.run(s, rows)
    pairs = s.execute(_MESSAGE_IDS_OF_BATCH, {"batch_id": batch.id})
    ids = {key: message_id for key, message_id in pairs}
    for message in messages:
        # The caller's objects are in no session: set values without marking them dirty.
        set_committed_value(message, "id", ids[message.idempotency_key])
        for name, value in fixed.items():
            set_committed_value(message, name, value)
    return _insert_events(
        s,
        [
            {
                "message_id": m.id,
                "state": m.state,
                "provider_status": "",
                "detail": "",
                "source": "send",
                "at": now,
            }
            for m in messages
        ],
    )


def record_outcomes(
    s: Connection, outcomes: Sequence[tuple[Message, StateChange]], now: datetime
) -> int:
    """Write what the provider answered for messages this send still holds as ``queued``.

    No read first: each message is updated only if it is still ``queued``. Raises
    :class:`NotQueued` (rolling the unit back) when a row had moved on, so the caller applies
    those changes the general way. Returns the id of the newest history row written.
    """
    if not outcomes:
        return 0
    updates: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for message, change in outcomes:
        values = (
            change.state.value,
            change.provider_ref or message.provider_ref,
            change.provider_status,
            change.detail,
            None if change.state.is_final else change.next_poll_at,
            message.poll_attempts if change.poll_attempts is None else change.poll_attempts,
            now,
        )
        updates.append({"b_id": change.message_id, **dict(zip(_BINDS, values, strict=True))})
        events.append(_event(change, now))
    if _RECORD_OUTCOME.run(s, updates) != len(updates):
        raise NotQueued
    return _insert_events(s, events)


def take_outcomes(outcomes: Sequence[tuple[Message, StateChange]], now: datetime) -> None:
    """Give the sender's objects the values :func:`record_outcomes` wrote.

    As loaded values (no change tracking): the objects are the sender's own, in no session,
    and instrumented ``setattr`` costs ~5 µs a column on a 10,000-recipient send.
    """
    for message, change in outcomes:
        values: dict[str, object] = {
            "state": change.state.value,
            "provider_ref": change.provider_ref or message.provider_ref,
            "provider_status": change.provider_status,
            "detail": change.detail,
            "next_poll_at": None if change.state.is_final else change.next_poll_at,
            "updated_at": now,
        }
        if change.poll_attempts is not None:
            values["poll_attempts"] = change.poll_attempts
        for name, value in values.items():
            set_committed_value(message, name, value)


def refresh(s: Session, messages: Sequence[Message]) -> None:
    """Copy the stored state columns onto these (detached) message objects."""
    stored = {m.id: m for m in s.scalars(_MESSAGES_BY_ID, {"ids": [m.id for m in messages]})}
    for message in messages:
        found = stored.get(message.id)
        if found is not None:
            for name in _CHANGED:
                set_committed_value(message, name, getattr(found, name))


_BINDS = tuple(f"b_{name}" for name in _CHANGED)


def apply_changes(
    s: Session, changes: Sequence[StateChange], now: datetime
) -> tuple[list[Message], int]:
    """Apply state changes forward-only; the messages that really moved and the newest event id.

    A change that would move a state backwards, or repeats the current state, is ignored
    (receipts arrive twice, late and out of order); each real change adds one history row,
    and a message whose columns did not change is not written at all.
    """
    by_id: dict[int, list[StateChange]] = {}
    for change in changes:
        by_id.setdefault(change.message_id, []).append(change)
    if not by_id:
        return [], 0
    moved: dict[int, Message] = {}
    updates: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    rows = list(s.scalars(_MESSAGES_BY_ID, {"ids": list(by_id)}))
    # Detached, the objects take their new values without the ORM's unit of work writing
    # them one UPDATE at a time (~0.3 ms a message); two executemany statements do.
    s.expunge_all()
    for message in rows:
        assert message.id is not None
        before = tuple(getattr(message, name) for name in _CHANGED)
        for change in by_id[message.id]:
            if change.provider_ref and not message.provider_ref:
                message.provider_ref = change.provider_ref
            if change.next_poll_at is not None or change.state.is_final:
                message.next_poll_at = None if change.state.is_final else change.next_poll_at
            if change.poll_attempts is not None:
                message.poll_attempts = change.poll_attempts
            if not DeliveryState(message.state).can_become(change.state):
                continue
            message.state = change.state.value
            message.provider_status = change.provider_status or message.provider_status
            message.detail = change.detail
            message.updated_at = now
            events.append(_event(change, now))
            moved[message.id] = message
        after = tuple(getattr(message, name) for name in _CHANGED)
        if after != before:
            updates.append({"b_id": message.id, **dict(zip(_BINDS, after, strict=True))})
    if updates:
        _UPDATE_CHANGED.run(s.connection(), updates)
    last = _insert_events(s.connection(), events) if events else 0
    return list(moved.values()), last
