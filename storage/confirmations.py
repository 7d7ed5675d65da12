"""Actions that wait for a button press: stored, then decided once.

A confirmation is written when the chat is asked ("Send this multicast?") and decided by one
conditional ``UPDATE … WHERE state = 'waiting'``: a double press, or two presses racing on two
connections, moves it once, and only the press that moved it runs the action.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import col

from storage.db import Database
from storage.models import Confirmation, ConfirmationState, may_be_row_id, utcnow


class Pressed(StrEnum):
    """What a Send press found (:meth:`Confirmations.press`)."""

    TAKEN = "taken"  # this press confirmed it: run the action now
    EARLIER = "earlier"  # an earlier press confirmed it (run, unless a stop cut it off)
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Confirmations:
    """The store of actions waiting for their requester's press."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ask(
        self, chat_id: int, requested_by: int, kind: str, payload: str, *, ttl: timedelta
    ) -> Confirmation:
        """Store an action waiting for a press for ``ttl``; returns it with its id."""
        now = utcnow()
        row = Confirmation(
            chat_id=chat_id,
            requested_by=requested_by,
            kind=kind,
            payload=payload,
            created_at=now,
            expires_at=now + ttl,
        )
        async with self.db.write() as s:
            s.add(row)
            await s.flush()
            return row

    async def get(self, confirmation_id: int) -> Confirmation | None:
        """One confirmation by id."""
        if not may_be_row_id(confirmation_id):
            return None
        async with self.db.read() as s:
            return await s.get(Confirmation, confirmation_id)

    async def decide(
        self, confirmation_id: int, *, confirm: bool, by: int, now: datetime | None = None
    ) -> bool:
        """Move a waiting, unexpired confirmation to confirmed or cancelled; whether this did.

        Cancelling works after expiry too (it only tidies the card); confirming does not.
        """
        moment = now or utcnow()
        conditions = [
            col(Confirmation.id) == confirmation_id,
            col(Confirmation.state) == ConfirmationState.WAITING.value,
        ]
        if confirm:
            conditions.append(col(Confirmation.expires_at) > moment)
        state = ConfirmationState.CONFIRMED if confirm else ConfirmationState.CANCELLED
        async with self.db.write() as s:
            result = await s.exec(
                update(Confirmation)
                .where(*conditions)
                .values(state=state.value, decided_by=by, decided_at=moment)
            )
            return result.rowcount == 1

    async def press(
        self, confirmation_id: int, *, by: int, now: datetime | None = None
    ) -> Pressed:
        """A Send press: confirm the action if it still waits, else say why it did not.

        Shared by every confirmed action (/multicast, large /send and /schedule): only the
        press that gets :attr:`Pressed.TAKEN` runs it; :attr:`Pressed.EARLIER` lets the caller
        check whether the earlier press's run got as far as storing its send.
        """
        if await self.decide(confirmation_id, confirm=True, by=by, now=now):
            return Pressed.TAKEN
        row = await self.get(confirmation_id)
        state = ConfirmationState(row.state) if row is not None else None
        if state == ConfirmationState.CONFIRMED:
            return Pressed.EARLIER
        if state == ConfirmationState.WAITING:
            return Pressed.EXPIRED
        return Pressed.CANCELLED
