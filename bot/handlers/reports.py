"""/stats and /audit: a chat's figures as a chart, and who did what."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.constants import ParseMode

from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body, take_token
from bot.render_audit import audit_text
from bot.render_stats import chart_png, nothing_to_chart, summary
from bot.services.errors import BadInput
from bot.services.integers import read_whole
from bot.services.reports import AUDIT_MAX
from bot.services.stats import MAX_DAYS
from i18n import N_, _
from storage.models import Role


def optional_count(body: str, refusal: str, maximum: int) -> int | None:
    """The one optional whole number after a command, or ``BadInput`` naming the range.

    ``refusal`` is the translated sentence naming the range, with a ``{maximum}`` placeholder.
    """
    arg, rest = take_token(body)
    if not arg:
        return None
    value = read_whole(arg)
    if value is None or rest or not 1 <= value <= maximum:
        raise BadInput(refusal.format(maximum=maximum))
    return value


async def stats(update: Update, context: BotContext) -> None:
    """/stats [<days>]: a PNG chart of messages per day and a short summary."""
    chat = await chat_of(update, context)
    days = optional_count(
        command_body(message_of(update).text or ""),
        _("/stats takes a number of days from 1 to {maximum}."),
        MAX_DAYS,
    )
    figures = await context.services.reports.stats(chat, days)
    if not figures.sent:
        await reply(update, nothing_to_chart(len(figures.days)))
        return
    png = await asyncio.to_thread(chart_png, figures)  # CPU-bound: off the event loop
    await message_of(update).reply_photo(
        photo=png, caption=summary(figures), parse_mode=ParseMode.HTML, do_quote=False
    )


async def audit(update: Update, context: BotContext) -> None:
    """/audit [<n>]: the chat's latest audit entries (admins)."""
    chat = await chat_of(update, context)
    count = optional_count(
        command_body(message_of(update).text or ""),
        _("/audit takes a number of entries from 1 to {maximum}."),
        AUDIT_MAX,
    )
    page = await context.services.reports.audit(chat.id, count)
    await reply(update, audit_text(page, chat.timezone))


COMMANDS = (
    Command(
        "stats",
        "[<days>]",
        N_("chart of messages per day by state and route, delivery rate"),
        Role.VIEWER,
        stats,
    ),
    Command("audit", "[<n>]", N_("who did what and when in this chat"), Role.ADMIN, audit),
)
