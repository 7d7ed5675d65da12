"""Small helpers every handler module shares."""

from __future__ import annotations

from html import escape

from telegram import Message, Update

from bot.services.errors import BadInput


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


def parse_id(text: str, *, what: str = "message") -> int:
    """A numeric id typed as ``12`` or ``#12``."""
    cleaned = text.strip().lstrip("#")
    if not cleaned.isdigit():
        raise BadInput(f"“{escape(text)}” is not a {what} id; ids are numbers like 12 or #12.")
    return int(cleaned)


async def reply(update: Update, text: str) -> Message:
    """Answer in the same chat, as HTML."""
    return await message_of(update).reply_html(text, do_quote=False)
