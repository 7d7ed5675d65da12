"""Small helpers every handler module shares."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

log = logging.getLogger(__name__)


def message_of(update: Update) -> Message:
    """The update's message (command handlers always have one)."""
    message = update.effective_message
    assert message is not None
    return message


def sender_name(update: Update) -> str:
    """``@username`` or the full name of whoever sent the update."""
    user = update.effective_user
    if user is None:
        return ""
    return f"@{user.username}" if user.username else user.full_name


async def reply(update: Update, text: str) -> Message:
    """Answer in the same chat, as HTML."""
    return await message_of(update).reply_html(text, do_quote=False)


async def edit_pressed(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Show ``text`` in the message whose button was pressed, if Telegram lets it.

    A second press of the same button leaves nothing to change ("message is not modified")
    and the message may be gone or too old to edit; the press itself was handled, so either
    is only logged.
    """
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except TelegramError as exc:
        log.info("left a pressed button's message as it was: %s", exc.message)
