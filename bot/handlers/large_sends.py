"""The buttons of a large send's card: Stop while it runs, Retry failed once it ended.

Stop is for the send's author (an operator, as for ``/send``) or an admin; Retry failed
starts a new send as whoever presses it, so it needs the operator role. Both answer with a
toast (an alert when refused); the card itself is edited by the tracker within its pacing.
"""

from __future__ import annotations

from telegram import CallbackQuery, Update

from bot.cards import RETRY, post_card
from bot.commands import chat_of, require_role
from bot.context import BotContext
from bot.handlers.approvals import requester_role, show_card
from bot.handlers.common import sender_name
from bot.handlers.confirm import ask, tell_held
from bot.services.approvals import Waiting
from bot.services.errors import UserError
from bot.services.gate import Held, Plan
from i18n import _, ngettext
from storage.models import Progress, Role

TOAST_LIMIT = 200  # Telegram's limit for a callback answer


async def on_press(update: Update, context: BotContext, action: str, batch_id: int) -> None:
    """A Stop or Retry failed press on a large send's card."""
    query = update.callback_query
    assert query is not None
    if action == RETRY:
        await _retry(update, context, query, batch_id)
        return
    try:
        text = await _stop(update, context, batch_id)
    except UserError as exc:
        await query.answer(exc.message[:TOAST_LIMIT], show_alert=True)
        return
    await query.answer(text[:TOAST_LIMIT], show_alert=True)


async def _stop(update: Update, context: BotContext, batch_id: int) -> str:
    user = update.effective_user
    assert user is not None
    chat = await chat_of(update, context)
    service = context.services.large_sends
    batch = await service.batch(chat.id, batch_id)
    if batch.created_by != user.id:
        await require_role(update, context, chat, Role.ADMIN, _("Stopping another user's send"))
    else:
        await require_role(update, context, chat, Role.OPERATOR, _("Stopping a send"))
    outcome = await service.stop(chat.id, batch_id, actor=user.id, by=sender_name(update))
    if outcome.stopped is None:
        if outcome.progress == Progress.STOPPED.value:
            return _("Send {id} was stopped already.").format(id=batch_id)
        return _("Send {id} is not running any more: nothing to stop.").format(id=batch_id)
    not_sent = outcome.stopped.not_sent
    return ngettext(
        "Send {id} stopped: {count:,} recipient will not get it. "
        "Those already handed to the provider go on; the card shows them.",
        "Send {id} stopped: {count:,} recipients will not get it. "
        "Those already handed to the provider go on; the card shows them.",
        not_sent,
    ).format(id=batch_id, count=not_sent)


async def _retry(update: Update, context: BotContext, query: CallbackQuery, batch_id: int) -> None:
    """Plan, answer, then send: a refusal after the answer goes to the chat (error handler)."""
    user = update.effective_user
    assert user is not None
    services = context.services
    try:
        chat = await chat_of(update, context)
        await require_role(update, context, chat, Role.OPERATOR, _("Retry failed"))
        plan = await services.large_sends.retry_plan(
            chat.id, batch_id, actor_id=user.id, actor_name=sender_name(update)
        )
    except UserError as exc:
        await query.answer(exc.message[:TOAST_LIMIT], show_alert=True)
        return
    if plan.earlier is not None:
        text = _("Send {id} was retried already: send {earlier}.").format(
            id=batch_id, earlier=plan.earlier.id
        )
        await query.answer(text, show_alert=True)
        return
    # A new send like any other: many recipients wait for a Send press, quiet hours hold it.
    assert plan.request is not None
    verdict = await services.gate.check_send(
        chat, plan.request, role=await requester_role(update, context, chat)
    )
    if isinstance(verdict, Waiting):
        await query.answer(
            _("Retry of send {id}: it waits for an admin's approval.").format(id=batch_id)
        )
        await show_card(context.bot, services, verdict)
        return
    if isinstance(verdict, Plan):
        await query.answer(
            _("Retry of send {id}: press Send below to go ahead.").format(id=batch_id)
        )
        await ask(update, verdict)
        return
    if isinstance(verdict, Held):
        await query.answer(
            _("Retry of send {id}: held by this chat's quiet hours.").format(id=batch_id)
        )
        await tell_held(update, services, verdict)
        return
    # Answered before the send: a large one takes longer than Telegram waits for an answer.
    await query.answer(
        ngettext(
            "Retrying the {count:,} failed recipient of send {id}.",
            "Retrying the {count:,} failed recipients of send {id}.",
            plan.count,
        ).format(count=plan.count, id=batch_id)
    )
    outcome = await services.large_sends.retry(plan)
    await post_card(services, outcome)
