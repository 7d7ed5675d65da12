"""The Send / Cancel buttons of large sends and schedules, and telling a chat a send is held.

/send and /schedule ask :mod:`bot.services.gate`; these helpers show its answer. A press is
decided once by the service; the requester or a chat admin may press, and Send needs the
operator role. After Send, a send goes through the unchanged send path (``Sender.send``)
and gets its status card like any other.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler

from bot.cards import post_card
from bot.commands import require_role
from bot.context import BotContext
from bot.handlers.approvals import show_card
from bot.handlers.attachment import download_ref
from bot.handlers.common import edit_pressed, message_of, reply, sender_name
from bot.handlers.decide import take_press
from bot.render_gate import held_text, plan_text
from bot.schedule_text import confirmation, handed_over_note
from bot.services import Services
from bot.services.gate import SCHEDULE, Held, Plan
from bot.services.scheduling import Created
from i18n import _
from storage.models import Confirmation, Role

DATA = "snd:"
PATTERN = r"^snd:\d{1,18}:[yn]$"


def buttons(confirmation_id: int) -> InlineKeyboardMarkup:
    """Send / Cancel under a confirmation."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("Send"), callback_data=f"{DATA}{confirmation_id}:y"),
                InlineKeyboardButton(_("Cancel"), callback_data=f"{DATA}{confirmation_id}:n"),
            ]
        ]
    )


async def ask(update: Update, plan: Plan) -> None:
    """Show what Send will do, with the buttons."""
    await message_of(update).reply_html(
        plan_text(plan), reply_markup=buttons(plan.confirmation_id), do_quote=False
    )


async def tell_held(update: Update, services: Services, held: Held) -> None:
    """Say when a send held by quiet hours goes (its card, if its provider took it already)."""
    handed = held.created.handed_over
    if handed is None:
        await reply(update, held_text(held))
        return
    await post_card(services, handed.outcome, note=held_text(held))


async def _scheduled(update: Update, services: Services, created: Created) -> str:
    handed = created.handed_over
    if handed is None:
        return confirmation(created.schedule)
    await post_card(services, handed.outcome, note=handed_over_note(handed.schedule))
    return _("Scheduled send #{id} confirmed; its provider holds it.").format(
        id=created.schedule.id
    )


async def on_press(update: Update, context: BotContext) -> None:
    """Send or Cancel: the requester or an admin; a second press never sends again."""
    services = context.services
    press = await take_press(update, context, services.gate.waiting, _what)
    if press is None:
        return
    query, chat, row = press.query, press.chat, press.row
    if not press.send:
        cancelled = await services.gate.cancel(chat.id, row.id or 0, actor=press.user_id)
        text = _("Cancelled by {name}; nothing was sent.").format(name=escape(sender_name(update)))
        await edit_pressed(query, text if cancelled else _("Already decided."), None)
        return
    await require_role(update, context, chat, Role.OPERATOR, _("Sending"))
    decided = await services.gate.press(chat, row.id or 0, actor=press.user_id)
    if decided.earlier:
        earlier = (
            _("This scheduled send was already confirmed; see its status.")
            if row.kind == SCHEDULE
            else _("This send was already confirmed; see its status.")
        )
        await edit_pressed(query, earlier, None)
        return
    if decided.waiting is not None:
        text = _("Confirmed by {name}; it now waits for an admin's approval.").format(
            name=escape(sender_name(update))
        )
        await edit_pressed(query, text, None)
        await show_card(context.bot, services, decided.waiting)
        return
    if decided.created is not None:
        await edit_pressed(query, await _scheduled(update, services, decided.created), None)
        return
    if decided.held is not None:
        await edit_pressed(query, held_text(decided.held), None)
        if decided.held.created.handed_over is not None:
            await post_card(services, decided.held.created.handed_over.outcome)
        return
    assert decided.request is not None
    request = decided.request
    if decided.media is not None:
        request = replace(request, media=await download_ref(context.bot, decided.media))
    await edit_pressed(
        query,
        _("Sending, confirmed by {name}.").format(name=escape(sender_name(update))),
        None,
    )
    outcome = await services.sender.send(request)
    await post_card(services, outcome, note="" if outcome.replayed else request.card_note)


def _what(row: Confirmation) -> str:
    """The subject of a refusal to decide ``row`` for someone else."""
    if row.kind == SCHEDULE:
        return _("Deciding another user's scheduled send")
    return _("Deciding another user's send")


def press_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the Send / Cancel buttons."""
    return CallbackQueryHandler(on_press, pattern=PATTERN)
