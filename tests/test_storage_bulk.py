"""The bulk write paths of a send: create_batch and apply_changes write in a few statements.

They bypass the ORM's unit of work for speed (see bench/fanout.py), so these tests pin what the
ORM used to guarantee: every message gets its own id and first history row, changes land on the
right rows, and a change that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.base import DeliveryState as S
from storage.models import Batch, Message
from storage.repo import Repository, StateChange


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


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "select-back"])
async def test_every_message_gets_its_own_id_and_first_history_row(
    repo: Repository, engine: AsyncEngine, returning: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Databases without multi-row RETURNING read the ids back by idempotency key instead.
    monkeypatch.setattr(engine.sync_engine.dialect, "insert_executemany_returning", returning)
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
