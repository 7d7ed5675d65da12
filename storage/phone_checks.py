"""Queries for WhatsApp number checks: one row per request, results merged as they arrive.

Results come back on one shared callback URL without saying which request they answer, so
they are matched by number to the open checks (newest first) that asked for it. A merge reads,
combines and writes back a JSON document in one write transaction (writers take turns, see
:class:`storage.db.Database`; the rows are locked on PostgreSQL): two callbacks arriving
together cannot overwrite each other's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select

from storage.db import Database
from storage.models import PhoneCheck, utcnow

# Providers call back within minutes; an answer much later than this is not matched any more.
OPEN_FOR = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class MergedResults:
    """What one callback added to one check: the new answers and how far the check is."""

    check: PhoneCheck
    answered: dict[str, Any]


class PhoneCheckStore:
    """Storage of number checks."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, chat_id: int, numbers: Sequence[str], *, actor: int) -> PhoneCheck:
        """Record a check before it is submitted, so an early callback finds it."""
        async with self.db.write() as s:
            check = PhoneCheck(chat_id=chat_id, numbers=list(numbers), requested_by=actor)
            s.add(check)
            return check

    async def remove(self, check_id: int) -> None:
        """Forget a check whose submission failed."""
        async with self.db.write() as s:
            await s.exec(delete(PhoneCheck).where(col(PhoneCheck.id) == check_id))

    async def get(self, check_id: int) -> PhoneCheck | None:
        """One check by id."""
        async with self.db.read() as s:
            return await s.get(PhoneCheck, check_id)

    async def merge(
        self, answers: Mapping[str, dict[str, Any]], *, now: datetime | None = None
    ) -> list[MergedResults]:
        """Add answers (number → result) to every open check that asked for those numbers."""
        moment = now or utcnow()
        merged: list[MergedResults] = []
        async with self.db.write() as s:
            rows = await s.exec(
                select(PhoneCheck)
                .where(
                    col(PhoneCheck.completed_at).is_(None),
                    col(PhoneCheck.created_at) >= moment - OPEN_FOR,
                )
                .order_by(col(PhoneCheck.id).desc())
                .with_for_update()
            )
            for check in rows:
                fresh = {n: answers[n] for n in check.numbers if n in answers}
                if not fresh:
                    continue
                # A new dict, not an in-place update: JSON columns only notice reassignment.
                check.results = {**check.results, **fresh}
                if all(n in check.results for n in check.numbers):
                    check.completed_at = moment
                s.add(check)
                merged.append(MergedResults(check, fresh))
        return merged
