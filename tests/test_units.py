"""Units of work (storage/units.py): one thread hop a transaction, atomic, rolled back on error.

Also the in-memory row caches of the repository (storage/cache.py) and the send path's
no-read outcome write (storage/sends.py ``record_outcomes``) with its fallback.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

import storage.units
from providers.base import DeliveryState as S
from storage.cache import RowCache
from storage.db import create_engine, migrate, session_factory
from storage.models import AuditEntry, Batch, Message
from storage.repo import Repository, StateChange
from storage.sends import table_of
from storage.units import Units


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[tuple[AsyncEngine, Units]]:
    """A migrated database and its units of work, closed after the block."""
    engine = create_engine(url)
    await migrate(engine)
    units = await Units.open(session_factory(engine), url)
    try:
        yield engine, units
    finally:
        await units.close()
        await engine.dispose()


def _direct(units: Units) -> storage.units.DirectSqlite:
    direct = units._direct
    assert direct is not None
    return direct


async def _checkpoints_reach(direct: storage.units.DirectSqlite, count: int) -> None:
    for _ in range(300):
        if direct.checkpoints >= count:
            return
        await asyncio.sleep(0.01)


@pytest.fixture
async def units_repo(tmp_path: Path) -> AsyncIterator[tuple[Units, Repository]]:
    async with opened(f"sqlite+aiosqlite:///{tmp_path / 'units.db'}") as (engine, units):
        yield units, Repository(session_factory(engine), units)


@contextmanager
def hops() -> Iterator[list[int]]:
    """Count aiosqlite thread round trips (every call goes through ``Connection._execute``)."""
    original: Any = aiosqlite.core.Connection._execute
    seen = [0]

    async def counted(conn: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        return await original(conn, fn, *args, **kwargs)

    setattr(aiosqlite.core.Connection, "_execute", counted)  # noqa: B010
    try:
        yield seen
    finally:
        setattr(aiosqlite.core.Connection, "_execute", original)  # noqa: B010


def _audit(s: Session, action: str) -> None:
    s.execute(insert(table_of(AuditEntry)).values(chat_id=1, user_id=1, action=action))


def _actions(s: Session) -> list[str]:
    return list(s.scalars(select(AuditEntry.action)))


def test_aiosqlite_still_runs_functions_on_its_thread() -> None:
    # storage.units relies on this private method (pinned aiosqlite 0.22): fail loudly if gone.
    assert callable(getattr(aiosqlite.Connection, "_execute", None))


async def test_a_unit_is_one_round_trip_and_commits(units_repo: tuple[Units, Repository]) -> None:
    units, _repo = units_repo

    def work(s: Session) -> int:
        for i in range(5):
            _audit(s, f"a{i}")
        return len(_actions(s))

    with hops() as seen:
        assert await units.run(work) == 5
    assert seen[0] == 1
    assert await units.run(_actions, write=False) == [f"a{i}" for i in range(5)]


async def test_a_failing_unit_leaves_nothing(units_repo: tuple[Units, Repository]) -> None:
    units, _repo = units_repo

    def work(s: Session) -> None:
        _audit(s, "half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await units.run(work)
    assert await units.run(_actions, write=False) == []
    await units.run(lambda s: _audit(s, "after"))  # the connection is usable again
    assert await units.run(_actions, write=False) == ["after"]


async def test_a_writer_waits_for_another_connection_then_writes(
    units_repo: tuple[Units, Repository],
) -> None:
    units, repo = units_repo
    async with repo.sessions() as other:
        await other.exec(text("BEGIN IMMEDIATE"))
        await other.exec(insert(table_of(AuditEntry)).values(chat_id=1, user_id=1, action="x"))
        waiting = asyncio.create_task(units.run(lambda s: _audit(s, "unit")))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # blocked on the lock, in its thread (the loop runs)
        await other.commit()
    await asyncio.wait_for(waiting, 5)
    assert await units.run(_actions, write=False) == ["x", "unit"]


async def test_a_writer_gives_up_after_the_lock_wait(
    units_repo: tuple[Units, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    units, repo = units_repo
    monkeypatch.setattr(storage.units, "LOCK_WAIT", 0.1)
    async with repo.sessions() as other:
        await other.exec(text("BEGIN IMMEDIATE"))
        with pytest.raises((OperationalError, aiosqlite.OperationalError)):
            await units.run(lambda s: _audit(s, "late"))
        await other.rollback()
    await units.run(lambda s: _audit(s, "now"))
    assert await units.run(_actions, write=False) == ["now"]


async def test_units_on_a_database_that_is_not_a_file() -> None:
    async with opened("sqlite+aiosqlite:///:memory:") as (_engine, units):
        assert units.direct_engine is None
        await units.run(lambda s: _audit(s, "m"))
        assert await units.run(_actions, write=False) == ["m"]


async def _wal_frames(engine: Any) -> tuple[int, int]:
    async with engine.connect() as conn:
        _busy, frames, copied = (
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        ).one()
    return int(frames), int(copied)


async def test_the_wal_is_checkpointed_off_the_units_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.units.DirectSqlite, "CHECKPOINT_SECONDS", 3600.0)

    def many(s: Session) -> None:
        for i in range(2000):
            _audit(s, f"{i:0>300}")

    async with opened(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}") as (engine, units):
        for _ in range(8):  # ~2,000 WAL pages: twice SQLite's automatic checkpoint
            await units.run(many)
        frames, _copied = await _wal_frames(engine)
        assert frames > 1000  # the units' commits never checkpointed (nor reset the WAL)
        await _direct(units).checkpoint()
        assert _direct(units).checkpoints == 1


async def test_checkpoints_run_in_the_background(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(storage.units.DirectSqlite, "CHECKPOINT_SECONDS", 0.01)
    async with opened(f"sqlite+aiosqlite:///{tmp_path / 'bg.db'}") as (_engine, units):
        await _checkpoints_reach(_direct(units), 3)
        assert _direct(units).checkpoints >= 3


async def test_a_failed_checkpoint_is_logged_and_tried_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(storage.units.DirectSqlite, "CHECKPOINT_SECONDS", 0.01)
    failures = [sqlite3.OperationalError("disk I/O error")]
    async with opened(f"sqlite+aiosqlite:///{tmp_path / 'fail.db'}") as (_engine, units):
        direct = _direct(units)
        real = direct._checkpointer.execute

        def flaky(sql: str, *args: Any) -> Any:
            if failures:
                raise failures.pop()
            return real(sql, *args)

        monkeypatch.setattr(direct._checkpointer, "execute", flaky)
        await _checkpoints_reach(direct, 2)
        assert direct.checkpoints >= 2  # the loop went on after the failure
        assert "WAL checkpoint failed" in caplog.text


# -- row caches --------------------------------------------------------------------------------


def test_a_read_started_before_a_write_does_not_put_the_old_row_back() -> None:
    cache: RowCache[int, str] = RowCache(2)
    before = cache.generation()
    cache.forget(1)  # a write happened while the read was under way
    cache.put(1, "old", before)
    assert cache.lookup(1) == (False, None)
    cache.put(1, "new", cache.generation())
    cache.put(2, None, cache.generation())
    assert cache.lookup(1) == (True, "new")
    assert cache.lookup(2) == (True, None)  # "no row" is cached too
    cache.put(3, "c", cache.generation())
    assert cache.lookup(1) == (False, None)  # bounded: the oldest went


async def test_cached_chats_and_credentials_follow_every_write(
    units_repo: tuple[Units, Repository],
) -> None:
    _units, repo = units_repo
    chat = await repo.ensure_chat(5, kind="private", title="a")
    assert await repo.ensure_chat(5, kind="private", title="a") is chat  # no read
    await repo.update_chat(5, country="ID")
    assert (await repo.ensure_chat(5, kind="private", title="a")).country == "ID"
    assert (await repo.ensure_chat(5, kind="group", title="b")).title == "b"

    assert await repo.get_credential(5, "nusasms") is None
    await repo.save_credential(5, "nusasms", secret=b"one", account="acc", actor=1)
    first = await repo.get_credential(5, "nusasms")
    assert first is not None
    assert first.secret == b"one"
    await repo.save_credential(5, "nusasms", secret=b"two", account="acc", actor=1)
    second = await repo.get_credential(5, "nusasms")
    assert second is not None
    assert second.secret == b"two"
    await repo.replace_secrets({second.id or 0: b"three"})
    third = await repo.get_credential(5, "nusasms")
    assert third is not None
    assert third.secret == b"three"
    assert await repo.delete_credential(5, "nusasms")
    assert await repo.get_credential(5, "nusasms") is None


# -- a send's outcomes -------------------------------------------------------------------------


async def _stored_send(repo: Repository, count: int) -> list[Message]:
    await repo.ensure_chat(9, kind="private", title="t")
    rows = [
        Message(
            batch_id=0,
            chat_id=9,
            provider="nusasms",
            channel="wa",
            recipient=f"62812{i:08d}",
            text="hi",
            idempotency_key=f"o:{i}",
        )
        for i in range(count)
    ]
    stored = await repo.store_send(
        Batch(chat_id=9, route="nusasms:wa", text="hi", origin="o", created_by=1), rows
    )
    assert stored.new
    assert stored.last_event_id > 0
    return rows


async def test_outcomes_are_written_without_a_read_and_objects_follow(
    units_repo: tuple[Units, Repository],
) -> None:
    units, repo = units_repo
    rows = await _stored_send(repo, 3)
    outcomes = [
        (m, StateChange(m.id or 0, S.ACCEPTED, "send", provider_ref=f"r{i}"))
        for i, m in enumerate(rows)
    ]
    statements: list[str] = []
    engine = units.direct_engine
    assert engine is not None

    def seen(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        statements.append(" ".join(statement.split()[:4]).upper())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        last = await repo.record_outcomes(outcomes)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # No read of the messages: one UPDATE, one INSERT of history, the newest history id.
    assert [s.split()[0] for s in statements] == ["UPDATE", "INSERT", "SELECT"]
    assert statements[2].startswith("SELECT MAX(STATUSEVENT.ID)")
    assert [m.state for m in rows] == ["accepted"] * 3
    assert [m.provider_ref for m in rows] == ["r0", "r1", "r2"]
    history = await repo.history(rows[2].id or 0)
    assert [e.state for e in history] == ["queued", "accepted"]
    assert last == history[-1].id


async def test_an_outcome_never_moves_a_message_backwards(
    units_repo: tuple[Units, Repository],
) -> None:
    _units, repo = units_repo
    rows = await _stored_send(repo, 2)
    # A bug elsewhere moved the first message on before the send recorded its answer.
    await repo.apply_changes([StateChange(rows[0].id or 0, S.DELIVERED, "webhook")])
    await repo.record_outcomes(
        [(m, StateChange(m.id or 0, S.ACCEPTED, "send", provider_ref="r")) for m in rows]
    )
    assert [m.state for m in rows] == ["delivered", "accepted"]
    stored = await repo.batch_messages(rows[0].batch_id)
    assert [m.state for m in stored] == ["delivered", "accepted"]
    assert all(m.provider_ref == "r" for m in stored)
