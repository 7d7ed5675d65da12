"""The database each test runs on: SQLite by default, PostgreSQL with ``TEST_DATABASE_URL``.

Without ``TEST_DATABASE_URL`` a test's database is a SQLite file in its ``tmp_path``. With it
(``postgresql+asyncpg://postgres@127.0.0.1:5432/test``), each (test, name) pair gets an empty
PostgreSQL database on that server for the length of the test, so tests never see each other's
rows and a bot restarted within a test finds its data.

Databases are reused: when a test ends, :func:`release` empties the ones it used (its schema
dropped and made again) and hands them to later tests; the session drops them at its end. A
``DROP DATABASE`` waits for a checkpoint (seconds on a busy machine), emptying a schema does not:
one database per test cost the PostgreSQL run minutes.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
PREFIX = "chatops_t_"

_created: list[str] = []  # every database this run made
_free: list[str] = []  # empty ones, ready for the next test
_in_use: dict[str, str] = {}  # "<tmp_path>/<name>" of the running test → its database
_lock = threading.Lock()


def database_url(tmp_path: Path, name: str = "bot") -> str:
    """The URL of the test's database ``name`` (an empty one on first use)."""
    if not TEST_DATABASE_URL:
        return f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    key = f"{tmp_path}/{name}"
    with _lock:
        database = _in_use.get(key)
        if database is None:
            database = _free.pop() if _free else _create()
            _in_use[key] = database
    return make_url(TEST_DATABASE_URL).set(database=database).render_as_string(False)


def _create() -> str:
    database = f"{PREFIX}{os.getpid()}_{len(_created)}"
    _admin(f'CREATE DATABASE "{database}"')
    # A test's commits need not wait for the disk (a crash loses the test database anyway):
    # many small transactions and the schema built per test were most of a test's time.
    _admin(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    _created.append(database)
    return database


def release() -> None:
    """Empty the databases the test that just ended used, for the tests after it.

    Connections left open (a killed bot's, say) are ended first, or the schema could not go.
    """
    with _lock:
        used = list(_in_use.values())
        _in_use.clear()
    for database in used:
        _admin_rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()",
            "DROP SCHEMA public CASCADE",
            "CREATE SCHEMA public",
            database=database,
            name=database,
        )
        with _lock:
            _free.append(database)


def drop_all() -> None:
    """Drop this run's databases, and those of earlier runs whose process is gone.

    A database's name carries the pid of the run that made it, so two runs at once (CI and a
    developer's ``make test-pg``) never drop each other's.
    """
    with _lock:
        _created.clear()
        _free.clear()
        _in_use.clear()
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


def _admin(statement: str, *, database: str | None = None, **params: str) -> None:
    _admin_rows(statement, database=database, **params)


def _admin_rows(*statements: str, database: str | None = None, **params: str) -> list[str]:
    """Run statements on the admin database (or ``database``), from a thread of its own.

    A thread, because tests are async and this is called from synchronous fixtures; one
    connection for all of them (each costs a connection otherwise). Returns the last one's
    rows; ``params`` go to every statement that names them.
    """
    url = make_url(TEST_DATABASE_URL)
    if database is not None:
        url = url.set(database=database)

    async def run() -> list[str]:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            rows: list[str] = []
            async with engine.connect() as connection:
                for statement in statements:
                    named = {k: v for k, v in params.items() if f":{k}" in statement}
                    result = await connection.execute(text(statement), named)
                    rows = [str(row[0]) for row in result] if result.returns_rows else []
            return rows
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
        refused = "; ".join(statements)
        raise RuntimeError(f"the test database server refused: {refused}") from failed[0]
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
