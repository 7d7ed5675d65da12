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

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from storage.db import Database
from storage.models import InboxUpdate, utcnow
from storage.replicas import Gone


class Inbox:
    """Stores taken updates, lists the ones not yet handled, forgets handled ones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, updates: Sequence[tuple[int, str]]) -> list[int]:
        """Store ``(update_id, json)`` pairs in one transaction; the ids that were new.

        An id already stored is left as it is (Telegram delivered it again, perhaps to another
        replica): the first copy is being handled, or will be replayed, so the caller should
        not hand it on twice. One ``INSERT … ON CONFLICT DO NOTHING``, so two replicas storing
        the same update at once cannot both take it.
        """
        if not updates:
            return []
        fresh: dict[int, str] = {}
        for update_id, data in updates:
            fresh.setdefault(update_id, data)
        now = utcnow()
        insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        statement = (
            insert(InboxUpdate)
            .values(
                [
                    {
                        "update_id": update_id,
                        "data": data,
                        "received_at": now,
                        "replica": self.db.replica,
                    }
                    for update_id, data in fresh.items()
                ]
            )
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(col(InboxUpdate.update_id))
        )
        async with self.db.write() as s:
            stored = set((await s.exec(statement)).scalars())
        return [update_id for update_id in fresh if update_id in stored]

    async def done(self, update_id: int) -> None:
        """The update was handled: forget it (one DELETE)."""
        async with self.db.write() as s:
            await s.exec(delete(InboxUpdate).where(col(InboxUpdate.update_id) == update_id))

    async def adopt(self, gone: Gone, *, mine_too: bool = False) -> list[InboxUpdate]:
        """Take over the updates ``gone`` replicas left unhandled, in Telegram's order.

        One UPDATE: two replicas adopting at once split the rows, never replay one twice.
        ``mine_too`` (at start) also returns rows this replica stored itself.
        """
        where = gone.where(InboxUpdate.replica)
        if mine_too:
            where = or_(where, col(InboxUpdate.replica) == gone.me)
        elif gone.empty:
            return []
        async with self.db.write() as s:
            result = await s.exec(
                update(InboxUpdate)
                .where(where)
                .values(replica=gone.me)
                .returning(col(InboxUpdate.update_id), col(InboxUpdate.data))
                .execution_options(synchronize_session=False)
            )
            rows = sorted(result.all())
        return [InboxUpdate(update_id=i, data=d, replica=gone.me) for i, d in rows]

    async def pending(self) -> list[InboxUpdate]:
        """Every update not yet handled, in Telegram's order (``update_id``)."""
        async with self.db.read() as s:
            rows = await s.exec(select(InboxUpdate).order_by(col(InboxUpdate.update_id)))
            return list(rows)
