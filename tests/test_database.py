"""storage.db.Database: write transactions, and writers of two processes on one database.

"Another process" is a second engine on the same database: its own pool, its own
``Database`` and so its own writer lock, as a second bot process or a command-line migration
would have. These run on SQLite by default and on PostgreSQL with ``TEST_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from providers.base import DeliveryState as S
from storage.db import Database, create_engine
from storage.messages import Messages, NewMessage, StateChange
from storage.models import Batch, Chat
from tests.databases import database_url


@pytest.fixture
async def other(tmp_path: Path, engine: AsyncEngine) -> AsyncIterator[Database]:
    """A second engine on the fixture's database: another process's connections."""
    second = create_engine(database_url(tmp_path, "test"))
    yield Database(second)
    await second.dispose()


async def test_a_write_commits_at_the_end_and_rolls_back_on_error(db: Database) -> None:
    async with db.write() as s:
        s.add(Chat(id=1, title="kept"))

    async def fail_half_way() -> None:
        async with db.write() as s:
            s.add(Chat(id=2, title="dropped"))
            await s.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_half_way()
    async with db.read() as s:
        assert [c.title for c in await s.exec(select(Chat))] == ["kept"]


async def test_a_failed_constraint_leaves_nothing_behind(db: Database) -> None:
    async with db.write() as s:
        s.add(Chat(id=1))

    async def add_two() -> None:
        async with db.write() as s:
            s.add(Chat(id=3))
            s.add(Chat(id=1))  # duplicate key: the whole transaction goes

    with pytest.raises(IntegrityError):
        await add_two()
    async with db.read() as s:
        assert sorted(c.id for c in await s.exec(select(Chat))) == [1]


async def test_writers_of_two_processes_never_lose_a_change(db: Database, other: Database) -> None:
    # On SQLite a deferred BEGIN would fail here with "database is locked" (its snapshot is
    # stale once the other process commits); BEGIN IMMEDIATE makes the writer wait instead.
    async with db.write() as s:
        s.add(Chat(id=1, title="0"))

    async def bump(database: Database) -> None:
        # Read, then write what was read plus one: a lost update shows as a missing count.
        async with database.write() as s:
            chat = (await s.exec(select(Chat).where(Chat.id == 1).with_for_update())).one()
            await asyncio.sleep(0)  # let the other process's writer try to come in between
            chat.title = str(int(chat.title) + 1)

    await asyncio.gather(*(bump(d) for _ in range(10) for d in (db, other)))
    async with db.read() as s:
        assert (await s.exec(select(Chat.title))).one() == "20"


async def test_receipts_racing_from_two_processes_keep_states_forward(
    db: Database, other: Database
) -> None:
    mine, theirs = Messages(db), Messages(other)
    async with db.write() as s:
        s.add(Chat(id=1))
    for n in range(10):
        stored = await mine.store_send(
            Batch(chat_id=1, route="nusasms:wa", text="hi", origin=f"o{n}", created_by=1),
            [
                NewMessage(
                    provider="nusasms",
                    channel="wa",
                    recipient="6281234567890",
                    text="hi",
                    idempotency_key=f"o{n}:0",
                )
            ],
        )
        mid = (await mine.of_batch(stored.batch.id or 0))[0].id or 0
        await mine.apply_changes([StateChange(mid, S.ACCEPTED, "send", provider_ref=f"r{n}")])
        await asyncio.gather(
            mine.apply_changes([StateChange(mid, S.DELIVERED, "webhook")]),
            theirs.apply_changes([StateChange(mid, S.SENT, "poll")]),
            theirs.apply_changes([StateChange(mid, S.DELIVERED, "webhook")]),
        )
        states = [e.state for e in await mine.history(mid)]
        assert states in (
            ["queued", "accepted", "delivered"],
            ["queued", "accepted", "sent", "delivered"],
        ), states
