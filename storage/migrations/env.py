"""Alembic environment: runs on the connection handed over by :func:`storage.db.migrate`.

For ``alembic revision --autogenerate`` from a shell, it opens ``DATABASE_URL`` itself.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_standalone() -> None:
    from storage.db import create_engine

    async def go() -> None:
        engine = create_engine(
            os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./data/chatops.db")
        )
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(go())


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    _run_standalone()
