"""/schedule, /scheduled, /cancel and /reschedule, and the list's "Cancel" buttons.

``/cancel`` without an argument still stops a guided /connect (anyone may do that); with an
id it cancels a scheduled send, which needs the operator role like the other schedule commands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape, unescape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from bot.cards import post_card
from bot.commands import Command, chat_of, current_role, require_role
from bot.context import BotContext
from bot.handlers import connect
from bot.handlers.approvals import requester_role, show_card
from bot.handlers.common import edit_pressed, message_of, reply, sender_name
from bot.handlers.confirm import ask
from bot.handlers.send import USAGE as SEND_USAGE
from bot.handlers.send import parse_send
from bot.parsing import command_body, take_token
from bot.render_lists import addressed_note
from bot.schedule_text import LIST_LIMIT, confirmation, handed_over_note, schedule_list
from bot.services import Services
from bot.services.approvals import Waiting
from bot.services.chats import route_from
from bot.services.errors import BadInput, UserError
from bot.services.integers import parse_id, read_id
from bot.services.scheduling import Cancelled, ScheduleDraft
from bot.services.stoplist import skipped_note
from bot.services.when import EXAMPLES, Recurrence, When, describe_time
from i18n import N_, _
from storage.models import Chat, Role

log = logging.getLogger(__name__)

TOAST_LIMIT = 200  # Telegram's limit for a callback answer
USAGE = "/schedule &lt;when&gt; [&lt;route&gt;] &lt;to&gt;[,&lt;to&gt;…] &lt;text&gt;"
CANCEL_DATA = "sched:cancel:"  # a "Cancel #id" button of the /scheduled list
CARD_CANCEL_DATA = "sched:card:"  # the Cancel button on a schedule's confirmation
BUTTONS_PER_ROW = 3


async def schedule(update: Update, context: BotContext) -> None:
    """/schedule <when> [<route>] <to>[,<to>...] <text>."""
    message = message_of(update)
    chat = await chat_of(update, context)
    quoted = message.reply_to_message
    if quoted is not None and (quoted.photo or quoted.document):
        raise BadInput(
            _(
                "Scheduled sends carry text only: media is not kept for later. "
                "Send media now with /send, as a reply to it."
            )
        )
    body = command_body(message.text or "")
    if not body:
        raise BadInput(
            _("Usage: {usage}\n&lt;when&gt; is one of: {examples}.").format(
                usage=USAGE, examples=EXAMPLES
            )
        )
    services = context.services
    when, rest = services.schedules.read_when(chat, body)
    if not rest.strip():
        raise BadInput(_("Who gets it, and what does it say? Usage: {usage}").format(usage=USAGE))
    try:
        route_text, recipients, text = parse_send(chat, rest)
    except BadInput as exc:
        raise BadInput(exc.message.replace(_(SEND_USAGE), USAGE)) from None
    chain = [route_from(route_text)] if route_text else await services.chats.default_chain(chat)
    if not text.strip():
        raise BadInput(_("The message text is empty. Usage: {usage}").format(usage=USAGE))
    user = update.effective_user
    assert user is not None
    # A list's numbers and a template's texts are taken now: the schedule keeps them.
    sending = await services.addressing.prepare(chat, chain[0], recipients, text)
    draft = ScheduleDraft(
        chat=chat,
        actor_id=user.id,
        actor_name=sender_name(update),
        when=when,
        route=chain[0],
        fallbacks=tuple(chain[1:]),
        recipients=sending.recipients,
        text=sending.text,
        texts=sending.texts,
    )
    plan = await services.gate.check_schedule(
        chat, draft, role=await requester_role(update, context, chat)
    )
    if isinstance(plan, Waiting):  # scheduled once another admin approves it
        await show_card(context.bot, services, plan)
        return
    if plan is not None:  # many recipients: scheduled once Send is pressed
        await ask(update, plan)
        return
    created = await services.schedules.create(draft)
    note = "\n".join(filter(None, [addressed_note(sending), quiet_note(services, chat, when)]))
    if created.stopped:
        note = "\n".join(filter(None, [note, escape(f"🚫 {skipped_note(created.stopped)}.")]))
    handed = created.handed_over
    if handed is None:
        assert created.schedule.id is not None
        await message_of(update).reply_html(
            "\n".join(filter(None, [confirmation(created.schedule), note])),
            reply_markup=card_keyboard(created.schedule.id),
            do_quote=False,
        )
        return
    # Sent to the provider already: its card is tracked like any send's.
    lines = [handed_over_note(handed.schedule), note]
    await post_card(services, handed.outcome, note="\n".join(filter(None, lines)))


def quiet_note(services: Services, chat: Chat, when: When) -> str:
    """A line saying the first run falls inside quiet hours, and when it will go instead."""
    until = services.gate.quiet_until(chat, when.at)
    if until is None:
        return ""
    return _("🌙 That is inside this chat's quiet hours: it waits until {when}.").format(
        when=escape(describe_time(until, chat.timezone))
    )


def card_keyboard(schedule_id: int) -> InlineKeyboardMarkup:
    """The Cancel button under a new schedule's confirmation (the schedule's card)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(_("🚫 Cancel"), callback_data=f"{CARD_CANCEL_DATA}{schedule_id}")]]
    )


