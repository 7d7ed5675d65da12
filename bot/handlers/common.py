"""Small helpers every handler module shares."""

from __future__ import annotations

from telegram import Message, Update


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
