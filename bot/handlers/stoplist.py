"""/stop, /unstop and /stoplist: numbers this chat never sends to."""

from __future__ import annotations

from html import escape

from telegram import Update

from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body
from bot.services.stoplist import StopChange, StopListing, numbers_text
from storage.models import Role

USAGE = "&lt;number&gt;[,&lt;number&gt;…]"


def stop_text(change: StopChange) -> str:
    """What /stop did."""
    lines = []
    if change.changed:
        lines.append(
            f"🚫 Stopped {len(change.changed)} number(s): {numbers_text(change.changed)}. "
            "Sends and schedules from this chat skip them."
        )
    if change.unchanged:
        lines.append(
            f"Already on the stoplist: {len(change.unchanged)} ({numbers_text(change.unchanged)})."
        )
    return "\n".join(lines)


def unstop_text(change: StopChange) -> str:
    """What /unstop did."""
    lines = []
    if change.changed:
        lines.append(
            f"✅ Removed {len(change.changed)} number(s) from the stoplist: "
            f"{numbers_text(change.changed)}."
        )
    if change.unchanged:
        lines.append(
            f"Not on the stoplist: {len(change.unchanged)} ({numbers_text(change.unchanged)})."
        )
    return "\n".join(lines)


def listing_text(listing: StopListing) -> str:
    """/stoplist: the count and the first numbers."""
    if not listing.total:
        return f"This chat's stoplist is empty. /stop {USAGE} adds numbers."
    lines = [f"<b>Stoplist</b>: {listing.total:,} number(s)"]
    lines.extend(f"• <code>{escape(e.number)}</code>" for e in listing.entries)
    if listing.total > len(listing.entries):
        lines.append(f"…and {listing.total - len(listing.entries):,} more.")
    lines.append(f"/unstop {USAGE} removes numbers.")
    return "\n".join(lines)


async def stop(update: Update, context: BotContext) -> None:
    """/stop <number>[,<number>…]."""
    chat = await chat_of(update, context)
    user = update.effective_user
    assert user is not None
    change = await context.services.stoplists.stop(
        chat.id, chat.country, command_body(message_of(update).text or ""), actor=user.id
    )
    await reply(update, stop_text(change))


async def unstop(update: Update, context: BotContext) -> None:
    """/unstop <number>[,<number>…]."""
    chat = await chat_of(update, context)
    user = update.effective_user
    assert user is not None
    change = await context.services.stoplists.unstop(
        chat.id, chat.country, command_body(message_of(update).text or ""), actor=user.id
    )
    await reply(update, unstop_text(change))


async def stoplist(update: Update, context: BotContext) -> None:
    """/stoplist: the chat's stopped numbers."""
    chat = await chat_of(update, context)
    await reply(update, listing_text(await context.services.stoplists.listing(chat.id)))


COMMANDS = (
    Command(
        "stop",
        "<number>[,<number>…]",
        "put numbers on this chat's stoplist: sends to them are refused",
        Role.OPERATOR,
        stop,
    ),
    Command(
        "unstop", "<number>[,<number>…]", "take numbers off the stoplist", Role.OPERATOR, unstop
    ),
    Command("stoplist", "", "the numbers this chat never sends to", Role.VIEWER, stoplist),
)
