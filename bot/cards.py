"""Status cards: the chat message that shows a send and is edited as its states move.

``/send`` and fired schedules both post their card through :func:`post_card`, and the
delivery loop posts the cards their senders could not (after a crash), so every send looks
and behaves the same in the chat and gets exactly one card.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import CARD_LINES, card_text
from bot.render_progress import progress_card
from bot.services import Services
from bot.services.integers import read_id
from bot.services.sending import SendOutcome
from bot.tracking.policy import READ_CHANNELS
from i18n import _
from providers.base import DeliveryState
from storage.models import Progress, utcnow
from storage.tracking_repo import CardView

# Inline buttons of a card: ``card:<action>:<batch id>`` for Refresh, Details and History.
REFRESH = "refresh"
DETAILS = "details"
HISTORY = "history"
STOP = "stop"  # a large send: stop what was not handed to the provider yet
RETRY = "retry"  # a large send that ended: send again to the recipients that failed
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
    """Refresh while something may still move; Details of several recipients, else History.

    A large send has Stop while it runs, and Retry failed once it ended with recipients that
    certainly failed.
    """
    assert view.batch.id is not None
    buttons = []
    progress = view.batch.progress
    if progress == Progress.SENDING.value:
        buttons.append(
            InlineKeyboardButton(_("⏹ Stop"), callback_data=card_data(STOP, view.batch.id))
        )
    elif progress is not None and view.counts.get(DeliveryState.FAILED.value):
        buttons.append(
            InlineKeyboardButton(
                _("🔁 Retry failed"), callback_data=card_data(RETRY, view.batch.id)
            )
        )
    channel = view.batch.route.partition(":")[2]
    if view.has_open or (view.counts.get(DeliveryState.DELIVERED) and channel in READ_CHANNELS):
        buttons.append(
            InlineKeyboardButton(_("🔄 Refresh"), callback_data=card_data(REFRESH, view.batch.id))
        )
    if view.total > 1:
        buttons.append(
            InlineKeyboardButton(_("📋 Details"), callback_data=card_data(DETAILS, view.batch.id))
        )
    elif view.total == 1:  # one message: its status history, as /status <id> shows it
        buttons.append(
            InlineKeyboardButton(_("🕘 History"), callback_data=card_data(HISTORY, view.batch.id))
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


def render_card(view: CardView, now: datetime | None = None) -> str:
    """The card's text from a :class:`CardView` (a large send's progress measured at ``now``)."""
    if view.batch.progress is not None:
        return progress_card(
            view.batch,
            view.counts,
            view.shown,
            view.total,
            handed=view.handed,
            handed_since=view.handed_since,
            now=now or utcnow(),
        )
    return card_text(view.batch, view.counts, view.shown, view.total)


async def post_card(
    services: Services,
    outcome: SendOutcome,
    *,
    reply_to: int | None = None,
    note: str = "",
) -> int | None:
    """Post a send's status card now, unless it has one; its message id (None: not now).

    The card was owed since the batch was stored (an outbox entry held for the caller); the
    delivery tracker posts it (:meth:`bot.tracking.updater.CardUpdater.post_now`), records it
    and settles the entry, or leaves it to its loop when Telegram cannot take it now. A chat
    that cannot be reached (blocked, deleted) is logged and skipped: the send itself is
    already stored and tracked.
    """
    events = services.card_events
    if events is None:
        raise RuntimeError("the delivery tracker is not running: no card can be posted")
    return await events.post_card(outcome, note=note, reply_to=reply_to)
