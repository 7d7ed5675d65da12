"""storage.confirmations: an action waiting for a press is decided once, and expires.

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

from storage.confirmations import Confirmations, Pressed
from storage.db import Database, create_engine
from storage.models import Chat, ConfirmationState, utcnow
from tests.databases import database_url

TTL = timedelta(minutes=15)


@pytest.fixture
async def store(db: Database) -> Confirmations:
    async with db.write() as s:
        s.add(Chat(id=7, title="ops"))
    return Confirmations(db)


@pytest.fixture
async def other(tmp_path: Path, engine: AsyncEngine) -> AsyncIterator[Confirmations]:
    second = create_engine(database_url(tmp_path, "test"))
    yield Confirmations(Database(second))
    await second.dispose()


async def test_a_press_decides_once(store: Confirmations) -> None:
    row = await store.ask(7, 100, "multicast", "{}", ttl=TTL)
    assert row.id is not None
    assert row.state == ConfirmationState.WAITING
    assert await store.decide(row.id, confirm=True, by=100) is True
    assert await store.decide(row.id, confirm=True, by=100) is False
    assert await store.decide(row.id, confirm=False, by=100) is False
    stored = await store.get(row.id)
    assert stored is not None
    assert (stored.state, stored.decided_by) == (ConfirmationState.CONFIRMED, 100)


async def test_an_expired_confirmation_cannot_be_confirmed_but_can_be_cancelled(
    store: Confirmations,
) -> None:
    row = await store.ask(7, 100, "multicast", "{}", ttl=TTL)
    assert row.id is not None
    later = utcnow() + TTL + timedelta(seconds=1)
    assert await store.decide(row.id, confirm=True, by=100, now=later) is False
    stored = await store.get(row.id)
    assert stored is not None
    assert stored.state == ConfirmationState.WAITING
    assert await store.decide(row.id, confirm=False, by=100, now=later) is True


async def test_presses_racing_on_two_engines_confirm_once(
    store: Confirmations, other: Confirmations
) -> None:
    rows = [await store.ask(7, 100, "multicast", "{}", ttl=TTL) for _ in range(20)]
    for row in rows:
        assert row.id is not None
        won = await asyncio.gather(
            store.decide(row.id, confirm=True, by=1), other.decide(row.id, confirm=True, by=2)
        )
        assert sorted(won) == [False, True]


async def test_press_says_why_it_did_not_confirm(store: Confirmations) -> None:
    taken = await store.ask(7, 100, "send", "{}", ttl=TTL)
    cancelled = await store.ask(7, 100, "send", "{}", ttl=TTL)
    expired = await store.ask(7, 100, "send", "{}", ttl=TTL)
    assert taken.id is not None
    assert cancelled.id is not None
    assert expired.id is not None
    assert await store.press(taken.id, by=100) == Pressed.TAKEN
    assert await store.press(taken.id, by=101) == Pressed.EARLIER
    assert await store.decide(cancelled.id, confirm=False, by=100)
    assert await store.press(cancelled.id, by=100) == Pressed.CANCELLED
    later = utcnow() + TTL + timedelta(seconds=1)
    assert await store.press(expired.id, by=100, now=later) == Pressed.EXPIRED
