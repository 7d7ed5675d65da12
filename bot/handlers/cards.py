"""Status-card buttons (Refresh, Details, History; Stop and Retry failed of large sends), receipts.

Refresh polls the open messages of the card's send right away (at most once every few
seconds per card) and answers with what changed; the card itself is edited by the tracker,
within its pacing. Details posts every recipient's state under the card; History (on a
one-recipient card) posts its message's status history there, as ``/status <id>`` does.
A provider's status callback (a :class:`ProviderCallback` of kind ``status``, read by its
line in :data:`providers.registry.RECEIPT_READERS`) is read into receipts and applied like a
poll.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler

from bot.callbacks import ProviderCallback
from bot.cards import CARD_PATTERN, DETAILS, HISTORY, REFRESH, RETRY, STOP, parse_card_data
from bot.commands import chat_of
from bot.context import BotApplication, BotContext
from bot.handlers.large_sends import on_press as on_large_send_press
from bot.render import status_details
from bot.services.errors import BadInput, UserError
from bot.tracking.tracker import RefreshOutcome, Tracker
from bot.webhooks import ProviderCallbackHandler
from i18n import _, ngettext
from providers.receipts import InvalidCallback
from providers.registry import read_receipts

log = logging.getLogger(__name__)

RECEIPTS_GROUP = 11  # its own group: other ProviderCallback handlers still see their kinds
TOAST_LIMIT = 200  # Telegram's limit for a callback answer
HISTORY_COOLDOWN = 10.0  # a second History press within this posts nothing new


def tracker_of(context: BotContext) -> Tracker:
    """The running tracker (started in ``post_init``)."""
    resources = context.bot_data.resources
    if resources is None or resources.tracker is None:
        raise RuntimeError("delivery tracking is not running: post_init has not run")
    return resources.tracker


def refresh_text(outcome: RefreshOutcome) -> str:
    """The toast answering a Refresh press."""
    if outcome.throttled:
        return _("Refreshed a moment ago; try again in a few seconds.")
    if not outcome.asked:
        return _("Nothing left to ask: every message of this send has its final status.")
    if outcome.errors and not outcome.changed and len(outcome.errors) == outcome.asked:
        return _("Could not ask the provider just now: {error}").format(error=outcome.errors[0])
    if outcome.errors:
        return ngettext(
            "Asked about {count} message: {changed} changed. "
            "{failed} could not be asked ({error}).",
            "Asked about {count} messages: {changed} changed. "
            "{failed} could not be asked ({error}).",
            outcome.asked,
        ).format(
            count=outcome.asked,
            changed=outcome.changed,
            failed=len(outcome.errors),
            error=outcome.errors[0],
        )
    return ngettext(
        "Asked about {count} message: {changed} changed.",
        "Asked about {count} messages: {changed} changed.",
        outcome.asked,
    ).format(count=outcome.asked, changed=outcome.changed)


async def _answer_button(update: Update, context: BotContext) -> str:
    query = update.callback_query
    assert query is not None
    parsed = parse_card_data(query.data or "")
    if parsed is None or parsed[0] not in (REFRESH, DETAILS, HISTORY):
        raise BadInput(_("This button is from an older version of the bot; use /status instead."))
    action, batch_id = parsed
    if query.message is None:
        raise BadInput(_("This card is too old to use; /status shows the latest messages."))
    chat_id = query.message.chat.id
    await context.services.status.check_batch(chat_id, batch_id)
    tracker = tracker_of(context)
    if action == REFRESH:
        return refresh_text(await tracker.refresh(batch_id, chat_id))
    if action == HISTORY:
        return await _post_history(update, context, batch_id)
    if tracker.request_details(batch_id, chat_id):
        return _("The details follow below the card.")
    return _("The details were just posted below the card.")


async def _post_history(update: Update, context: BotContext, batch_id: int) -> str:
    """Post the card's message with its status history (as /status <id>) below the card."""
    query = update.callback_query
    assert query is not None
    assert query.message is not None
    if not tracker_of(context).may_press(HISTORY, batch_id, HISTORY_COOLDOWN):
        return _("The history was just posted below the card.")
    chat = await chat_of(update, context)
    found = await context.services.status.only_message(chat.id, batch_id)
    await context.bot.send_message(
        chat.id,
        status_details(found.message, found.history, chat.timezone),
        parse_mode=ParseMode.HTML,
        reply_to_message_id=query.message.message_id,
        allow_sending_without_reply=True,
    )
    return _("The history follows below the card.")


async def on_card_button(update: Update, context: BotContext) -> None:
    """A Refresh or Details press: answer with a short toast (an alert when refused)."""
    query = update.callback_query
    assert query is not None
    parsed = parse_card_data(query.data or "")
    if parsed is not None and parsed[0] in (STOP, RETRY):  # a large send's buttons
        await on_large_send_press(update, context, *parsed)
        return
    try:
        text = await _answer_button(update, context)
    except UserError as exc:
        await query.answer(exc.message[:TOAST_LIMIT], show_alert=True)
        return
    await query.answer(text[:TOAST_LIMIT])


async def on_status_callback(update: ProviderCallback, context: BotContext) -> None:
    """A pushed delivery receipt: apply it like a poll result (duplicates are ignored)."""
    try:
        receipts = read_receipts(update.provider, update.kind, update.body)
    except InvalidCallback as exc:  # the server validated it; only a changed reader gets here
        log.warning("unreadable %s %s callback: %s", update.provider, update.kind, exc)
        return
    if receipts.ignored:
        log.info("%s sent statuses this bot does not know: %s", update.provider, receipts.ignored)
    outcome = await tracker_of(context).receive(update.provider, receipts.reports)
    log.info(
        "%s receipts: %d matched, %d moved, %d unknown refs",
        update.provider,
        outcome.matched,
        len(outcome.moved),
        len(outcome.unknown_refs),
    )


def register(app: BotApplication) -> None:
    """Add the card-button and status-callback handlers."""
    app.add_handler(CallbackQueryHandler(on_card_button, pattern=CARD_PATTERN))
    app.add_handler(ProviderCallbackHandler("status", on_status_callback), group=RECEIPTS_GROUP)
