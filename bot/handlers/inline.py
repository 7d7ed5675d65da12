"""Inline mode: ``@bot <message id or number>`` offers the caller's messages as status cards.

Anyone may use it, and sees only messages of chats they belong to (see
:mod:`bot.services.inline`): membership of a group is asked of Telegram (``getChatMember``).
Each result is the ``/status <id>`` text of one message; posted into a chat it carries a
Refresh button while the message may still move. A press asks the provider (at most once
every few seconds per send, the same limit as a card's Refresh) and edits the posted card;
whoever presses must belong to the message's chat too, wherever the card was posted.
"""

from __future__ import annotations

import logging
import re
from html import unescape

from telegram import (
    CallbackQuery,
    ChatMember,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler, InlineQueryHandler

from bot.context import BotApplication, BotContext
from bot.handlers.cards import TOAST_LIMIT, refresh_text, tracker_of
from bot.render import icon, local_time, state_label, status_details
from bot.services.errors import BadInput, UserError
from bot.services.inline import Found, IsMember
from bot.services.integers import read_id
from bot.tracking.policy import READ_CHANNELS
from i18n import _
from providers.base import DeliveryState

log = logging.getLogger(__name__)

CACHE_SECONDS = 10  # Telegram keeps an answer this long per user and query (is_personal)
REFRESH = "msg:refresh:"  # a Refresh button under a card posted through inline mode
MESSAGE_PATTERN = r"^msg:"
START_PARAMETER = "inline"  # the empty list's button opens the private chat: /start inline
_MEMBER_STATUSES = {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER}
_DESCRIPTION = 120
_BUTTON_TEXT = 64
_NOT_MODIFIED = "message is not modified"  # i18n: not shown
_REFRESH_DATA = re.compile(r"msg:refresh:([0-9]+)")


def member_check(context: BotContext) -> IsMember:
    """Ask Telegram whether a user is in a chat now; any error counts as "not a member"."""

    async def is_member(chat_id: int, user_id: int) -> bool:
        try:
            member = await context.bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.info("membership in chat %s not confirmed: %s", chat_id, exc.message)
            return False
        if member.status in _MEMBER_STATUSES:
            return True
        return isinstance(member, ChatMemberRestricted) and member.is_member

    return is_member


def refresh_target(data: object) -> int | None:
    """The message id of an inline card's Refresh button; None when the data is not one."""
    match = _REFRESH_DATA.fullmatch(data) if isinstance(data, str) else None
    return read_id(match.group(1)) if match else None


def card_markup(found: Found) -> InlineKeyboardMarkup | None:
    """Refresh while the message may still move (a delivered WhatsApp message may be read)."""
    message = found.message
    state = DeliveryState(message.state)
    if state.is_final and not (
        state == DeliveryState.DELIVERED and message.channel in READ_CHANNELS
    ):
        return None
    button = InlineKeyboardButton(_("🔄 Refresh"), callback_data=f"{REFRESH}{message.id}")
    return InlineKeyboardMarkup([[button]])


def card_text(found: Found) -> str:
    """The card: exactly what ``/status <id>`` shows."""
    return status_details(found.message, found.history, found.chat.timezone)


def result_of(found: Found) -> InlineQueryResultArticle:
    """One message as an inline result (title: id, state, recipient; description: where)."""
    message = found.message
    where = found.chat.title or (_("private chat") if found.chat.kind == "private" else _("group"))
    preview = " ".join(message.text.split())
    description = (
        f"{where} · {message.provider}:{message.channel} · "
        f"{local_time(message.created_at, found.chat.timezone)} · {preview}"
    )
    return InlineQueryResultArticle(
        id=str(message.id),
        title=(
            f"#{message.id} {icon(message.state)} {state_label(message.state)} "
            f"→ {message.recipient}"
        ),
        description=description[:_DESCRIPTION],
        input_message_content=InputTextMessageContent(card_text(found), parse_mode=ParseMode.HTML),
        reply_markup=card_markup(found),
    )


async def on_inline_query(update: Update, context: BotContext) -> None:
    """Answer an inline query with the caller's matching messages (personal, cached briefly)."""
    query = update.inline_query
    assert query is not None
    page = await context.services.inline.search(
        query.from_user.id, query.query, query.offset, member_check(context)
    )
    button = None
    if page.hint:  # shown above an empty list; it opens the private chat with the bot
        button = InlineQueryResultsButton(
            text=unescape(page.hint)[:_BUTTON_TEXT], start_parameter=START_PARAMETER
        )
    try:
        await query.answer(
            [result_of(found) for found in page.found],
            cache_time=CACHE_SECONDS,
            is_personal=True,
            next_offset=page.next_offset,
            button=button,
        )
    except BadRequest as exc:  # the query expired meanwhile (a slow answer): nobody waits
        log.info("inline query not answered: %s", exc.message)


async def _refresh(query: CallbackQuery, context: BotContext) -> str:
    message_id = refresh_target(query.data)
    if message_id is None:
        raise BadInput(_("This button is from an older version of the bot; use /status instead."))
    inline = context.services.inline
    is_member = member_check(context)
    found = await inline.visible(query.from_user.id, message_id, is_member)
    outcome = await tracker_of(context).refresh(found.message.batch_id, found.message.chat_id)
    if not outcome.throttled:
        found = await inline.visible(query.from_user.id, message_id, is_member)
    try:
        await query.edit_message_text(
            card_text(found), parse_mode=ParseMode.HTML, reply_markup=card_markup(found)
        )
    except BadRequest as exc:
        if _NOT_MODIFIED not in exc.message.lower():
            log.info("inline card of message %s left as it was: %s", message_id, exc.message)
    return refresh_text(outcome)


async def on_refresh_button(update: Update, context: BotContext) -> None:
    """Refresh under a card posted through inline mode: one answer, an alert when refused."""
    query = update.callback_query
    assert query is not None
    try:
        text = await _refresh(query, context)
    except UserError as exc:
        await query.answer(unescape(exc.message)[:TOAST_LIMIT], show_alert=True)
        return
    await query.answer(text[:TOAST_LIMIT])


def register(app: BotApplication) -> None:
    """Add the inline-query handler and the inline cards' button handler."""
    app.add_handler(InlineQueryHandler(on_inline_query))
    app.add_handler(CallbackQueryHandler(on_refresh_button, pattern=MESSAGE_PATTERN))
