"""Seeding a chat with messages directly in the database (history, export and stats tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from storage.models import Batch, Chat, Message, StatusEvent
from tests.conftest import USER, Bot

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Row:
    """One message to seed; ``delivered_after`` adds its ``delivered`` history row."""

    at: datetime
    state: str = "accepted"
    route: str = "nusasms:wa"
    recipient: str = "6281234567890"
    text: str = "Hello"
    detail: str = ""
    delivered_after: timedelta | None = None


async def seed(bot: Bot, rows: list[Row], *, chat_id: int = USER) -> None:
    """Store ``rows`` as messages of one send in ``chat_id`` (registered if new)."""
    db = bot.services.repo.db
    async with db.write() as s:
        if await s.get(Chat, chat_id) is None:
            s.add(Chat(id=chat_id, kind="private", title="seeded"))
        batch = Batch(
            chat_id=chat_id,
            route=rows[0].route,
            text="seeded",
            origin=f"seed:{chat_id}:{rows[0].at.timestamp()}:{len(rows)}",
            created_by=USER,
            created_at=rows[0].at,
        )
        s.add(batch)
        await s.flush()
        batch_id = batch.id
    assert batch_id is not None
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        values: list[dict[str, Any]] = []
        for index, row in enumerate(chunk, start):
            provider, _, channel = row.route.partition(":")
            values.append(
                {
                    "batch_id": batch_id,
                    "chat_id": chat_id,
                    "provider": provider,
                    "channel": channel,
                    "recipient": row.recipient,
                    "text": row.text,
                    "media_name": None,
                    "idempotency_key": f"seed:{batch_id}:{index}",
                    "state": row.state,
                    "provider_ref": f"ref-{index}",
                    "provider_status": "",
                    "detail": row.detail,
                    "created_at": row.at,
                    "updated_at": row.at,
                    "next_poll_at": None,
                    "poll_attempts": 0,
                    "send_at": None,
                }
            )
        async with db.write() as s:
            await s.exec(insert(Message), params=values)  # type: ignore[call-overload]
    delivered = [r for r in rows if r.delivered_after is not None]
    if not delivered:
        return
    async with db.read() as s:
        from sqlmodel import col, select

        ids = list(
            await s.exec(
                select(Message.id).where(Message.batch_id == batch_id).order_by(col(Message.id))
            )
        )
    events = [
        {
            "message_id": message_id,
            "state": "delivered",
            "provider_status": "",
            "detail": "",
            "source": "poll",
            "at": row.at + row.delivered_after,
        }
        for message_id, row in zip(ids, rows, strict=True)
        if row.delivered_after is not None
    ]
    async with db.write() as s:
        await s.exec(insert(StatusEvent), params=events)  # type: ignore[call-overload]
