"""/balance [<provider>]: balances and credits of the connected providers."""

from __future__ import annotations

from telegram import Update

from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body, take_token
from bot.render import balances
from i18n import N_
from storage.models import Role


async def balance(update: Update, context: BotContext) -> None:
    """Ask each connected provider (or the one named) for its balances."""
    chat = await chat_of(update, context)
    provider, _rest = take_token(command_body(message_of(update).text or ""))
    reports = await context.services.accounts.balances(chat.id, provider or None)
    await reply(update, balances(reports))


COMMANDS = (
    Command(
        "balance", "[<provider>]", N_("balances of the connected providers"), Role.VIEWER, balance
    ),
)
