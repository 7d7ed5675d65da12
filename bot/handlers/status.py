"""/status, /history and /export: what happened to the chat's messages."""

from __future__ import annotations

import csv
import io

from telegram import Update

from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body, take_token
from bot.render import message_list, status_details
from bot.services.errors import BadInput
from bot.services.integers import parse_id, read_whole
from storage.models import Role

LATEST = 10
HISTORY_DEFAULT = 20
HISTORY_MAX = 100
EXPORT_MAX = 100_000


async def status(update: Update, context: BotContext) -> None:
    """/status [<id>]: one message with its history (asking the provider), or the latest."""
    chat = await chat_of(update, context)
    arg, _ = take_token(command_body(message_of(update).text or ""))
    if not arg:
        await reply(
            update,
            message_list(await context.services.status.latest(chat.id, LATEST), chat.timezone),
        )
        return
    found = await context.services.status.message_status(chat.id, parse_id(arg), poll=True)
    text = status_details(found.message, found.history, chat.timezone)
    if found.note:
        text += f"\n\n⚠️ {found.note}"
    await reply(update, text)


async def history(update: Update, context: BotContext) -> None:
    """/history [<n>]: the chat's recent messages."""
    chat = await chat_of(update, context)
    arg, _ = take_token(command_body(message_of(update).text or ""))
    count = read_whole(arg) if arg else HISTORY_DEFAULT
    if count is None or not 1 <= count <= HISTORY_MAX:
        raise BadInput(f"/history takes a number from 1 to {HISTORY_MAX}.")
    messages = await context.services.status.latest(chat.id, count)
    await reply(update, message_list(messages, chat.timezone))


async def export(update: Update, context: BotContext) -> None:
    """/export: the chat's message history as a CSV document."""
    chat = await chat_of(update, context)
    messages = await context.services.status.latest(chat.id, EXPORT_MAX)
    if not messages:
        raise BadInput("There is nothing to export yet: this chat has sent no messages.")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "id",
            "created_at_utc",
            "route",
            "recipient",
            "state",
            "provider_ref",
            "provider_status",
            "detail",
            "text",
        ]
    )
    for m in reversed(messages):
        writer.writerow(
            [
                m.id,
                m.created_at.isoformat(),
                f"{m.provider}:{m.channel}",
                m.recipient,
                m.state,
                m.provider_ref or "",
                m.provider_status,
                m.detail,
                m.text,
            ]
        )
    data = buffer.getvalue().encode("utf-8-sig")  # BOM: spreadsheets then read UTF-8 right
    await message_of(update).reply_document(
        document=data,
        filename=f"chatops-history-{chat.id}.csv",
        caption=f"{len(messages)} messages",
        do_quote=False,
    )


COMMANDS = (
    Command(
        "status",
        "[<id>]",
        "a message's status history, or the latest messages",
        Role.VIEWER,
        status,
    ),
    Command("history", "[<n>]", "recent messages of this chat", Role.VIEWER, history),
    Command("export", "", "this chat's message history as CSV", Role.VIEWER, export),
)
