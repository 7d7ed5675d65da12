"""Units of work: a whole transaction run in one call on the database connection's thread.

aiosqlite runs every DBAPI call (make a cursor, execute, fetch, close, commit) on its
connection's own thread and hops back to the event loop after each one; SQLAlchemy's async
adapter makes ~4.5 such hops a statement, and each costs ~0.13 ms of CPU on the 2-core VMs
this runs on (bench/RESULTS.md, "Command overhead"). On the hot paths (a send, its outcome,
its card) that was most of a ``/send``'s time.

A *unit of work* is a plain synchronous function of a SQLAlchemy :class:`~sqlalchemy.orm.Session`
(Core statements or the ORM, the same SQLModel tables). :class:`Units` runs it from begin to
commit:

* SQLite file (the bot's database): on a dedicated aiosqlite connection, whose thread runs the
  whole function with a synchronous SQLAlchemy engine bound to that same ``sqlite3``
  connection. One hop a transaction, whatever its statements. Writers take the lock up front
  (``BEGIN IMMEDIATE``), so a read-check-write unit is atomic against every other connection,
  and waiting for the lock (``busy_timeout``) blocks that thread, never the event loop.
* anything else (``:memory:``, another database): through an ``AsyncSession`` and
  :meth:`~sqlalchemy.ext.asyncio.AsyncSession.run_sync`, the same function, more hops, one
  writing unit at a time.

A unit must not await anything and must not call back into the event loop; it returns plain
values or detached objects (sessions never expire on commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from storage.db import SQLITE_PRAGMAS, SessionFactory, sqlite_path

log = logging.getLogger(__name__)

T = TypeVar("T")
LOCK_WAIT = 5.0  # seconds a writing unit waits for another connection's write lock
Work = Callable[[Session], T]
CoreWork = Callable[[Connection], T]


class DirectSqlite:
    """One aiosqlite connection whose thread runs whole units of work (one hop each).

    Checkpoints are kept off that thread: a commit that crosses SQLite's automatic checkpoint
    (1,000 WAL pages) copies them into the database file and syncs it, 10–100+ ms here, on
    whichever ``/send`` happened to commit then. This connection does not checkpoint; a
    second connection runs a ``PASSIVE`` checkpoint (never blocks writers or readers) every
    ``CHECKPOINT_SECONDS`` on its own thread, which also keeps the WAL small.
    """

    CHECKPOINT_SECONDS = 1.0

    def __init__(
        self, connection: aiosqlite.Connection, checkpointer: aiosqlite.Connection
    ) -> None:
        self._aio = connection
        self._checkpointer = checkpointer
        self._checkpoints: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._connection: Connection | None = None
        self._write = True
        self.checkpoints = 0

    @classmethod
    async def open(cls, path: Path) -> DirectSqlite:
        """Connect to the SQLite file (autocommit mode: each unit issues its own ``BEGIN``)."""
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            checkpointer = await aiosqlite.connect(str(path), isolation_level=None)
        except BaseException:
            await connection.close()
            raise
        direct = cls(connection, checkpointer)
        try:
            await direct._call(direct._set_up)
            for pragma in SQLITE_PRAGMAS:
                await checkpointer.execute(pragma)
        except BaseException:
            await connection.close()
            await checkpointer.close()
            raise
        direct._checkpoints = asyncio.create_task(direct._checkpoint_loop(), name="checkpoints")
        return direct

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.CHECKPOINT_SECONDS)
            try:
                await self.checkpoint()
            except Exception:  # e.g. the disk: logged, tried again next time, never fatal
                log.exception("WAL checkpoint failed")

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file now (``PASSIVE``: nobody waits for it)."""
        await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self.checkpoints += 1

    @property
    def engine(self) -> Engine:
        """The synchronous engine bound to this connection (runs only on its thread)."""
        assert self._engine is not None
        return self._engine

    async def run(self, work: Work[T], *, write: bool) -> T:
        """Run ``work`` with a Session in one transaction on the connection's thread."""
        result: T = await self._call(self._unit, work, write)
        return result

    async def run_core(self, work: CoreWork[T], *, write: bool) -> T:
        """Run ``work`` with the Core connection in one transaction on its thread."""
        result: T = await self._call(self._core_unit, work, write)
        return result

    async def close(self) -> None:
        """Stop checkpointing, dispose of the engine and close both connections."""
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
        if self._engine is not None:
            await self._call(self._dispose)
        await self._aio.close()
        await self._checkpointer.close()  # the last connection out checkpoints the rest

    def _dispose(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._engine is not None:
            self._engine.dispose()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # aiosqlite has no public "run this on your thread"; ``_execute`` is what its own
        # methods use (pinned: aiosqlite 0.22; tests/test_units.py fails if it changes).
        return await self._aio._execute(fn, *args)  # type: ignore[no-untyped-call]

    def _set_up(self) -> None:
        raw: sqlite3.Connection = self._aio._conn
        for pragma in SQLITE_PRAGMAS:
            raw.execute(pragma)
        raw.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, see the class
        self._engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
        event.listen(self._engine, "begin", self._begin)
        # Held for the connection's life: checking one out and a Session per unit cost
        # ~0.1 ms more (bench/RESULTS.md).
        self._connection = self._engine.connect()

    def _begin(self, connection: Connection) -> None:
        raw: sqlite3.Connection = self._aio._conn
        if not self._write:
            raw.execute("BEGIN")
            return
        # SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between tries: behind a
        # background writer, a send would wait up to 100 ms for a lock freed in 1 ms. Retry
        # here in steps of at most 2 ms instead (on this thread, never the event loop's).
        raw.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + LOCK_WAIT
            pause = 0.0002
            while True:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT * 1000)}")

    def _unit(self, work: Work[T], write: bool) -> T:
        def in_session(connection: Connection) -> T:
            with Session(bind=connection, expire_on_commit=False) as session:
                result = work(session)
                session.flush()
            return result

        return self._core_unit(in_session, write)

    def _core_unit(self, work: CoreWork[T], write: bool) -> T:
        connection = self._connection
        assert connection is not None
        self._write = write
        with connection.begin():
            return work(connection)