def keyboard(ids: Sequence[int]) -> InlineKeyboardMarkup | None:
    """One "Cancel #id" button per listed schedule."""
    buttons = [
        InlineKeyboardButton(_("Cancel #{id}").format(id=i), callback_data=f"{CANCEL_DATA}{i}")
        for i in ids[:LIST_LIMIT]
    ]
    if not buttons:
        return None
    rows = [buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows)


async def scheduled(update: Update, context: BotContext) -> None:
    """/scheduled: the chat's pending sends with Cancel buttons."""
    chat = await chat_of(update, context)
    rows = await context.services.schedules.open_for_chat(chat.id)
    await message_of(update).reply_html(
        schedule_list(rows),
        reply_markup=keyboard([r.id for r in rows if r.id is not None and not r.provider_ref]),
        do_quote=False,
    )


def cancelled_text(result: Cancelled, by: str = "") -> str:
    """What the chat is told after a cancel."""
    row = result.schedule
    values = {
        "id": row.id,
        "name": escape(by),
        "rule": Recurrence(row.recurrence).label if row.recurrence else "",
    }
    if result.after_current_run:
        text = (
            _(
                "🚫 Scheduled send #{id} is being sent right now; that run goes out, and no "
                "further runs will follow (cancelled by {name})."
            )
            if by
            else _(
                "🚫 Scheduled send #{id} is being sent right now; that run goes out, and no "
                "further runs will follow (cancelled)."
            )
        )
    elif row.recurrence:
        text = (
            _("🚫 Scheduled send #{id} ({rule}) cancelled by {name}: no further runs.")
            if by
            else _("🚫 Scheduled send #{id} ({rule}) cancelled: no further runs.")
        )
    else:
        text = (
            _("🚫 Scheduled send #{id} cancelled by {name}; it will not be sent.")
            if by
            else _("🚫 Scheduled send #{id} cancelled; it will not be sent.")
        )
    return text.format(**values)


async def cancel(update: Update, context: BotContext) -> None:
    """/cancel <id> cancels a scheduled send; /cancel alone stops a guided /connect."""
    token, _rest = take_token(command_body(message_of(update).text or ""))
    if not token:
        if await connect.cancel_dialogue(update, context):
            await reply(update, _("Cancelled. Nothing was stored."))
        else:
            await reply(
                update,
                _(
                    "There is nothing to cancel. To cancel a scheduled send: /cancel &lt;id&gt; "
                    "(/scheduled lists them)."
                ),
            )
        return
    chat = await chat_of(update, context)
    await require_role(update, context, chat, Role.OPERATOR, _("Cancelling a scheduled send"))
    schedule_id = parse_id(token, what=_("scheduled send"))
    await reply(update, cancelled_text(await cancel_as_sender(update, context, chat, schedule_id)))


async def cancel_as_sender(
    update: Update, context: BotContext, chat: Chat, schedule_id: int
) -> Cancelled:
    """Cancel with the sender's rights: operators their own schedules, admins anyone's.

    /cancel, the list's buttons and a schedule card's button all go through here.
    """
    await require_role(update, context, chat, Role.OPERATOR, _("Cancelling a scheduled send"))
    role = await current_role(update, context, chat, Role.ADMIN)
    user = update.effective_user
    assert user is not None
    return await context.services.schedules.cancel(
        chat.id, schedule_id, actor=user.id, name=sender_name(update), anyones=role == Role.ADMIN
    )


