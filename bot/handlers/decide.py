"""A press on a stored decision: which one, and may the presser decide it.

Large sends, schedules and multicasts (Send / Cancel) and approvals (Approve / Reject /
Withdraw) share it: the press is answered at once (the outcome is told by editing the
message), and someone other than the requester needs the admin role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from telegram import CallbackQuery, Update

from bot.commands import chat_of, require_role
from bot.context import BotContext
from storage.models import Chat, Role


class Requested(Protocol):
    """A stored decision: who asked for it."""

    requested_by: int


R = TypeVar("R", bound=Requested)


@dataclass(frozen=True, slots=True)
class Press(Generic[R]):
    """A press on a decision the presser may take."""

    query: CallbackQuery
    user_id: int
    chat: Chat
    row: R
    choice: str  # the last part of the button's data: ``y`` (Send, Approve), ``n`` …

    @property
    def send(self) -> bool:
        """Send (or Approve) was pressed."""
        return self.choice == "y"


async def take_press(
    update: Update,
    context: BotContext,
    waiting: Callable[[int, int], Awaitable[R]],
    what: Callable[[R], str],
) -> Press[R] | None:
    """Read a ``<prefix>:<id>:<choice>`` press; None for an update that is no press.

    ``waiting`` finds the chat's confirmation (or refuses it); ``what`` is the whole subject
    of the refusal, translated ("Deciding another user's send").

    Raises:
        NotAllowed: someone other than the requester, below admin.

    """
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None or update.effective_chat is None:
        return None
    await query.answer()
    chat = await chat_of(update, context)
    _prefix, raw_id, choice = (query.data or "").split(":")
    row = await waiting(chat.id, int(raw_id))
    if row.requested_by != user.id:
        await require_role(update, context, chat, Role.ADMIN, what(row))
    return Press(query, user.id, chat, row, choice)
