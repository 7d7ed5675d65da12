"""The database each test runs on: SQLite by default, PostgreSQL with ``TEST_DATABASE_URL``.

Without ``TEST_DATABASE_URL`` a test's database is a SQLite file in its ``tmp_path``. With it
(``postgresql+asyncpg://postgres@127.0.0.1:5432/test``), each (test, name) pair gets a fresh
PostgreSQL database on that server, created on first use and dropped when the test session
ends, so tests never see each other's rows and a bot restarted within a test finds its data.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
PREFIX = "chatops_t_"

_created: list[str] = []
_lock = threading.Lock()


def database_url(tmp_path: Path, name: str = "bot") -> str:
    """The URL of the test's database ``name`` (created on first use)."""
    if not TEST_DATABASE_URL:
        return f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    digest = hashlib.sha1(f"{tmp_path}/{name}".encode(), usedforsecurity=False).hexdigest()
    database = f"{PREFIX}{os.getpid()}_{digest[:12]}"
    with _lock:
        if database not in _created:
            _admin(f'CREATE DATABASE "{database}"')
            _created.append(database)
    return make_url(TEST_DATABASE_URL).set(database=database).render_as_string(False)


def drop_all() -> None:
    """Drop this run's databases, and those of earlier runs whose process is gone.

    A database's name carries the pid of the run that made it, so two runs at once (CI and a
    developer's ``make test-pg``) never drop each other's.
    """
    with _lock:
        _created.clear()
    if TEST_DATABASE_URL:
        for database in _admin_rows(
            "SELECT datname FROM pg_database WHERE datname LIKE :prefix", prefix=f"{PREFIX}%"
        ):
            if not _run_alive(database):
                _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _run_alive(database: str) -> bool:
    """Whether the test run that made ``database`` is another process still running."""
    pid_text = database.removeprefix(PREFIX).partition("_")[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _admin(statement: str) -> None:
    _admin_rows(statement)


def _admin_rows(statement: str, **params: str) -> list[str]:
    """Run one statement on the admin database, from a thread of its own (tests are async)."""

    async def run() -> list[str]:
        engine = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(statement), params)
                return [str(row[0]) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    out: list[list[str]] = []
    failed: list[BaseException] = []

    def target() -> None:
        try:
            out.append(asyncio.run(run()))
        except BaseException as exc:  # handed to the calling thread
            failed.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if failed:
        raise RuntimeError(f"the test database server refused: {statement}") from failed[0]
    return out[0]


def wait_for_server(seconds: float = 30.0) -> None:
    """Wait until ``TEST_DATABASE_URL``'s server answers; exit with a clear line if it never does.

    ``python -m tests.databases`` runs this before the PostgreSQL half of CI.
    """
    if not TEST_DATABASE_URL:
        raise SystemExit("TEST_DATABASE_URL is not set: there is no PostgreSQL to wait for")
    deadline = time.monotonic() + seconds
    while True:
        try:
            _admin("SELECT 1")
        except RuntimeError as exc:
            if time.monotonic() > deadline:
                url = make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)
                raise SystemExit(
                    f"PostgreSQL at {url} did not answer within {seconds:.0f} s "
                    f"({exc.__cause__}); start it, or unset TEST_DATABASE_URL"
                ) from exc
            time.sleep(1)
        else:
            return


if __name__ == "__main__":
    wait_for_server()
    print(f"PostgreSQL is up: {make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)}")
