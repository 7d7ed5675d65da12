"""Sends held for an admin's approval: stored, then decided once.

An approval moves ``waiting → approved → done`` or ends ``rejected``, ``withdrawn`` or
``expired``. Each move is one conditional ``UPDATE … WHERE state = …`` with its audit row in
the same transaction: a double press, or two admins pressing at once, moves it once, and only
the press that moved it makes the send. ``approved`` is the owed send itself (its payload
holds all of it): whoever made the move makes the send and marks the row ``done`` once the
send is stored; a crash in between leaves it ``approved``, and the next start makes it (the
send's origin is unique, so it is never stored twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.audit import record
from storage.db import Database
from storage.models import Approval, ApprovalState, AuditOutcome, may_be_row_id, utcnow
from storage.replicas import Gone

# The audit action of each decision.
ACTIONS = {
    ApprovalState.APPROVED: "approve",
    ApprovalState.REJECTED: "reject",
    ApprovalState.WITHDRAWN: "withdraw",
}


class ApprovalStore:
    """Every query on the ``approval`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, row: Approval) -> Approval:
        """Store a waiting approval; a replay of its command gets the row stored first."""
        try:
            async with self.db.write() as s:
                s.add(row)
                await s.flush()
                return row
        except IntegrityError:
            found = await self.by_origin(row.origin)
            if found is None:
                raise
            return found

    async def get(self, approval_id: int) -> Approval | None:
        """One approval by id."""
        if not may_be_row_id(approval_id):
            return None
        async with self.db.read() as s:
            return await s.get(Approval, approval_id)

    async def by_origin(self, origin: str) -> Approval | None:
        """The approval a command asked for."""
        async with self.db.read() as s:
            found = await s.exec(select(Approval).where(col(Approval.origin) == origin))
            return found.first()

    async def waiting(self, chat_id: int) -> list[Approval]:
        """The chat's approvals that wait for a decision, oldest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Approval)
                .where(
                    col(Approval.chat_id) == chat_id,
                    col(Approval.state) == ApprovalState.WAITING.value,
                )
                .order_by(col(Approval.id))
            )
            return list(rows)

    async def decide(
        self,
        approval_id: int,
        state: ApprovalState,
        *,
        by: int,
        by_name: str,
        now: datetime,
        detail: str = "",
    ) -> bool:
        """Move a waiting, unexpired approval to ``state``; whether this call moved it.

        The audit row (``approve``, ``reject``, ``withdraw``) commits with the move, and only
        when the move happened.
        """
        async with self.db.write() as s:
            result = await s.exec(
                update(Approval)
                .where(
                    col(Approval.id) == approval_id,
                    col(Approval.state) == ApprovalState.WAITING.value,
                    col(Approval.expires_at) > now,
                )
                .values(
                    state=state.value,
                    decided_by=by,
                    decided_by_name=by_name,
                    decided_at=now,
                    replica=self.db.replica,
                )
            )
            if result.rowcount != 1:
                return False
            row = await s.get(Approval, approval_id)
            assert row is not None
            record(
                s,
                chat_id=row.chat_id,
                user_id=by,
                action=ACTIONS[state],
                detail=f"approval #{approval_id}: {row.kind}" + (f"; {detail}" if detail else ""),
                outcome=AuditOutcome.OK,
                at=now,
            )
            return True

    async def finish(self, approval_id: int) -> bool:
        """An approved send is stored: ``approved → done``; whether this call moved it."""
        async with self.db.write() as s:
            result = await s.exec(
                update(Approval)
                .where(
                    col(Approval.id) == approval_id,
                    col(Approval.state) == ApprovalState.APPROVED.value,
                )
                .values(state=ApprovalState.DONE.value)
            )
            return result.rowcount == 1

    async def expire(self, now: datetime) -> list[Approval]:
        """Move every waiting approval past its time to ``expired``; the rows this moved.

        Each row moves by its own conditional UPDATE, so a press that lands meanwhile wins
        or loses cleanly.
        """
        async with self.db.read() as s:
            due = await s.exec(
                select(Approval).where(
                    col(Approval.state) == ApprovalState.WAITING.value,
                    col(Approval.expires_at) <= now,
                )
            )
            candidates = list(due)
        moved: list[Approval] = []
        for row in candidates:
            async with self.db.write() as s:
                result = await s.exec(
                    update(Approval)
                    .where(
                        col(Approval.id) == row.id,
                        col(Approval.state) == ApprovalState.WAITING.value,
                    )
                    .values(state=ApprovalState.EXPIRED.value, decided_at=now)
                )
            if result.rowcount == 1:
                row.state = ApprovalState.EXPIRED.value
                moved.append(row)
        return moved

    async def approved(self, gone: Gone | None = None) -> Sequence[Approval]:
        """Approvals decided but whose send is not stored yet (a stop came in between).

        With several replicas (``gone``), only those approved on replicas seen dead: a live
        replica's approved send is being made by its press.
        """
        query = select(Approval).where(col(Approval.state) == ApprovalState.APPROVED.value)
        if gone is not None:
            query = query.where(gone.where(Approval.replica))
        async with self.db.read() as s:
            return list(await s.exec(query.order_by(col(Approval.id))))

    async def set_card(self, approval_id: int, message_id: int) -> None:
        """Remember the chat message that shows the approval (edited when it ends)."""
        async with self.db.write() as s:
            await s.exec(
                update(Approval)
                .where(col(Approval.id) == approval_id)
                .values(card_message_id=message_id)
            )


def expired(row: Approval, now: datetime | None = None) -> bool:
    """Whether a waiting approval is past its time (the sweep may not have moved it yet)."""
    return row.expires_at <= (now or utcnow())
