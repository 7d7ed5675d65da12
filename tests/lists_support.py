"""Helpers of the list and template tests: uploading a file as the reply to /list add."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from storage.models import ListEntry, Message, RecipientList
from tests.conftest import GROUP, USER, Bot
from tests.fakes.telegram import document_message


def document(
    bot: Bot,
    content: bytes,
    *,
    file_name: str = "numbers.csv",
    mime_type: str = "text/csv",
    size: int | None = None,
    chat_id: int | None = None,
) -> dict[str, Any]:
    """A document message whose bytes the fake Telegram serves."""
    file_id = bot.tg.add_file(content, file_name=file_name, mime_type=mime_type)
    return document_message(
        file_id=file_id,
        file_name=file_name,
        mime_type=mime_type,
        file_size=len(content) if size is None else size,
        chat_id=chat_id,
    )


async def upload(
    bot: Bot,
    name: str,
    content: bytes,
    *,
    group: bool = False,
    user_id: int = USER,
    **kwargs: Any,
) -> str:
    """``/list add <name>`` as a reply to a file holding ``content``; the bot's last reply."""
    if group:
        doc = document(bot, content, chat_id=GROUP, **kwargs)
        return await bot.group(f"/list add {name}", reply_to=doc, user_id=user_id)
    doc = document(bot, content, **kwargs)
    return await bot.private(f"/list add {name}", reply_to=doc, user_id=user_id)


async def list_rows(bot: Bot) -> list[RecipientList]:
    """Every list row (ready or not), by id."""
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(RecipientList).order_by(col(RecipientList.id))))


async def entries(bot: Bot, name: str) -> list[ListEntry]:
    """The entries of the list in use called ``name``."""
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(ListEntry)
            .join(RecipientList)
            .where(col(RecipientList.name) == name, col(RecipientList.ready))
            .order_by(col(ListEntry.id))
        )
        return list(rows)


async def messages(bot: Bot) -> list[Message]:
    """Every stored message, by id."""
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))
