"""/multicast <template-id> [audience=<filter-type>[:<value>]] [key=value …]: confirmed first.

The command only shows what would happen, with Send / Cancel buttons; the press sends it
(:mod:`bot.services.multicasts`). The requester or a chat admin may press.
"""

from __future__ import annotations

import shlex
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler

from bot.cards import post_card
from bot.commands import Command, chat_of, require_role
from bot.context import BotContext
from bot.handlers.approvals import requester_role, show_card
from bot.handlers.common import message_of, sender_name
from bot.handlers.decide import take_press
from bot.parsing import command_body, take_token
from bot.render_gate import send_footer
from bot.services.approvals import Waiting
from bot.services.errors import BadInput
from bot.services.multicasts import MulticastPlan, describe, read_multicast
from i18n import N_, _
from storage.models import Role

USAGE = (
    "/multicast &lt;template-id&gt; [audience=&lt;filter-type&gt;[:&lt;value&gt;]] [key=value …]"
)
DATA = "mc:"
PATTERN = r"^mc:\d{1,18}:[yn]$"


def plan_text(plan: MulticastPlan) -> str:
    """What the Send button will do (HTML)."""
    audience, _described = describe(plan.request)
    lines = [
        _("<b>Multicast via {route}</b>").format(route=escape(str(plan.route))),
        _("Template: <code>{template}</code>").format(template=escape(plan.request.template_id)),
        _("Audience: <code>{audience}</code> (everyone the provider counts in it)").format(
            audience=escape(audience)
        ),
    ]
    for key, value in plan.request.data.items():
        lines.append(f"• {escape(key)} = {escape(value)}")
    lines.extend(send_footer(approve=plan.approve))
    return "\n".join(lines)


def template_pairs(text: str) -> dict[str, str]:
    """``key=value`` pairs, names kept as typed; a value with spaces is quoted (``k="a b"``).

    Raises:
        BadInput: a token without ``=``, or an unclosed quote.

    """
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise BadInput(_("A quote is not closed. Usage: {usage}").format(usage=USAGE)) from exc
    pairs: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise BadInput(
                _("“{token}” is not key=value. Usage: {usage}").format(
                    token=escape(token), usage=USAGE
                )
            )
        pairs[key] = value
    return pairs


async def multicast(update: Update, context: BotContext) -> None:
    """Show the multicast with Send / Cancel buttons."""
    message = message_of(update)
    chat = await chat_of(update, context)
    template, rest = take_token(command_body(message.text or ""))
    if not template:
        raise BadInput(_("Usage: {usage}").format(usage=USAGE))
    pairs = template_pairs(rest)
    audience = pairs.pop("audience", None)
    request = read_multicast(template, audience, pairs)
    user = update.effective_user
    assert user is not None
    role = await requester_role(update, context, chat)
    approve = context.services.approvals.needed(chat, role, 0, unknown=True)
    plan = await context.services.multicasts.plan(
        chat.id, user.id, request, actor_name=sender_name(update), approve=approve
    )
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("Send"), callback_data=f"{DATA}{plan.confirmation_id}:y"),
                InlineKeyboardButton(_("Cancel"), callback_data=f"{DATA}{plan.confirmation_id}:n"),
            ]
        ]
    )
    await message.reply_html(plan_text(plan), reply_markup=buttons, do_quote=False)


async def on_press(update: Update, context: BotContext) -> None:
    """Send or Cancel: the requester or an admin; a second press never sends again."""
    services = context.services
    press = await take_press(update, context, services.multicasts.waiting, _deciding)
    if press is None:
        return
    query, chat, row = press.query, press.chat, press.row
    if not press.send:
        cancelled = await services.multicasts.cancel(chat.id, row.id or 0, actor=press.user_id)
        text = _("Multicast cancelled; nothing was sent.") if cancelled else _("Already decided.")
        await query.edit_message_text(text, parse_mode=ParseMode.HTML)
        return
    await require_role(update, context, chat, Role.OPERATOR, _("Sending a multicast"))
    outcome = await services.multicasts.confirm(
        chat, row.id or 0, actor=press.user_id, actor_name=sender_name(update)
    )
    if isinstance(outcome, Waiting):
        text = _("Confirmed by {name}; it now waits for an admin's approval.").format(
            name=escape(sender_name(update))
        )
        await query.edit_message_text(text, parse_mode=ParseMode.HTML)
        await show_card(context.bot, services, outcome)
        return
    if outcome is None:
        await query.edit_message_text(_("This multicast was already sent; see its status card."))
        return
    await query.edit_message_text(
        _("Multicast sent by {name}.").format(name=escape(sender_name(update)))
    )
    await post_card(services, outcome)


def _deciding(_row: object) -> str:
    return _("Deciding another user's multicast")


def press_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the Send / Cancel buttons."""
    return CallbackQueryHandler(on_press, pattern=PATTERN)


COMMANDS = (
    Command(
        "multicast",
        "<template-id> [audience=<filter-type>[:<value>]] [key=value …]",
        N_("a template broadcast to a provider's audience, confirmed with a button first"),
        Role.OPERATOR,
        multicast,
    ),
)
