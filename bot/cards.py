"""Status cards: the chat message that shows a send and is edited as its states move.

``/send`` and fired schedules both post their card through :func:`post_card`, so every send
looks and behaves the same in the chat.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError

from bot.render import CARD_LINES, card_text, status_card
from bot.services import Services
from bot.services.integers import read_id
from bot.services.sending import SendOutcome
from bot.tracking.policy import READ_CHANNELS
from providers.base import DeliveryState
from storage.tracking_repo import CardView, TrackingRepository

log = logging.getLogger(__name__)

# Inline buttons of a card: ``card:refresh:<batch id>`` and ``card:details:<batch id>``.
REFRESH = "refresh"
DETAILS = "details"
CARD_PATTERN = r"^card:"
_CARD_DATA = re.compile(r"card:([a-z]+):([0-9]+)")


def card_data(action: str, batch_id: int) -> str:
    """The callback data of a card button."""
    return f"card:{action}:{batch_id}"


def parse_card_data(data: str) -> tuple[str, int] | None:
    """``(action, batch id)`` of a card button, or None when the data is not one."""
    match = _CARD_DATA.fullmatch(data)
    if match is None:
        return None
    batch_id = read_id(match.group(2))
    return None if batch_id is None else (match.group(1), batch_id)


def card_keyboard(view: CardView) -> InlineKeyboardMarkup | None:
    """Refresh while something may still move; Details when the send has several recipients."""
    assert view.batch.id is not None
    buttons = []
    channel = view.batch.route.partition(":")[2]
    if view.has_open or (view.counts.get(DeliveryState.DELIVERED) and channel in READ_CHANNELS):
        buttons.append(
            InlineKeyboardButton("🔄 Refresh", callback_data=card_data(REFRESH, view.batch.id))
        )
    if view.total > 1:
        buttons.append(
            InlineKeyboardButton("📋 Details", callback_data=card_data(DETAILS, view.batch.id))
        )
    return InlineKeyboardMarkup([buttons]) if buttons else None


def outcome_view(outcome: SendOutcome, last_event_id: int) -> CardView:
    """What a send's card shows, from the send's own outcome (no database read)."""
    messages = outcome.messages
    return CardView(
        batch=outcome.batch,
        counts=dict(Counter(m.state for m in messages)),
        shown=list(messages[:CARD_LINES]),
        total=len(messages),
        last_event_id=last_event_id,
    )


def render_card(view: CardView) -> str:
    """The card's text from a :class:`CardView`."""
    return card_text(view.batch, view.counts, view.shown, view.total)


async def post_card(
    bot: Bot,
    services: Services,
    outcome: SendOutcome,
    *,
    reply_to: int | None = None,
    note: str = "",
) -> int | None:
    """Post a send's status card and remember it for later edits; its message id.

    A fresh send's card is rendered from its outcome in memory, a replay's from the database;
    either way with the newest status event it shows, so the tracker knows what is left to
    edit in. A chat that cannot be reached (blocked, deleted)
    is logged and skipped: the send itself is already stored and tracked.
    """
    batch_id = outcome.batch.id
    assert batch_id is not None
    if services.card_events is not None and not outcome.replayed:
        services.card_events.messages_sent(outcome.messages)  # tracked even if no card posts
    store = TrackingRepository(services.repo.messages)
    view: CardView | None
    if outcome.last_event_id is not None:
        view = outcome_view(outcome, outcome.last_event_id)
    else:
        view = await store.card_view(batch_id, lines=CARD_LINES)
    text = render_card(view) if view else status_card(outcome.batch, outcome.messages)
    if note:
        text = f"{note}\n{text}"
    try:
        card = await bot.send_message(
            outcome.batch.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            reply_markup=card_keyboard(view) if view and not outcome.replayed else None,
        )
    except TelegramError as exc:
        log.warning("could not post the card of send %s: %s", batch_id, exc.message)
        if isinstance(exc, Forbidden) and not outcome.replayed:
            await store.mark_card_dead(batch_id)
        return None
    if not outcome.replayed:
        await store.set_card(batch_id, card.message_id, view.last_event_id if view else 0)
        if services.card_events is not None:
            services.card_events.card_posted(outcome.batch.chat_id, batch_id)
    return card.message_id
