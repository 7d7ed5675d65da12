"""storage.approvals: a held send is decided once, with its audit row, and expires.

Runs on SQLite by default and on PostgreSQL with ``TEST_DATABASE_URL`` (``db`` fixture);
"another process" is a second engine on the same database with its own writer lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from storage.approvals import ApprovalStore
from storage.db import Database, create_engine
from storage.models import Approval, ApprovalState, AuditEntry, Chat, utcnow
from storage.replicas import Gone
from tests.databases import database_url

TTL = timedelta(hours=24)


def waiting(origin: str) -> Approval:
    now = utcnow()
    return Approval(
        chat_id=7,
        origin=origin,
        kind="send",
        payload="{}",
        requested_by=100,
        created_at=now,
        expires_at=now + TTL,
    )


@pytest.fixture
async def store(db: Database) -> ApprovalStore:
    async with db.write() as s:
        s.add(Chat(id=7, title="ops"))
    return ApprovalStore(db)


@pytest.fixture
async def other(tmp_path: Path, engine: AsyncEngine) -> AsyncIterator[ApprovalStore]:
    second = create_engine(database_url(tmp_path, "test"))
    yield ApprovalStore(Database(second))
    await second.dispose()


async def audit_rows(store: ApprovalStore) -> list[AuditEntry]:
    async with store.db.read() as s:
        return list(await s.exec(select(AuditEntry).order_by(col(AuditEntry.id))))


async def test_a_replayed_command_finds_the_approval_it_asked_for(store: ApprovalStore) -> None:
    first = await store.add(waiting("tg:7:1"))
    again = await store.add(waiting("tg:7:1"))
    assert first.id is not None
    assert again.id == first.id
    assert [row.id for row in await store.waiting(7)] == [first.id]


async def test_decisions_move_once_and_are_audited_with_the_move(store: ApprovalStore) -> None:
    row = await store.add(waiting("tg:7:2"))
    assert row.id is not None
    now = utcnow()
    assert await store.decide(row.id, ApprovalState.APPROVED, by=1, by_name="@a", now=now)
    assert not await store.decide(row.id, ApprovalState.REJECTED, by=2, by_name="@b", now=now)
    assert [(a.action, a.user_id) for a in await audit_rows(store)] == [("approve", 1)]
    assert [r.id for r in await store.approved()] == [row.id]
    assert await store.finish(row.id)
    assert not await store.finish(row.id)
    assert await store.approved() == []


async def test_approvals_racing_on_two_engines_approve_once(
    store: ApprovalStore, other: ApprovalStore
) -> None:
    rows = [await store.add(waiting(f"tg:7:{i + 10}")) for i in range(20)]
    now = utcnow()
    for row in rows:
        assert row.id is not None
        won = await asyncio.gather(
            store.decide(row.id, ApprovalState.APPROVED, by=1, by_name="@a", now=now),
            other.decide(row.id, ApprovalState.APPROVED, by=2, by_name="@b", now=now),
        )
        assert sorted(won) == [False, True]
    assert len(await audit_rows(store)) == 20


async def test_an_expired_approval_cannot_be_decided_and_the_sweep_moves_it_once(
    store: ApprovalStore,
) -> None:
    row = await store.add(waiting("tg:7:3"))
    assert row.id is not None
    later = utcnow() + TTL + timedelta(seconds=1)
    assert not await store.decide(row.id, ApprovalState.APPROVED, by=1, by_name="", now=later)
    assert await store.expire(utcnow()) == []  # not yet
    [ended] = await store.expire(later)
    assert ended.id == row.id
    assert ended.state == ApprovalState.EXPIRED
    assert await store.expire(later) == []
    assert await audit_rows(store) == []


async def test_an_approved_send_is_owed_by_its_replica_until_that_one_is_gone(
    store: ApprovalStore,
) -> None:
    store.db.replica = "r-dead"
    row = await store.add(waiting("tg:7:9"))
    assert row.id is not None
    assert await store.decide(row.id, ApprovalState.APPROVED, by=1, by_name="@a", now=utcnow())
    alive_only = Gone(me="r-me", ids=frozenset({"r-other"}))
    assert await store.approved(alive_only) == []  # r-dead's press is making it
    dead = Gone(me="r-me", ids=frozenset({"r-dead"}))
    assert [r.id for r in await store.approved(dead)] == [row.id]
    assert [r.id for r in await store.approved()] == [row.id]  # one process: all
