"""The database: the async engine, read and write sessions, SQLite tuning, migrations at start.

One storage style on every database: SQLModel's ``AsyncSession`` with ORM or Core statements.
Two databases are supported and tested, SQLite (aiosqlite, the embedded default) and
PostgreSQL (asyncpg); any other SQLAlchemy async URL is accepted as it is.

:class:`Database` hands out two kinds of sessions:

* :meth:`Database.read`: a plain session; on SQLite a read sees one WAL snapshot and never
  blocks a writer.
* :meth:`Database.write`: one transaction, committed when the block ends and rolled back if it
  raises. Writers of this process take turns (:class:`Turns`): a read-check-write (a
  forward-only state change, a claim) is atomic against every other writer of the process, a
  waiting writer waits on the event loop rather than in the driver's busy handler, and no
  write can commit out of order behind another. An *urgent* writer (``write(urgent=True)``:
  recording a chat message Telegram just accepted, where every millisecond is a window in
  which a crash makes the bot post it again) goes before the writers already waiting. On
  SQLite a writer also begins with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe: the
  driver's own ``BEGIN`` is switched off, a ``begin`` event issues ours), so another process
  writing the same file (a migration from the command line) makes it wait instead of failing
  half-way. On PostgreSQL a
  read-check-write locks the rows it reads (``SELECT … FOR UPDATE``), which SQLite ignores.

SQLite gets WAL mode (readers never block the writer), ``synchronous=NORMAL`` (durable at
every checkpoint, fast commits), foreign keys and a busy timeout. A session is never held open
across a provider call.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    event,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Every SQLite connection gets these.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


# What an operator may write → the async driver the bot runs it with (both are installed).
DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class DatabaseUnavailable(Exception):
    """The database could not be opened or migrated at start; the text is for the operator."""


def async_url(url: str) -> str:
    """``DATABASE_URL`` with the async driver filled in, or ``ValueError`` saying what works.

    ``sqlite:///…`` and ``postgresql://…`` (also Heroku-style ``postgres://…``) are accepted
    and run with aiosqlite and asyncpg; any other database or driver is refused at start.
    """
    try:
        parsed = make_url(url.strip())
    except Exception as exc:  # SQLAlchemy's ArgumentError, or a bad port number
        raise ValueError(f"not a database URL ({exc})") from exc
    driver = DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"{parsed.drivername!r} is not supported: use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user:password@host:5432/database"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the database could not be reached or used just now (not a bug).

    A server gone away, a dropped connection, a SQLite file locked past the busy timeout.
    asyncpg raises the socket's own error when it cannot connect, unwrapped (provider and
    Telegram calls translate theirs, so one of these reaching a handler is the database's).
    """
    if isinstance(error, OperationalError | InterfaceError | ConnectionError | socket.gaierror):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


async def open_database(url: str) -> AsyncEngine:
    """The engine of ``url``, migrated; :class:`DatabaseUnavailable` when that fails.

    A server that is down, a database that does not exist, refused credentials or an
    unwritable SQLite folder all end here, with the reason and the URL (password masked).
    """
    try:
        engine = create_engine(url)
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseUnavailable(f"cannot open the database at {safe_url(url)}: {exc}") from exc
    try:
        await migrate(engine)
    except (OSError, SQLAlchemyError) as exc:
        await engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise DatabaseUnavailable(
            f"the database at {safe_url(url)} is not reachable or not usable: {reason}"
        ) from exc
    return engine


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for memory and other databases."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_engine(url: str) -> AsyncEngine:
    """Create the engine; for a SQLite file, make its folder and set the pragmas."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # A pooled PostgreSQL connection may have been closed by the server meanwhile.
    return create_async_engine(url, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver would issue its own deferred BEGIN before a write; _sqlite_begin does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "")
    connection.exec_driver_sql(f"BEGIN {mode}".rstrip())


_BEGIN_OPTION = "sqlite_begin"


class Turns:
    """A lock for the writers of this process: first come, first served, urgent ones first."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for this writer's turn."""
        if not self._held:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._others
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the turn came with the cancellation: pass it on
            else:
                queue.remove(turn)
            raise

    def release(self) -> None:
        """End this writer's turn: hand it to the next one waiting (urgent ones first)."""
        for queue in (self._urgent, self._others):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False


class Database:
    """The engine and its sessions: :meth:`read` for queries, :meth:`write` for changes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._readers = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        writer = engine
        if self.dialect == "sqlite":
            writer = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._writers = async_sessionmaker(writer, class_=AsyncSession, expire_on_commit=False)
        self._turns = Turns()
        # The replica (``storage/replicas.py``) this process writes its rows under: messages,
        # outbox entries and inbox rows it owns. None until the application sets it at start.
        self.replica: str | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries (objects stay usable after it closes)."""
        async with self._readers() as session:
            yield session

    @asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction: committed at the end, rolled back on error.

        Never nest two: writers take turns, so an inner one would wait for the outer forever.
        ``urgent`` goes before the writers waiting (keep such transactions to a few rows).
        """
        await self._turns.acquire(urgent=urgent)
        try:
            async with self._writers() as session, session.begin():
                yield session
        finally:
            self._turns.release()

    async def ping(self) -> None:
        """One ``SELECT 1`` on a connection of the pool (the health check); raises if it fails.

        A read connection, not a writer's turn: a long write transaction must not make a
        healthy database look down.
        """
        async with self.engine.connect() as connection:
            await connection.execute(select(literal(1)))


async def migrate(engine: AsyncEngine) -> None:
    """Apply every Alembic migration (all heads: features add their own branches).

    A database already stamped with exactly the heads of the migration files is left alone
    without importing Alembic, which costs ~0.1 s of every restart (bench/startup.py). A new,
    empty database is built from the models and stamped at the heads, as Alembic's own
    cookbook does ("building an up to date database from scratch"): importing Alembic and
    replaying every migration cost ~0.3 s of a first start. tests/test_migrate_at_heads.py
    checks that both ways give the same schema.
    """
    async with engine.begin() as conn:
        if await conn.run_sync(_at_heads):
            return
        heads = migration_heads()
        empty: bool = await conn.run_sync(_is_empty)
        if heads and empty:
            await conn.run_sync(_create_at_heads, heads)
        else:
            await conn.run_sync(_upgrade)


def migration_heads() -> set[str]:
    """The head revisions of ``migrations/versions``, read from the files without Alembic.

    Empty when a file does not have the plain ``revision = "…"`` / ``down_revision = …`` lines
    of the template: then nothing is assumed and Alembic decides.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = re.search(r"^revision(?:\s*:[^=\n]+)?\s*=\s*['\"]([^'\"]+)['\"]", source, re.M)
        down = re.search(r"^down_revision(?:\s*:[^=\n]+)?\s*=\s*(.+)$", source, re.M)
        if revision is None or down is None:
            return set()
        revisions.add(revision.group(1))
        revised.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return revisions - revised


def _at_heads(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    stamped = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return bool(stamped) and stamped == migration_heads()


def _is_empty(connection: Connection) -> bool:
    return not inspect(connection).get_table_names()


def _create_at_heads(connection: Connection, heads: set[str]) -> None:
    from sqlmodel import SQLModel

    import storage.models  # noqa: F401 - the tables register themselves on SQLModel's metadata

    SQLModel.metadata.create_all(connection)
    # Alembic's own version table, as ``alembic stamp`` would write it.
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert(), [{"version_num": head} for head in sorted(heads)])


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")
