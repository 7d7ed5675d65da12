"""Migrations: one history for SQLite and PostgreSQL, and start-up's shortcuts around Alembic.

Every test here runs on the suite's database (PostgreSQL with ``TEST_DATABASE_URL``): the
models and the migrations must build the same schema on both.

Importing Alembic costs ~0.1 s of every restart; these tests pin that the shortcut reads the
same heads as Alembic, is taken only when the stamps match exactly, and otherwise runs the
real upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.db
from storage.db import MIGRATIONS_DIR, create_engine, migrate, migration_heads
from tests.databases import database_url


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


async def test_a_fresh_database_is_built_from_the_models_and_stamped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_connection: Connection) -> None:
        raise AssertionError("alembic ran for an empty database")

    monkeypatch.setattr(storage.db, "_upgrade", fail)
    fresh = create_engine(database_url(tmp_path, "fresh"))
    try:
        await migrate(fresh)
        async with fresh.connect() as conn:
            stamped = set(
                (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()
            )
    finally:
        await fresh.dispose()
    assert stamped == migration_heads()


def _schema(connection: Connection) -> dict[str, Any]:
    """Everything a query or a constraint depends on, table by table (names included)."""
    found = inspect(connection)
    schema: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        schema[table] = {
            # In name order: a column a migration added comes last, which no query sees.
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in found.get_columns(table)
            ),
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in found.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    (f.get("options") or {}).get("ondelete"),
                )
                for f in found.get_foreign_keys(table)
            ),
        }
    return schema


async def test_the_models_and_the_migrations_build_the_same_schema(tmp_path: Path) -> None:
    built = create_engine(database_url(tmp_path, "built"))
    migrated = create_engine(database_url(tmp_path, "migrated"))
    try:
        await migrate(built)  # empty: from the models
        async with migrated.begin() as conn:
            await conn.run_sync(storage.db._upgrade)  # every migration, through Alembic
        async with built.connect() as a, migrated.connect() as b:
            assert await a.run_sync(_schema) == await b.run_sync(_schema)
    finally:
        await built.dispose()
        await migrated.dispose()


async def test_a_database_built_from_the_models_takes_later_migrations(
    tmp_path: Path,
) -> None:
    # Stamped at the heads, Alembic sees nothing to do, and a future migration applies on top.
    fresh = create_engine(database_url(tmp_path, "later"))
    try:
        await migrate(fresh)
        async with fresh.begin() as conn:
            await conn.run_sync(storage.db._upgrade)  # a no-op, not an error
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await fresh.dispose()
    assert {"message", "batch", "statusevent", "alembic_version"} <= tables
