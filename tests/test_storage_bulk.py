"""The bulk write paths of a send: create_batch and apply_changes write in a few statements.

They bypass the ORM's unit of work for speed (see bench/fanout.py), so these tests pin what the
ORM used to guarantee: every message gets its own id and first history row, changes land on the
right rows, and a change that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from providers.base import DeliveryState as S
from storage.bulk import Bulk
from storage.models import Batch, Message
from storage.repo import Repository, StateChange
from storage.sends import table_of


def _messages(count: int, origin: str) -> list[Message]:
    return [
        Message(
            batch_id=0,
            chat_id=0,
            provider="nusasms",
            channel="wa",
            recipient=f"62812{i:08d}",
            text="hi",
            idempotency_key=f"{origin}:{i}",
        )
        for i in range(count)
    ]


@contextmanager
def _writes(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            seen.append(statement.split()[0].upper() + " " + statement.split()[2].lower())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_every_message_gets_its_own_id_and_first_history_row(
    repo: Repository, engine: AsyncEngine
) -> None:
    # Written with one executemany and read back by idempotency key (storage/bulk.py).
    await repo.ensure_chat(7, kind="private", title="t")
    rows = _messages(250, "tg:7:1")
    batch = Batch(chat_id=7, route="nusasms:wa", text="hi", origin="tg:7:1", created_by=1)
    with _writes(engine) as writes:
        stored, new = await repo.create_batch(batch, rows)
    assert new
    assert writes.count("INSERT message") == 1  # one executemany, not 250 statements
    assert stored.id is not None
    assert len({m.id for m in rows}) == 250
    assert all(m.batch_id == stored.id and m.chat_id == 7 for m in rows)
    reread = await repo.batch_messages(stored.id)
    assert [(m.id, m.recipient, m.idempotency_key) for m in reread] == [
        (m.id, m.recipient, m.idempotency_key) for m in rows
    ]
    for message in (rows[0], rows[-1]):
        assert message.id is not None
        assert [e.state for e in await repo.history(message.id)] == ["queued"]


async def test_changes_land_on_their_rows_and_a_repeat_writes_nothing(
    repo: Repository, engine: AsyncEngine
) -> None:
    await repo.ensure_chat(7, kind="private", title="t")
    rows = _messages(3, "tg:7:2")
    await repo.create_batch(
        Batch(chat_id=7, route="nusasms:wa", text="hi", origin="tg:7:2", created_by=1), rows
    )
    ids = [m.id or 0 for m in rows]
    changes = [
        StateChange(ids[0], S.ACCEPTED, "send", provider_ref="r0", provider_status="accepted"),
        StateChange(ids[1], S.FAILED, "send", detail="refused"),
    ]
    moved = await repo.apply_changes(changes)
    assert {(m.id, m.state, m.provider_ref) for m in moved} == {
        (ids[0], "accepted", "r0"),
        (ids[1], "failed", None),
    }
    untouched = await repo.get_message(7, ids[2])
    assert untouched is not None
    assert untouched.state == "queued"
    with _writes(engine) as writes:
        again = await repo.apply_changes(changes)
    assert again == []
    assert writes == []  # nothing changed, so not a single row is written
    assert [e.state for e in await repo.history(ids[0])] == ["queued", "accepted"]


async def test_bulk_rows_are_stored_exactly_as_sqlalchemy_stores_them(
    repo: Repository, engine: AsyncEngine
) -> None:
    # The driver gets SQLAlchemy's own processed values: an aware time read back through the
    # ORM equals what was written, whichever path wrote it, and a None stays NULL.
    await repo.ensure_chat(8, kind="private", title="t")
    when = datetime(2026, 11, 22, 17, 30, 5, 123456, tzinfo=UTC)
    fast = _messages(2, "bulk")
    slow = _messages(2, "orm")
    for m in (*fast, *slow):
        m.next_poll_at = when if m.idempotency_key.endswith("0") else None

    def write(s: Session) -> None:
        columns = [c.key for c in table_of(Message).columns if c.key != "id"]
        rows = [
            {**{n: getattr(m, n) for n in columns}, "chat_id": 8, "created_at": when} for m in fast
        ]
        bulk = Bulk(insert(table_of(Message)).values({n: bindparam(n) for n in columns}))
        assert bulk.run(s.connection(), rows) == 2
        for m in slow:
            m.chat_id, m.created_at = 8, when
            s.add(m)

    stored = await repo.store_send(
        Batch(chat_id=8, route="nusasms:wa", text="hi", origin="b", created_by=1), []
    )
    for m in (*fast, *slow):
        m.batch_id = stored.batch.id or 0
    await repo.units.run(write)
    by_key = {m.idempotency_key: m for m in await repo.batch_messages(stored.batch.id or 0)}
    for a, b in zip(fast, slow, strict=True):
        x, y = by_key[a.idempotency_key], by_key[b.idempotency_key]
        assert (x.created_at, x.next_poll_at, x.state) == (y.created_at, y.next_poll_at, y.state)
    assert by_key["bulk:0"].next_poll_at == when
    assert by_key["bulk:1"].next_poll_at is None
    # Byte for byte as SQLAlchemy stores it: SQLite compares times as text.
    raw = await repo.units.run(
        lambda s: dict(
            s.execute(
                text("SELECT idempotency_key, created_at || '|' || next_poll_at FROM message")
            ).all()
        ),
        write=False,
    )
    assert raw["bulk:0"] == raw["orm:0"]
    assert " " in raw["bulk:0"]
    assert "T" not in raw["bulk:0"]
