"""Reading a chat's messages in bulk: filtered lists, export pages, statistics rows.

Large reads go in keyset pages (``id > last ORDER BY id LIMIT n``), each in a short session of
its own: memory stays bounded by one page whatever the chat holds, no session stays open
while the caller writes a file or renders a chart, and the same statements run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from providers.base import DeliveryState
from storage.db import Database
from storage.models import Message, StatusEvent

PAGE = 2000
# What an export row holds, by name, in the CSV's order.
EXPORT_COLUMNS = (
    col(Message.id),
    col(Message.created_at),
    col(Message.provider),
    col(Message.channel),
    col(Message.recipient),
    col(Message.state),
    col(Message.provider_ref),
    col(Message.provider_status),
    col(Message.detail),
    col(Message.text),
)


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which of a chat's messages a list or an export takes (every part optional).

    ``provider`` alone takes all its channels; ``recipient`` is compared as stored (phone
    numbers as E.164 digits); ``since`` is an aware UTC time.
    """

    provider: str | None = None
    channel: str | None = None
    state: str | None = None
    recipient: str | None = None
    since: datetime | None = None

    def conditions(self, chat_id: int) -> list[ColumnElement[bool]]:
        """The WHERE conditions of this filter for one chat."""
        where: list[ColumnElement[bool]] = [col(Message.chat_id) == chat_id]
        if self.provider is not None:
            where.append(col(Message.provider) == self.provider)
        if self.channel is not None:
            where.append(col(Message.channel) == self.channel)
        if self.state is not None:
            where.append(col(Message.state) == self.state)
        if self.recipient is not None:
            where.append(col(Message.recipient) == self.recipient)
        if self.since is not None:
            where.append(col(Message.created_at) >= self.since)
        return where


@dataclass(frozen=True, slots=True)
class StatsRow:
    """What statistics need of one message: when, which route, its state, when delivered."""

    created_at: datetime
    send_at: datetime | None
    provider: str
    channel: str
    state: str
    delivered_at: datetime | None


class History:
    """Bulk reads of ``message`` (and its ``delivered`` history rows)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def latest(self, chat_id: int, where: MessageFilter, limit: int) -> list[Message]:
        """The chat's newest ``limit`` messages that pass the filter, newest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(*where.conditions(chat_id))
                .order_by(col(Message.id).desc())
                .limit(limit)
            )
            return list(rows)

    async def export_pages(
        self, chat_id: int, where: MessageFilter, *, page: int = PAGE
    ) -> AsyncIterator[list[Any]]:
        """The filtered messages, oldest first, a page at a time (each read in its own session).

        Rows hold :data:`EXPORT_COLUMNS` by name: plain tuples, not ORM objects, which take
        several times the memory and time (an export reads every row once and changes none).
        """
        last = 0
        while True:
            async with self.db.read() as s:
                connection = await s.connection()
                result = await connection.execute(
                    sa_select(*EXPORT_COLUMNS)
                    .where(*where.conditions(chat_id), col(Message.id) > last)
                    .order_by(col(Message.id))
                    .limit(page)
                )
                rows: list[Any] = list(result.all())  # Rows: tuples with names
            if not rows:
                return
            yield rows
            if len(rows) < page:
                return
            last = rows[-1].id

    async def stats_pages(
        self, chat_id: int, since: datetime, *, page: int = PAGE
    ) -> AsyncIterator[list[StatsRow]]:
        """The chat's messages made since ``since``, in pages, each with its delivery time.

        A state only moves forward, so a message has at most one ``delivered`` history row.
        """
        delivered = and_(
            col(StatusEvent.message_id) == col(Message.id),
            col(StatusEvent.state) == DeliveryState.DELIVERED.value,
        )
        last = 0
        while True:
            async with self.db.read() as s:
                raw = list(
                    await s.exec(
                        select(Message, col(StatusEvent.at))
                        .outerjoin(StatusEvent, delivered)
                        .where(
                            col(Message.chat_id) == chat_id,
                            col(Message.created_at) >= since,
                            col(Message.id) > last,
                        )
                        .order_by(col(Message.id))
                        .limit(page)
                    )
                )
            if not raw:
                return
            yield [
                StatsRow(m.created_at, m.send_at, m.provider, m.channel, m.state, at)
                for m, at in raw
            ]
            if len(raw) < page:
                return
            last = raw[-1][0].id or 0