async def reschedule(update: Update, context: BotContext) -> None:
    """/reschedule <id> <when>."""
    chat = await chat_of(update, context)
    token, rest = take_token(command_body(message_of(update).text or ""))
    if not token or not rest.strip():
        raise BadInput(
            _(
                "Usage: /reschedule &lt;id&gt; &lt;when&gt;, e.g. /reschedule 3 tomorrow 09:00. "
                "&lt;when&gt; is one of: {examples}."
            ).format(examples=EXAMPLES)
        )
    schedule_id = parse_id(token, what=_("scheduled send"))
    user = update.effective_user
    assert user is not None
    role = await current_role(update, context, chat, Role.ADMIN)
    row, kept = await context.services.schedules.reschedule(
        chat, schedule_id, rest, actor=user.id, anyones=role == Role.ADMIN
    )
    await reply(update, confirmation(row, rescheduled=True, kept_rule=kept))


def cancel_target(data: object) -> int | None:
    """The schedule id in a "Cancel #id" button's data; None when the data is not one."""
    if not isinstance(data, str) or not data.startswith(CANCEL_DATA):
        return None
    return read_id(data.removeprefix(CANCEL_DATA))


async def on_cancel_button(update: Update, context: BotContext) -> None:
    """A "Cancel #id" button under /scheduled."""
    query = update.callback_query
    if query is None or update.effective_chat is None or update.effective_user is None:
        return
    await query.answer()  # stop the button's spinner; the outcome is posted in the chat
    chat = await chat_of(update, context)
    schedule_id = cancel_target(query.data)
    assert schedule_id is not None  # the handler's pattern
    result = await cancel_as_sender(update, context, chat, schedule_id)
    rows = await context.services.schedules.open_for_chat(chat.id)
    open_ids = [r.id for r in rows if r.id is not None and not r.provider_ref]
    await edit_pressed(query, schedule_list(rows), keyboard(open_ids))
    await context.bot.send_message(
        chat.id, cancelled_text(result, by=sender_name(update)), parse_mode=ParseMode.HTML
    )


def card_cancel_target(data: object) -> int | None:
    """The schedule id of a schedule card's Cancel button; None when the data is not one."""
    if not isinstance(data, str) or not data.startswith(CARD_CANCEL_DATA):
        return None
    return read_id(data.removeprefix(CARD_CANCEL_DATA))


async def on_card_cancel_button(update: Update, context: BotContext) -> None:
    """The Cancel button on a schedule's confirmation: one answer, an alert when refused.

    The chat hears who cancelled it (as from the list); the button goes from the card.
    """
    query = update.callback_query
    assert query is not None
    schedule_id = card_cancel_target(query.data)
    assert schedule_id is not None  # the handler's pattern
    try:
        if query.message is None:
            raise BadInput(_("This button only works in the chat the schedule belongs to."))
        chat = await chat_of(update, context)
        result = await cancel_as_sender(update, context, chat, schedule_id)
    except UserError as exc:
        await query.answer(unescape(exc.message)[:TOAST_LIMIT], show_alert=True)
        return
    await query.answer(_("Scheduled send #{id} cancelled.").format(id=schedule_id))
    try:
        await query.edit_message_reply_markup(None)
    except TelegramError as exc:  # too old or gone: the cancel itself stands
        log.info("left the Cancel button of schedule %s: %s", schedule_id, exc.message)
    await context.bot.send_message(
        chat.id, cancelled_text(result, by=sender_name(update)), parse_mode=ParseMode.HTML
    )


def card_cancel_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of a schedule card's Cancel button (other data: the stale-button answer)."""
    return CallbackQueryHandler(
        on_card_cancel_button, pattern=lambda data: card_cancel_target(data) is not None
    )


def cancel_button_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the list's Cancel buttons (other data goes to the stale-button answer)."""
    return CallbackQueryHandler(
        on_cancel_button, pattern=lambda data: cancel_target(data) is not None
    )


COMMANDS = (
    Command(
        "schedule",
        "<when> [<route>] <to>[,<to>…] <text>|template:<name> [key=value …]",
        N_(
            "send later, once or repeating (in 2h, tomorrow 09:00, every day 09:00); a list's "
            "numbers are taken when scheduled"
        ),
        Role.OPERATOR,
        schedule,
    ),
    Command("scheduled", "", N_("pending scheduled sends of this chat"), Role.VIEWER, scheduled),
    Command(
        "cancel",
        "[<id>]",
        N_("cancel a scheduled send, or a running /connect"),
        Role.VIEWER,
        cancel,
    ),
    Command("reschedule", "<id> <when>", N_("move a scheduled send"), Role.OPERATOR, reschedule),
)
