"""Finding messages across the chats one user belongs to (inline mode).

Everything else reads one chat's messages; inline mode searches several at once: the user's
private chat and the groups the user is known in. A user is *known* in a group when the bot
holds a trace of them there: a role (/role), a send, a schedule, a stored credential, a
confirmation or an audit entry. Whether they are still a member is Telegram's to say; the
caller checks that before showing anything.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select

from storage.db import Database
from storage.models import (
    AuditEntry,
    Batch,
    Chat,
    Confirmation,
    Credential,
    Member,
    Message,
    Schedule,
    StatusEvent,
    may_be_row_id,
)

PRIVATE = "private"


class MessageLookup:
    """The queries of inline mode: a user's chats, their matching messages and histories."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def chats_of_user(self, user_id: int) -> list[Chat]:
        """The user's private chat with the bot (if any) and the groups they are known in."""
        traces = (
            select(Member.chat_id).where(Member.user_id == user_id),
            select(Batch.chat_id).where(Batch.created_by == user_id),
            select(Schedule.chat_id).where(Schedule.created_by == user_id),
            select(Credential.chat_id).where(Credential.created_by == user_id),
            select(Confirmation.chat_id).where(Confirmation.requested_by == user_id),
            select(AuditEntry.chat_id).where(AuditEntry.user_id == user_id),
        )
        known_group = and_(
            col(Chat.kind) != PRIVATE, or_(*(col(Chat.id).in_(trace) for trace in traces))
        )
        own_private = and_(col(Chat.id) == user_id, col(Chat.kind) == PRIVATE)
        async with self.db.read() as s:
            rows = await s.exec(
                select(Chat).where(or_(own_private, known_group)).order_by(col(Chat.id))
            )
            return list(rows)

    async def find(
        self,
        chat_ids: Collection[int],
        *,
        message_id: int | None = None,
        recipients: Mapping[str, Collection[int]] | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> list[Message]:
        """Messages of ``chat_ids``, newest first, that match, or every one when no filter.

        Args:
            chat_ids: the chats searched (nothing outside them is ever returned).
            message_id: a message id to match.
            recipients: a stored recipient form → the chats in which the query reads as it
                (a national number reads differently in chats of different countries).
            offset: how many matches to skip (paging).
            limit: at most this many.

        """
        if not chat_ids:
            return []
        matches: list[ColumnElement[bool]] = []
        if message_id is not None and may_be_row_id(message_id):
            matches.append(col(Message.id) == message_id)
        for recipient, chats in (recipients or {}).items():
            inside = [c for c in chats if c in chat_ids]
            if inside:
                matches.append(
                    and_(col(Message.recipient) == recipient, col(Message.chat_id).in_(inside))
                )
        filtered = message_id is not None or recipients is not None
        if filtered and not matches:
            return []
        query = select(Message).where(col(Message.chat_id).in_(list(chat_ids)))
        if matches:
            query = query.where(or_(*matches))
        query = query.order_by(col(Message.id).desc()).offset(offset).limit(limit)
        async with self.db.read() as s:
            return list(await s.exec(query))

    async def histories(self, message_ids: Sequence[int]) -> dict[int, list[StatusEvent]]:
        """The status history of each message, oldest first (one query for them all)."""
        found: dict[int, list[StatusEvent]] = {m: [] for m in message_ids}
        if not message_ids:
            return found
        async with self.db.read() as s:
            rows = await s.exec(
                select(StatusEvent)
                .where(col(StatusEvent.message_id).in_(list(message_ids)))
                .order_by(col(StatusEvent.id))
            )
            for event in rows:
                found[event.message_id].append(event)
        return found
