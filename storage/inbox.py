"""The inbox: Telegram updates the bot has taken but not yet fully handled.

Telegram forgets an update once the bot confirms it (the next ``getUpdates`` with a higher
offset, or a webhook's 200 answer). The bot stores each update here **before** confirming it
and deletes it once its handlers are done, so a process killed in between finds it at the
next start and handles it then (``bot/inbox.py``). Handling twice is safe where it matters:
sends are idempotent by their origin (the chat and message id).

Rows hold the update as JSON (a user's message text included) only until it is handled.
Nothing here knows Telegram's types: updates come and go as ``(update_id, json)`` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlmodel import col, select

from storage.db import Database
from storage.models import InboxUpdate, utcnow


class Inbox:
    """Stores taken updates, lists the ones not yet handled, forgets handled ones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, updates: Sequence[tuple[int, str]]) -> list[int]:
        """Store ``(update_id, json)`` pairs in one transaction; the ids that were new.

        An id already stored is left as it is (Telegram delivered it again): the first copy
        is being handled, or will be replayed, so the caller should not hand it on twice.
        """
        if not updates:
            return []
        ids = [update_id for update_id, _ in updates]
        now = utcnow()
        async with self.db.write() as s:
            # Writers of this process take turns (one process per database), so nothing can
            # insert between this read and the insert below.
            known = set(
                await s.exec(
                    select(InboxUpdate.update_id).where(col(InboxUpdate.update_id).in_(ids))
                )
            )
            fresh: dict[int, str] = {}
            for update_id, data in updates:
                if update_id not in known:
                    fresh.setdefault(update_id, data)
            s.add_all(
                InboxUpdate(update_id=update_id, data=data, received_at=now)
                for update_id, data in fresh.items()
            )
        return list(fresh)

    async def done(self, update_id: int) -> None:
        """The update was handled: forget it (one DELETE)."""
        async with self.db.write() as s:
            await s.exec(delete(InboxUpdate).where(col(InboxUpdate.update_id) == update_id))

    async def pending(self) -> list[InboxUpdate]:
        """Every update not yet handled, in Telegram's order (``update_id``)."""
        async with self.db.read() as s:
            rows = await s.exec(select(InboxUpdate).order_by(col(InboxUpdate.update_id)))
            return list(rows)
