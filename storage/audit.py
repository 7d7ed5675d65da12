"""The audit log: who did what in which chat, when, and what came of it.

:func:`record` is the one way a row is written. It takes the session of the action's own
transaction, so the row commits (or rolls back) with the change it describes; an action that
changes nothing in the database (a refusal, a provider call) writes it in a transaction of
its own through :meth:`AuditLog.write`. A detail never holds a secret (credential values stay
out of every caller's detail) and is cut to :data:`DETAIL_MAX` characters.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import AuditEntry, AuditOutcome, utcnow

DETAIL_MAX = 500


def record(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int,
    action: str,
    detail: str = "",
    outcome: AuditOutcome | str = AuditOutcome.OK,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one audit row to ``session`` (committed with the caller's transaction).

    Args:
        session: the write session of the action being recorded.
        chat_id: the chat the action belongs to.
        user_id: who did it (Telegram user id).
        action: what, as one short word or two (``send``, ``stop``, ``list add`` …).
        detail: which objects, counts; never a secret or a message text.
        outcome: ``ok``, ``refused`` or ``failed`` (:class:`AuditOutcome`).
        at: when; now by default.

    """
    entry = AuditEntry(
        chat_id=chat_id,
        user_id=user_id,
        action=action,
        detail=detail[:DETAIL_MAX],
        outcome=str(outcome),
        at=at or utcnow(),
    )
    session.add(entry)
    return entry


class AuditLog:
    """Reading the log, and writing a row that has no transaction of its own to join."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(
        self,
        chat_id: int,
        user_id: int,
        action: str,
        detail: str = "",
        outcome: AuditOutcome | str = AuditOutcome.OK,
    ) -> None:
        """Record one action in a transaction of its own (see :func:`record`)."""
        async with self.db.write() as s:
            record(
                s, chat_id=chat_id, user_id=user_id, action=action, detail=detail, outcome=outcome
            )

    async def latest(self, chat_id: int, limit: int) -> list[AuditEntry]:
        """The chat's newest ``limit`` rows, newest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(AuditEntry)
                .where(col(AuditEntry.chat_id) == chat_id)
                .order_by(col(AuditEntry.id).desc())
                .limit(limit)
            )
            return list(rows)
