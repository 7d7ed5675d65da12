"""/stop, /unstop and /stoplist: numbers this chat never sends to."""

from __future__ import annotations

from html import escape

from telegram import Update

from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body
from bot.services.stoplist import StopChange, StopListing, numbers_text
from i18n import N_, _
from storage.models import Role

USAGE = "&lt;number&gt;[,&lt;number&gt;…]"


def stop_text(change: StopChange) -> str:
    """What /stop did."""
    lines = []
    if change.changed:
        lines.append(
            _(
                "🚫 Stopped {count} number(s): {numbers}. "
                "Sends and schedules from this chat skip them."
            ).format(count=len(change.changed), numbers=numbers_text(change.changed))
        )
    if change.unchanged:
        lines.append(
            _("Already on the stoplist: {count} ({numbers}).").format(
                count=len(change.unchanged), numbers=numbers_text(change.unchanged)
            )
        )
    return "\n".join(lines)


def unstop_text(change: StopChange) -> str:
    """What /unstop did."""
    lines = []
    if change.changed:
        lines.append(
            _("✅ Removed {count} number(s) from the stoplist: {numbers}.").format(
                count=len(change.changed), numbers=numbers_text(change.changed)
            )
        )
    if change.unchanged:
        lines.append(
            _("Not on the stoplist: {count} ({numbers}).").format(
                count=len(change.unchanged), numbers=numbers_text(change.unchanged)
            )
        )
    return "\n".join(lines)


def listing_text(listing: StopListing) -> str:
    """/stoplist: the count and the first numbers."""
    if not listing.total:
        return _("This chat's stoplist is empty. /stop {usage} adds numbers.").format(usage=USAGE)
    lines = [_("<b>Stoplist</b>: {count:,} number(s)").format(count=listing.total)]
    lines.extend(f"• <code>{escape(e.number)}</code>" for e in listing.entries)
    if listing.total > len(listing.entries):
        more = listing.total - len(listing.entries)
        lines.append(_("…and {count:,} more.").format(count=more))
    lines.append(_("/unstop {usage} removes numbers.").format(usage=USAGE))
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
        N_("put numbers on this chat's stoplist: sends to them are refused"),
        Role.OPERATOR,
        stop,
    ),
    Command(
        "unstop",
        "<number>[,<number>…]",
        N_("take numbers off the stoplist"),
        Role.OPERATOR,
        unstop,
    ),
    Command("stoplist", "", N_("the numbers this chat never sends to"), Role.VIEWER, stoplist),
)
