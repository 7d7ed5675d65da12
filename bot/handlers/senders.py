"""/senders [<provider>]: sender identities with buttons to pick the one this chat sends from."""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler

from bot.commands import Command, chat_of, require_role
from bot.context import BotContext
from bot.handlers.common import edit_pressed, message_of
from bot.parsing import command_body, take_token
from bot.services import Services
from bot.services.errors import UserError
from bot.services.senders import SenderChoice
from i18n import N_, _
from providers.errors import ProviderError
from providers.registry import ProviderSpec
from storage.models import Role

log = logging.getLogger(__name__)
PICK_DATA = "snd:"
PICK_PATTERN = r"^snd:[a-z0-9_]{1,32}:[0-9]{1,3}\Z"  # \Z: "$" would let a newline follow
MAX_BUTTONS = 30


def sender_list(choice: SenderChoice) -> str:
    """The identities, marking the current one (HTML)."""
    lines = [_("<b>{provider} senders</b>").format(provider=escape(choice.provider.display))]
    if not choice.identities:
        lines.append(_("None yet: create one with the provider first."))
    for identity in choice.identities:
        mark = "✅" if identity.value == choice.current else ("•" if identity.usable else "⏳")
        status = f" ({escape(identity.status)})" if identity.status else ""
        lines.append(f"{mark} <code>{escape(identity.value)}</code>{status}")
    current = escape(choice.current) if choice.current else _("none")
    lines.append(_("This chat sends from <code>{sender}</code>.").format(sender=current))
    return "\n".join(lines)


def sender_buttons(choice: SenderChoice) -> InlineKeyboardMarkup | None:
    """One button per usable identity (admins pick; the press is checked)."""
    buttons = [
        [
            InlineKeyboardButton(
                identity.value, callback_data=f"{PICK_DATA}{choice.provider.name}:{i}"
            )
        ]
        for i, identity in enumerate(choice.identities[:MAX_BUTTONS])
        if identity.usable and identity.value != choice.current
    ]
    return InlineKeyboardMarkup(buttons) if buttons else None


async def senders(update: Update, context: BotContext) -> None:
    """List a provider's sender identities with buttons."""
    chat = await chat_of(update, context)
    provider, _rest = take_token(command_body(message_of(update).text or ""))
    choice = await context.services.senders.list(chat.id, provider or None)
    await message_of(update).reply_html(
        sender_list(choice), reply_markup=sender_buttons(choice), do_quote=False
    )


async def on_pick(update: Update, context: BotContext) -> None:
    """A sender button: admins change the chat's sender."""
    query = update.callback_query
    if query is None or update.effective_chat is None or update.effective_user is None:
        return
    await query.answer()
    chat = await chat_of(update, context)
    await require_role(update, context, chat, Role.ADMIN, _("Changing the sender"))
    _prefix, provider, index = (query.data or "").split(":")
    choice = await context.services.senders.choose(
        chat.id, provider, int(index), actor=update.effective_user.id
    )
    await edit_pressed(query, sender_list(choice), sender_buttons(choice))


async def offer_choice(bot: Bot, services: Services, chat_id: int, spec: ProviderSpec) -> None:
    """After /connect: when the account has several identities and none is chosen, ask.

    The buttons go to the chat the credentials are for (a group connected from a private
    chat picks in the group). A provider that cannot list them now is left for /senders.
    """
    if not spec.capabilities.senders:
        return
    try:
        choice = await services.senders.list(chat_id, spec.name)
    except (ProviderError, UserError) as exc:
        log.info("no sender choice offered after connecting %s: %s", spec.name, exc)
        return
    if choice.current or not choice.identities:
        return
    await bot.send_message(
        chat_id,
        _(
            "Pick what this chat sends from (an admin can change it later with "
            "/senders {provider}):"
        ).format(provider=escape(spec.name))
        + "\n"
        + sender_list(choice),
        parse_mode=ParseMode.HTML,
        reply_markup=sender_buttons(choice),
    )


def pick_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the sender buttons."""
    return CallbackQueryHandler(on_pick, pattern=PICK_PATTERN)


COMMANDS = (
    Command(
        "senders",
        "[<provider>]",
        N_("sender identities, with buttons to pick this chat's"),
        Role.VIEWER,
        senders,
    ),
)
