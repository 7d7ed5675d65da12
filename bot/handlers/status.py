"""/status, /history and /export: what happened to the chat's messages.

/history and /export take the same filters (:mod:`bot.services.filters`); the export is
written to a temporary file page by page (:mod:`bot.services.export`) and uploaded from it.
"""

from __future__ import annotations

from html import escape

from telegram import InputFile, Update
from telegram.constants import ParseMode

from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body, take_token
from bot.render import message_list, status_details
from bot.services.errors import BadInput
from bot.services.integers import parse_id, read_whole
from i18n import N_, _, ngettext
from storage.models import Role

LATEST = 10
HISTORY_DEFAULT = 20
HISTORY_MAX = 100
FILTERS = "[route=..] [state=..] [to=..] [since=YYYY-MM-DD]"
FILTERS_USAGE = escape(FILTERS)


async def status(update: Update, context: BotContext) -> None:
    """/status [<id>]: one message with its history (asking the provider), or the latest."""
    chat = await chat_of(update, context)
    arg, _rest = take_token(command_body(message_of(update).text or ""))
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


def history_args(body: str) -> tuple[int, list[str]]:
    """``[<n>] [key=value …]``: how many messages, and the filter tokens."""
    tokens = body.split()
    if tokens and "=" not in tokens[0]:
        count = read_whole(tokens[0])
        if count is None or not 1 <= count <= HISTORY_MAX:
            raise BadInput(
                _(
                    "/history takes a number from 1 to {maximum}, then filters: "
                    "/history [&lt;n&gt;] {filters}"
                ).format(maximum=HISTORY_MAX, filters=FILTERS_USAGE)
            )
        return count, tokens[1:]
    return HISTORY_DEFAULT, tokens


async def history(update: Update, context: BotContext) -> None:
    """/history [<n>] [route=..] [state=..] [to=..] [since=YYYY-MM-DD]: recent messages."""
    chat = await chat_of(update, context)
    count, tokens = history_args(command_body(message_of(update).text or ""))
    reports = context.services.reports
    filters = reports.filters(chat, tokens)
    messages = await reports.history(chat, filters, count)
    await reply(update, message_list(messages, chat.timezone, matching=filters.described))


async def export(update: Update, context: BotContext) -> None:
    """/export [route=..] [state=..] [to=..] [since=YYYY-MM-DD]: the messages as a CSV file.

    Written page by page into a temporary file by the service, then uploaded.
    """
    chat = await chat_of(update, context)
    reports = context.services.reports
    filters = reports.filters(chat, command_body(message_of(update).text or "").split())
    exported = await reports.export(chat, filters)
    try:
        if filters.described:
            caption = ngettext(
                "{count:,} message matching {filters}",
                "{count:,} messages matching {filters}",
                exported.rows,
            ).format(count=exported.rows, filters=filters.described)
        else:
            caption = ngettext("{count:,} message", "{count:,} messages", exported.rows).format(
                count=exported.rows
            )
        # Streamed from the file by the HTTP layer, not read into memory first.
        document = InputFile(
            exported.file, filename=f"chatops-history-{chat.id}.csv", read_file_handle=False
        )
        await message_of(update).reply_document(
            document=document,
            caption=caption,
            parse_mode=ParseMode.HTML,
            do_quote=False,
        )
    finally:
        exported.close()


COMMANDS = (
    Command(
        "status",
        "[<id>]",
        N_("a message's status history, or the latest messages"),
        Role.VIEWER,
        status,
    ),
    Command(
        "history",
        f"[<n>] {FILTERS}",
        N_("recent messages of this chat, filtered"),
        Role.VIEWER,
        history,
    ),
    Command(
        "export",
        FILTERS,
        N_("this chat's messages as a CSV document (streamed)"),
        Role.VIEWER,
        export,
    ),
)