class Units:
    """Runs units of work: one hop on a SQLite file, ``run_sync`` elsewhere."""

    def __init__(self, sessions: SessionFactory, direct: DirectSqlite | None = None) -> None:
        self._sessions = sessions
        self._direct = direct
        # Without BEGIN IMMEDIATE the units interleave at every await of run_sync: one writer
        # at a time keeps a read-check-write unit atomic.
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, sessions: SessionFactory, url: str) -> Units:
        """Units for this database URL (a direct connection when it is a SQLite file)."""
        path = sqlite_path(url)
        direct = await DirectSqlite.open(path) if path is not None else None
        return cls(sessions, direct)

    async def run(self, work: Work[T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction, committed when it returns, rolled back if it raises."""
        if self._direct is not None:
            return await self._direct.run(work, write=write)
        if not write:
            return await self._run_sync(work)
        async with self._writing:
            return await self._run_sync(work)

    async def run_core(self, work: CoreWork[T], *, write: bool = True) -> T:
        """Like :meth:`run`, with a Core ``Connection`` (lighter: no ORM session)."""
        if self._direct is not None:
            return await self._direct.run_core(work, write=write)
        return await self.run(lambda session: work(session.connection()), write=write)

    async def _run_sync(self, work: Work[T]) -> T:
        async with self._sessions() as session:
            result: T = await session.run_sync(work)
            await session.commit()
            return result

    @property
    def direct_engine(self) -> Engine | None:
        """The synchronous engine of the direct connection (for instrumentation), if any."""
        return self._direct.engine if self._direct is not None else None

    async def close(self) -> None:
        """Close the direct connection, if any."""
        if self._direct is not None:
            await self._direct.close()
            self._direct = None


def sync_engines(engine: AsyncEngine, units: Units | None) -> list[Engine]:
    """Every synchronous engine the bot's SQL runs on: the pool's, and the units' own.

    For instrumentation (statement counts in tests and benchmarks): a listener on only the
    pool's engine would miss the whole send path.
    """
    direct = units.direct_engine if units is not None else None
    return [engine.sync_engine, *([direct] if direct is not None else [])]
