"""Status cards: the chat message that shows a send and is edited as its states move.

``/send`` and fired schedules both post their card through :func:`post_card`, so every send
looks and behaves the same in the chat.
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.render import status_card
from bot.services import Services
from bot.services.sending import SendOutcome

log = logging.getLogger(__name__)


async def post_card(
    bot: Bot,
    services: Services,
    outcome: SendOutcome,
    *,
    reply_to: int | None = None,
    note: str = "",
) -> int | None:
    """Post a send's status card and remember it for later edits; its message id.

    A chat that cannot be reached (blocked, deleted) is logged and skipped: the send itself
    is already stored and tracked.
    """
    text = status_card(outcome.batch, outcome.messages)
    if note:
        text = f"{note}\n{text}"
    try:
        card = await bot.send_message(
            outcome.batch.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
        )
    except TelegramError as exc:
        log.warning("could not post the card of send %s: %s", outcome.batch.id, exc.message)
        return None
    if outcome.batch.id is not None and not outcome.replayed:
        await services.repo.set_card(outcome.batch.id, card.message_id)
    return card.message_id
