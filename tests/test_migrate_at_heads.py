"""Start-up skips Alembic when the database is already at the heads of the migration files.

Importing Alembic costs ~0.1 s of every restart; these tests pin that the shortcut reads the
same heads as Alembic, is taken only when the stamps match exactly, and otherwise runs the
real upgrade.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.db
from storage.db import MIGRATIONS_DIR, create_engine, migrate, migration_heads


def test_heads_read_from_the_files_are_alembics_heads() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert migration_heads() == set(ScriptDirectory.from_config(config).get_heads())


async def test_a_database_at_the_heads_is_not_upgraded_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_connection: Connection) -> None:
        raise AssertionError("alembic ran on a database already at its heads")

    monkeypatch.setattr(storage.db, "_upgrade", fail)
    await migrate(engine)  # the fixture's database was migrated already
    async with engine.connect() as conn:
        stamped = set(
            (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        )
    assert stamped == migration_heads()


async def test_a_migration_the_database_has_not_seen_runs_alembic(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[bool] = []
    monkeypatch.setattr(storage.db, "_upgrade", lambda _connection: ran.append(True))
    monkeypatch.setattr(storage.db, "migration_heads", lambda: migration_heads() | {"0099"})
    await migrate(engine)
    assert ran == [True]


def test_a_file_without_the_plain_revision_lines_assumes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_x.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "0002_y.py").write_text("REV = '0002'\nrevision = REV\ndown_revision = '0001'\n")
    monkeypatch.setattr(storage.db, "MIGRATIONS_DIR", tmp_path / "migrations")
    assert migration_heads() == set()  # and an empty set never matches a stamped database


async def test_a_fresh_database_is_created_by_alembic(tmp_path: Path) -> None:
    fresh = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await migrate(fresh)
        async with fresh.connect() as conn:
            stamped = set(
                (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()
            )
            tables = set(
                (
                    await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
                ).scalars()
            )
    finally:
        await fresh.dispose()
    assert stamped == migration_heads()
    assert {"message", "batch", "statusevent"} <= tables
