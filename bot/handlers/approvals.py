"""/approval, /approvals, and the Approve / Reject / Withdraw buttons of a held send.

A send held for approval (:mod:`bot.services.approvals`) gets a card in its chat. Another
admin approves or rejects it; its requester may withdraw it (one card, the buttons check who
pressed). An approval makes the send through :meth:`bot.services.gate.SendGate.release`,
here at the press, or at the next start when a stop came between the two
(:func:`carry_out_owed`). The tracker's expiry sweep ends the cards of approvals nobody
decided in time (:func:`expire_cards`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from bot.cards import post_card
from bot.commands import Command, chat_of, current_role, require_role
from bot.context import BotContext
from bot.handlers.attachment import download_ref
from bot.handlers.common import edit_pressed, message_of, reply, sender_name
from bot.handlers.decide import take_press
from bot.parsing import command_body
from bot.render_approvals import card_text, ended_text, threshold_text, waiting_list, who
from bot.render_gate import held_text
from bot.schedule_text import confirmation, handed_over_note
from bot.services import Services
from bot.services.approvals import Waiting
from bot.services.errors import UserError
from i18n import N_, _, use_language
from storage.models import Approval, Chat, Role
from storage.replicas import Gone

log = logging.getLogger(__name__)

DATA = "apv:"
PATTERN = r"^apv:\d{1,18}:[ynw]$"
APPROVE, REJECT, WITHDRAW = "y", "n", "w"


def buttons(approval_id: int) -> InlineKeyboardMarkup:
    """Approve / Reject (another admin) and Withdraw (the requester) under a held send."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("Approve"), callback_data=f"{DATA}{approval_id}:y"),
                InlineKeyboardButton(_("Reject"), callback_data=f"{DATA}{approval_id}:n"),
                InlineKeyboardButton(_("Withdraw"), callback_data=f"{DATA}{approval_id}:w"),
            ]
        ]
    )


async def show_card(bot: Bot, services: Services, waiting: Waiting) -> None:
    """Post a held send's card in its chat and remember it (the expiry sweep edits it)."""
    row = waiting.approval
    assert row.id is not None
    chat = await services.repo.get_chat(row.chat_id)
    zone = chat.timezone if chat is not None else "UTC"
    posted = await bot.send_message(
        row.chat_id,
        card_text(row, zone, waiting.expiry),
        parse_mode=ParseMode.HTML,
        reply_markup=buttons(row.id),
    )
    await services.approvals.store.set_card(row.id, posted.message_id)


async def requester_role(update: Update, context: BotContext, chat: Chat) -> Role:
    """The role a send is held by: the sender's while the chat has approvals on.

    With approvals off nothing is held whatever the role, so Telegram is not asked.
    """
    if chat.approval_above is None:
        return Role.ADMIN
    return await current_role(update, context, chat, Role.ADMIN)


async def approval(update: Update, context: BotContext) -> None:
    """/approval <n>|off; alone: the chat's setting."""
    chat = await chat_of(update, context)
    body = command_body(message_of(update).text or "").strip()
    if not body:
        await reply(update, threshold_text(chat.approval_above))
        return
    user = update.effective_user
    assert user is not None
    limit = await context.services.approvals.set_threshold(chat.id, body, actor=user.id)
    await reply(update, threshold_text(limit))


async def approvals(update: Update, context: BotContext) -> None:
    """/approvals: the chat's sends that wait for approval."""
    chat = await chat_of(update, context)
    rows = await context.services.approvals.pending(chat.id)
    await reply(update, waiting_list(rows, chat.timezone))


