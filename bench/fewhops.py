"""Experiment, benchmarks only: one aiosqlite thread round trip per SQL statement instead of ~4.

aiosqlite runs each call (make a cursor, execute, fetch, close) on the connection's own thread,
and SQLAlchemy's adapter makes all four per statement: ~4.5 round trips a statement. This
module patches aiosqlite *in the benchmark's process only* so a statement costs one round trip
(execute and fetch together; cursor and close inline, which needs ``check_same_thread=False``),
to measure what a leaner driver would buy (``python -m bench overhead --fewer-hops``), and
``--sqlite-inline`` runs every call on the event loop's thread (no round trip at all). Nothing
in the bot uses it.
"""

from __future__ import annotations

from typing import Any

import aiosqlite
import aiosqlite.core
import aiosqlite.cursor
from aiosqlite.context import contextmanager
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import storage.db


async def _cursor(self: aiosqlite.Connection) -> aiosqlite.Cursor:
    return aiosqlite.Cursor(self, self._conn.cursor())


async def _execute(self: aiosqlite.Cursor, sql: str, parameters: Any = None) -> aiosqlite.Cursor:
    cursor = self._cursor

    def run() -> list[Any]:
        cursor.execute(sql, [] if parameters is None else parameters)
        return cursor.fetchall() if cursor.description else []

    connection: Any = self._conn
    self._prefetched = await connection._execute(run)  # type: ignore[attr-defined]
    return self


def _take(self: aiosqlite.Cursor, size: int | None) -> list[Any]:
    rows: list[Any] = getattr(self, "_prefetched", None) or []
    size = len(rows) if size is None else size
    self._prefetched, taken = rows[size:], rows[:size]  # type: ignore[attr-defined]
    return taken


async def _fetchall(self: aiosqlite.Cursor) -> list[Any]:
    return _take(self, None)


async def _fetchone(self: aiosqlite.Cursor) -> Any:
    rows = _take(self, 1)
    return rows[0] if rows else None


async def _fetchmany(self: aiosqlite.Cursor, size: int | None = None) -> list[Any]:
    return _take(self, size or self._cursor.arraysize)


async def _close(self: aiosqlite.Cursor) -> None:
    self._cursor.close()


def _engine(url: str, **kwargs: Any) -> AsyncEngine:
    kwargs.setdefault("connect_args", {})["check_same_thread"] = False
    return create_async_engine(url, **kwargs)


async def _inline(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def install(*, inline: bool = False) -> None:
    """Patch aiosqlite and the bot's engine factory in this process.

    With ``inline`` every call runs on the event loop's own thread: no round trip at all, the
    lower bound of any driver (and unsafe in the bot: a locked database would stall the loop).
    """
    if inline:
        setattr(aiosqlite.core.Connection, "_execute", _inline)  # noqa: B010
    setattr(aiosqlite.core.Connection, "cursor", contextmanager(_cursor))  # noqa: B010
    for name, patched in (
        ("execute", _execute),
        ("fetchall", _fetchall),
        ("fetchone", _fetchone),
        ("fetchmany", _fetchmany),
        ("close", _close),
    ):
        setattr(aiosqlite.cursor.Cursor, name, patched)
    setattr(storage.db, "create_async_engine", _engine)  # noqa: B010
