"""Pressing the Send / Cancel buttons of a large send's confirmation (``bot/handlers/confirm``).

Sends to more than ``CONFIRM_ABOVE`` recipients, or to a provider group, wait for a press:
tests that make one call :func:`confirm` after the command, exactly as a user would press.
"""

from __future__ import annotations

from typing import Any

from bot.handlers.confirm import DATA
from tests.conftest import USER, Bot
from tests.fakes.telegram import callback_query, feed


def last_buttons(bot: Bot, chat_id: int = USER) -> tuple[str, str]:
    """The Send and Cancel callback data of the newest confirmation in ``chat_id``."""
    for call in reversed(bot.tg.calls_to("sendMessage")):
        markup: Any = call.params.get("reply_markup")
        if int(call.params.get("chat_id", 0)) != chat_id or not markup:
            continue
        row = markup["inline_keyboard"][0] if isinstance(markup, dict) else None
        if row and str(row[0].get("callback_data", "")).startswith(DATA):
            return str(row[0]["callback_data"]), str(row[1]["callback_data"])
    raise AssertionError("no confirmation was shown")


async def press(bot: Bot, data: str, *, chat_id: int = USER, user_id: int = USER) -> str:
    """Press a button; what the bot said (the edited confirmation, then new messages)."""
    mark = bot.tg.mark()
    await feed(
        bot.app, callback_query(data, message_chat_id=chat_id, message_id=1, user_id=user_id)
    )
    said = [
        str(c.result.get("text", "")) if isinstance(c.result, dict) else ""
        for c in bot.tg.calls[mark:]
        if c.method in ("editMessageText", "sendMessage")
        and c.ok
        and int(c.params.get("chat_id", chat_id)) == chat_id
    ]
    return "\n".join(said)


async def confirm(bot: Bot, *, chat_id: int = USER, user_id: int = USER) -> str:
    """Press Send on the newest confirmation; what the bot said."""
    send, _ = last_buttons(bot, chat_id)
    return await press(bot, send, chat_id=chat_id, user_id=user_id)