async def on_press(update: Update, context: BotContext) -> None:
    """Approve or Reject (another admin), or Withdraw (the requester); each decides once."""
    services = context.services
    press = await take_press(
        update, context, services.approvals.of_chat, lambda row: _("Deciding another user's send")
    )
    if press is None:
        return
    chat, row_id, name = press.chat, press.row.id or 0, sender_name(update)
    decisions = services.approvals
    if press.choice == WITHDRAW:
        row = await decisions.withdraw(chat.id, row_id, by=press.user_id, by_name=name)
    else:
        # Approving or rejecting is another admin's: the service refuses the requester (even
        # one made admin since), and take_press let only the requester through below admin.
        if press.row.requested_by != press.user_id:
            await require_role(
                update, context, chat, Role.ADMIN, _("Approving or rejecting a send")
            )
        decide = decisions.approve if press.choice == APPROVE else decisions.reject
        row = await decide(chat.id, row_id, by=press.user_id, by_name=name)
    await edit_pressed(press.query, ended_text(row, decisions.expiry), None)
    if press.choice == APPROVE:
        await carry_out(context.bot, services, chat, row)
        return
    requester = who(row.requested_by_name, row.requested_by)
    if press.choice == REJECT:
        text = _("{requester}: your send (approval #{id}) was rejected by {name}.").format(
            requester=requester, id=row.id, name=who(name, press.user_id)
        )
    else:
        text = _("{requester} withdrew their send (approval #{id}): nothing to decide.").format(
            requester=requester, id=row.id
        )
    await reply(update, text)


async def carry_out(bot: Bot, services: Services, chat: Chat, row: Approval) -> None:
    """Make an approved send (once, whoever calls), then mark the approval done.

    A refusal the send path makes (every number stopped meanwhile, a time that passed, a
    provider disconnected) is told in the chat and ends the approval too: it is not retried.
    Any other error leaves it owed, for the next start.
    """
    assert row.id is not None
    try:
        await _send(bot, services, chat, row)
    except UserError as exc:
        await services.approvals.finish(row.id)
        await bot.send_message(
            chat.id,
            _("Approval #{id}: {reason}").format(id=row.id, reason=exc.message),
            parse_mode=ParseMode.HTML,
        )
        return
    await services.approvals.finish(row.id)


async def _send(bot: Bot, services: Services, chat: Chat, row: Approval) -> None:
    decided = await services.gate.release(chat, row)
    if decided.request is not None:
        request = decided.request
        if decided.media is not None:
            request = replace(request, media=await download_ref(bot, decided.media))
        outcome = await services.sender.send(request)
        await post_card(services, outcome, note="" if outcome.replayed else outcome.card_note)
    elif decided.held is not None:
        handed = decided.held.created.handed_over
        if handed is None:
            await bot.send_message(chat.id, held_text(decided.held), parse_mode=ParseMode.HTML)
        else:
            await post_card(services, handed.outcome, note=held_text(decided.held))
    elif decided.created is not None:
        handed = decided.created.handed_over
        if handed is None:
            text = confirmation(decided.created.schedule)
            await bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)
        else:
            await post_card(services, handed.outcome, note=handed_over_note(handed.schedule))


async def carry_out_owed(bot: Bot, services: Services, gone: Gone | None = None) -> int:
    """Make the approved sends a stop cut off before they were stored.

    At start, and when replicas are seen dead: then only theirs (``gone``).
    """
    owed = await services.approvals.owed(gone)
    for row in owed:
        chat = await services.repo.get_chat(row.chat_id)
        if chat is None:
            continue
        try:
            with use_language(services.chats.language(chat)):
                await carry_out(bot, services, chat, row)
        except Exception:  # one bad row must not stop the others or the start
            log.exception("approved send of approval %s could not be made", row.id)
    return len(owed)


async def expire_cards(bot: Bot, services: Services, now: datetime) -> int:
    """The expiry sweep: end approvals past ``APPROVAL_EXPIRY`` and say so on their cards."""
    ended = await services.approvals.expire(now)
    for row in ended:
        if row.card_message_id is None:
            continue
        try:
            with use_language(await services.chats.language_of(row.chat_id)):
                text = ended_text(row, services.approvals.expiry)
            await bot.edit_message_text(
                text,
                chat_id=row.chat_id,
                message_id=row.card_message_id,
                parse_mode=ParseMode.HTML,
            )
        except TelegramError as exc:  # the card may be gone; a press on it says it expired
            log.info("left the card of expired approval %s as it was: %s", row.id, exc.message)
    return len(ended)


def press_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the Approve / Reject / Withdraw buttons."""
    return CallbackQueryHandler(on_press, pattern=PATTERN)


COMMANDS = (
    Command(
        "approval",
        "<n>|off",
        N_("operators' sends to more than n recipients wait for another admin's approval"),
        Role.ADMIN,
        approval,
    ),
    Command("approvals", "", N_("sends awaiting approval in this chat"), Role.VIEWER, approvals),
)
