"""/check <number>[,<number>...]: is a number on WhatsApp, and the callback results.

A provider offering the check (see :mod:`providers.number_checks`) answers later, on the bot's
callback URL (webhook mode only). The webhook server puts each callback on the update queue as
a ``ProviderCallback(provider=<name>, kind="phone_check")``; :func:`callback_handler` turns it
into a message in every chat whose open check asked for those numbers.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import TypeHandler

from bot.callbacks import ProviderCallback, callback_url
from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.handlers.send import number_complete
from bot.parsing import command_body, take_recipients
from bot.render_checks import check_answer, check_submitted
from bot.services.errors import BadInput
from i18n import N_, _
from providers.number_checks import KIND, NUMBER_CHECKS
from storage.models import Role

log = logging.getLogger(__name__)

USAGE = "/check &lt;number&gt;[,&lt;number&gt;…]"


def split_numbers(body: str, country: str | None) -> list[str]:
    """Numbers separated by commas or spaces (``+62 812-3456-7890`` stays one number)."""
    numbers: list[str] = []
    rest = body
    complete = number_complete(country)
    while rest.strip():
        found, rest = take_recipients(rest, complete)
        if not found:
            break
        numbers.extend(found)
    return numbers


async def check(update: Update, context: BotContext) -> None:
    """/check: submit the numbers; results follow by callback when webhook mode is on."""
    chat = await chat_of(update, context)
    body = command_body(message_of(update).text or "")
    numbers = split_numbers(body, chat.country)
    if not numbers:
        raise BadInput(_("Usage: {usage}").format(usage=USAGE))
    settings = context.settings
    token = settings.telegram_bot_token.get_secret_value()

    def url(provider: str) -> str | None:
        return callback_url(settings.webhook_url, token, provider, KIND)

    user = update.effective_user
    assert user is not None
    submission = await context.services.checks.submit(
        chat.id, numbers, country=chat.country, callback_url=url, actor=user.id
    )
    await reply(update, check_submitted(submission))


class PhoneCheckCallbacks(TypeHandler[ProviderCallback, BotContext, None]):
    """Takes only phone-check callbacks, so other callback kinds reach their handlers."""

    def check_update(self, update: object) -> bool:
        """Whether this is a phone-check callback of a provider that offers the check."""
        return (
            isinstance(update, ProviderCallback)
            and update.provider in NUMBER_CHECKS
            and update.kind == KIND
        )


async def on_phone_check(update: ProviderCallback, context: BotContext) -> None:
    """Store the results and tell each chat that asked."""
    for answer in await context.services.checks.receive(update.provider, update.body):
        try:
            await context.bot.send_message(
                answer.chat_id, check_answer(answer), parse_mode=ParseMode.HTML
            )
        except TelegramError as exc:
            log.warning("could not post check results to chat %s: %s", answer.chat_id, exc)


def callback_handler() -> PhoneCheckCallbacks:
    """The handler for phone-check callbacks (registered in its own group)."""
    return PhoneCheckCallbacks(ProviderCallback, on_phone_check)


COMMANDS = (
    Command(
        "check",
        "<number>[,<number>…]",
        N_("is a number on WhatsApp? (the provider's number check)"),
        Role.OPERATOR,
        check,
    ),
)
