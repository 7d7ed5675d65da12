"""/schedule, /scheduled, /cancel and /reschedule, and the list's "Cancel" buttons.

``/cancel`` without an argument still stops a guided /connect (anyone may do that); with an
id it cancels a scheduled send, which needs the operator role like the other schedule commands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from bot.cards import post_card
from bot.commands import Command, chat_of, require_role
from bot.context import BotContext
from bot.handlers import connect
from bot.handlers.common import message_of, parse_id, reply, sender_name
from bot.handlers.send import USAGE as SEND_USAGE
from bot.handlers.send import parse_send
from bot.parsing import command_body, take_token
from bot.schedule_text import LIST_LIMIT, confirmation, handed_over_note, schedule_list
from bot.services.chats import route_from
from bot.services.errors import BadInput
from bot.services.scheduling import Cancelled, ScheduleDraft
from bot.services.when import EXAMPLES, Recurrence
from storage.models import Role

log = logging.getLogger(__name__)

USAGE = "/schedule &lt;when&gt; [&lt;route&gt;] &lt;to&gt;[,&lt;to&gt;…] &lt;text&gt;"
CANCEL_DATA = "sched:cancel:"
CANCEL_PATTERN = r"^sched:cancel:\d+$"
BUTTONS_PER_ROW = 3


async def schedule(update: Update, context: BotContext) -> None:
    """/schedule <when> [<route>] <to>[,<to>...] <text>."""
    message = message_of(update)
    chat = await chat_of(update, context)
    quoted = message.reply_to_message
    if quoted is not None and (quoted.photo or quoted.document):
        raise BadInput(
            "Scheduled sends carry text only: media is not kept for later. "
            "Send media now with /send, as a reply to it."
        )
    body = command_body(message.text or "")
    if not body:
        raise BadInput(f"Usage: {USAGE}\n&lt;when&gt; is one of: {EXAMPLES}.")
    services = context.services
    when, rest = services.schedules.read_when(chat, body)
    if not rest.strip():
        raise BadInput(f"Who gets it, and what does it say? Usage: {USAGE}")
    try:
        route_text, recipients, text = parse_send(chat, rest)
    except BadInput as exc:
        raise BadInput(exc.message.replace(SEND_USAGE, USAGE)) from None
    route = route_from(route_text) if route_text else await services.chats.default_route(chat)
    if not text.strip():
        raise BadInput(f"The message text is empty. Usage: {USAGE}")
    user = update.effective_user
    assert user is not None
    created = await services.schedules.create(
        ScheduleDraft(
            chat=chat,
            actor_id=user.id,
            actor_name=sender_name(update),
            when=when,
            route=route,
            recipients=recipients,
            text=text,
        )
    )
    handed = created.handed_over
    if handed is None:
        await reply(update, confirmation(created.schedule))
        return
    # Sent to the provider already: its card is tracked like any send's.
    await post_card(services, handed.outcome, note=handed_over_note(handed.schedule))


def keyboard(ids: Sequence[int]) -> InlineKeyboardMarkup | None:
    """One "Cancel #id" button per listed schedule."""
    buttons = [
        InlineKeyboardButton(f"Cancel #{i}", callback_data=f"{CANCEL_DATA}{i}")
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
    who = f" by {escape(by)}" if by else ""
    if result.after_current_run:
        return (
            f"🚫 Scheduled send #{row.id} is being sent right now; that run goes out, and no "
            f"further runs will follow (cancelled{who})."
        )
    if row.recurrence:
        label = Recurrence(row.recurrence).label
        return f"🚫 Scheduled send #{row.id} ({label}) cancelled{who}: no further runs."
    return f"🚫 Scheduled send #{row.id} cancelled{who}; it will not be sent."


async def cancel(update: Update, context: BotContext) -> None:
    """/cancel <id> cancels a scheduled send; /cancel alone stops a guided /connect."""
    token, _ = take_token(command_body(message_of(update).text or ""))
    if not token:
        if connect.cancel_dialogue(context):
            await reply(update, "Cancelled. Nothing was stored.")
        else:
            await reply(
                update,
                "There is nothing to cancel. To cancel a scheduled send: /cancel &lt;id&gt; "
                "(/scheduled lists them).",
            )
        return
    chat = await chat_of(update, context)
    await require_role(update, context, chat, Role.OPERATOR, "Cancelling a scheduled send")
    schedule_id = parse_id(token, what="scheduled send")
    user = update.effective_user
    assert user is not None
    result = await context.services.schedules.cancel(
        chat.id, schedule_id, actor=user.id, name=sender_name(update)
    )
    await reply(update, cancelled_text(result))


async def reschedule(update: Update, context: BotContext) -> None:
    """/reschedule <id> <when>."""
    chat = await chat_of(update, context)
    token, rest = take_token(command_body(message_of(update).text or ""))
    if not token or not rest.strip():
        raise BadInput(
            f"Usage: /reschedule &lt;id&gt; &lt;when&gt;, e.g. /reschedule 3 tomorrow 09:00. "
            f"&lt;when&gt; is one of: {EXAMPLES}."
        )
    schedule_id = parse_id(token, what="scheduled send")
    user = update.effective_user
    assert user is not None
    row, kept = await context.services.schedules.reschedule(chat, schedule_id, rest, actor=user.id)
    await reply(update, confirmation(row, verb="Rescheduled", kept_rule=kept))


async def on_cancel_button(update: Update, context: BotContext) -> None:
    """A "Cancel #id" button under /scheduled."""
    query = update.callback_query
    if query is None or update.effective_chat is None or update.effective_user is None:
        return
    await query.answer()  # stop the button's spinner; the outcome is posted in the chat
    chat = await chat_of(update, context)
    await require_role(update, context, chat, Role.OPERATOR, "Cancelling a scheduled send")
    schedule_id = int((query.data or "").rsplit(":", 1)[-1])
    result = await context.services.schedules.cancel(
        chat.id, schedule_id, actor=update.effective_user.id, name=sender_name(update)
    )
    rows = await context.services.schedules.open_for_chat(chat.id)
    try:
        await query.edit_message_text(
            schedule_list(rows),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard([r.id for r in rows if r.id is not None and not r.provider_ref]),
        )
    except TelegramError as exc:
        log.info("could not refresh the schedule list: %s", exc.message)
    await context.bot.send_message(
        chat.id, cancelled_text(result, by=sender_name(update)), parse_mode=ParseMode.HTML
    )


def cancel_button_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the list's Cancel buttons."""
    return CallbackQueryHandler(on_cancel_button, pattern=CANCEL_PATTERN)


COMMANDS = (
    Command(
        "schedule",
        "<when> [<route>] <to>[,<to>…] <text>",
        "send later, once or repeating (in 2h, tomorrow 09:00, every day 09:00)",
        Role.OPERATOR,
        schedule,
    ),
    Command("scheduled", "", "pending scheduled sends of this chat", Role.VIEWER, scheduled),
    Command(
        "cancel", "[<id>]", "cancel a scheduled send, or a running /connect", Role.VIEWER, cancel
    ),
    Command("reschedule", "<id> <when>", "move a scheduled send", Role.OPERATOR, reschedule),
)
