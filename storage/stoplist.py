"""Chats' stoplists: numbers (E.164, with ``+``) that sends from the chat must skip.

Changes are written with their audit row in one transaction. :meth:`StopList.stopped` is
asked by every send with phone numbers, so whether a chat has a stoplist at all is kept in
memory on SQLite (most chats have none, and then a send costs no query; several replicas on
PostgreSQL keep no copy, as one may change what another read); the numbers themselves are
always read from the database, in chunks that stay below every driver's parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.audit import record
from storage.cache import RowCache
from storage.db import Database
from storage.models import StopEntry, utcnow

CHUNK = 500  # numbers per IN (...) query
CHATS_CACHED = 4096


class StopList:
    """Every query on ``stopentry``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # On PostgreSQL another replica may stop a number: no copy there (as for chats).
        size = CHATS_CACHED if db.dialect == "sqlite" else 0
        self._has_any: RowCache[int, bool] = RowCache(size)

    async def add(self, chat_id: int, numbers: Sequence[str], *, actor: int) -> list[str]:
        """Put ``numbers`` on the chat's stoplist; returns those that were not on it yet.

        Audited (``stop``) in the same transaction.
        """
        self._has_any.forget(chat_id)
        async with self.db.write() as s:
            known = await _present(s, chat_id, numbers)
            new = [n for n in dict.fromkeys(numbers) if n not in known]
            now = utcnow()
            s.add_all(
                StopEntry(chat_id=chat_id, number=n, created_by=actor, created_at=now) for n in new
            )
            record(s, chat_id=chat_id, user_id=actor, action="stop", detail=_detail(new, numbers))
        self._has_any.forget(chat_id)
        return new

    async def remove(self, chat_id: int, numbers: Sequence[str], *, actor: int) -> list[str]:
        """Take ``numbers`` off the chat's stoplist; returns those that were on it.

        Audited (``unstop``) in the same transaction.
        """
        self._has_any.forget(chat_id)
        wanted = list(dict.fromkeys(numbers))
        async with self.db.write() as s:
            known = await _present(s, chat_id, wanted)
            gone = [n for n in wanted if n in known]
            for start in range(0, len(gone), CHUNK):
                await s.exec(
                    delete(StopEntry).where(
                        col(StopEntry.chat_id) == chat_id,
                        col(StopEntry.number).in_(gone[start : start + CHUNK]),
                    )
                )
            record(
                s, chat_id=chat_id, user_id=actor, action="unstop", detail=_detail(gone, wanted)
            )
        self._has_any.forget(chat_id)
        return gone

    async def numbers(self, chat_id: int, limit: int) -> tuple[int, list[StopEntry]]:
        """How many numbers the chat has stopped, and the first ``limit`` in number order."""
        async with self.db.read() as s:
            total = (
                await s.exec(
                    select(func.count()).select_from(StopEntry).where(StopEntry.chat_id == chat_id)
                )
            ).one()
            rows = await s.exec(
                select(StopEntry)
                .where(StopEntry.chat_id == chat_id)
                .order_by(col(StopEntry.number))
                .limit(limit)
            )
            return int(total), list(rows)

    async def stopped(self, chat_id: int, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` (E.164) are on the chat's stoplist."""
        wanted = list(dict.fromkeys(numbers))
        if not wanted:
            return set()
        known, has_any = self._has_any.lookup(chat_id)
        if known and not has_any:
            return set()
        generation = self._has_any.generation()
        async with self.db.read() as s:
            if not known:
                first = (
                    await s.exec(select(StopEntry.id).where(StopEntry.chat_id == chat_id).limit(1))
                ).first()
                self._has_any.put(chat_id, first is not None, generation)
                if first is None:
                    return set()
            return await _present(s, chat_id, wanted)


async def _present(s: AsyncSession, chat_id: int, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` the chat has stopped, read in chunks."""
    found: set[str] = set()
    wanted = list(numbers)
    for start in range(0, len(wanted), CHUNK):
        rows = await s.exec(
            select(StopEntry.number).where(
                col(StopEntry.chat_id) == chat_id,
                col(StopEntry.number).in_(wanted[start : start + CHUNK]),
            )
        )
        found.update(rows)
    return found


def _detail(changed: Sequence[str], asked: Sequence[str]) -> str:
    """``2 of 3: +62…, +62…`` (the first ten numbers changed)."""
    shown = ", ".join(changed[:10]) + (
        f" and {len(changed) - 10} more" if len(changed) > 10 else ""
    )
    return f"{len(changed)} of {len(set(asked))}" + (f": {shown}" if shown else "")
