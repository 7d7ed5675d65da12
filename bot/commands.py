"""The command registry: one source for the handlers, ``/help`` and ``set_my_commands``.

Every command is a :class:`Command` with its usage, a one-line summary, the least role that
may run it and whether it is for private chats only. :func:`guarded` wraps its callback with
the checks every command shares (chat registered, role, chat type), so a handler only parses
its arguments and calls a service.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Chat as TgChat
from telegram import ChatMember, Update
from telegram.error import TelegramError

from bot.context import BotContext
from bot.services.errors import NotAllowed
from i18n import _
from storage.models import AuditOutcome, Chat, Role

Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]
_ADMIN_STATUSES = {ChatMember.ADMINISTRATOR, ChatMember.OWNER}


@dataclass(frozen=True, slots=True)
class Command:
    """One slash command of the chat contract; ``summary`` is marked ``N_``, shown translated."""

    name: str
    usage: str
    summary: str
    role: Role
    callback: Callback
    private_only: bool = False

    @property
    def help_line(self) -> str:
        """``/name usage — summary`` for /help."""
        usage = f" {self.usage}" if self.usage else ""
        return f"/{self.name}{usage} — {_(self.summary)}"


async def is_telegram_admin(update: Update, context: BotContext) -> bool:
    """Whether the sender administers the group in Telegram (anonymous admins count)."""
    message = update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None:
        return False
    if (
        message is not None
        and message.sender_chat is not None
        and (message.sender_chat.id == chat.id)
    ):
        return True
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError:
        return False
    return member.status in _ADMIN_STATUSES


async def current_role(update: Update, context: BotContext, chat: Chat, needed: Role) -> Role:
    """The sender's role, asking Telegram about admin rights only when it matters."""
    user = update.effective_user
    if user is None:
        return Role.VIEWER
    services = context.services
    if chat.kind == TgChat.PRIVATE:
        return Role.ADMIN
    stored = await services.chats.stored_role(chat.id, user.id)
    if stored is not None:
        return stored
    admin = needed == Role.ADMIN and await is_telegram_admin(update, context)
    return await services.chats.role_of(chat, user.id, is_chat_admin=admin)


async def require_role(
    update: Update, context: BotContext, chat: Chat, needed: Role, what: str
) -> None:
    """Refuse ``what`` (e.g. "/contacts add") unless the sender has at least ``needed``.

    Raises:
        NotAllowed: naming the role it needs and the sender's own.

    """
    role = await current_role(update, context, chat, needed)
    if role.rank < needed.rank:
        raise NotAllowed(
            _(
                "{what} needs the {needed} role in this chat; you are {role}. "
                "A chat admin can change it with /role."
            ).format(what=what, needed=needed.value, role=role.value)
        )


async def chat_of(update: Update, context: BotContext) -> Chat:
    """The stored chat of this update, registered on first contact (read once per update)."""
    tg_chat = update.effective_chat
    assert tg_chat is not None
    cached = context.stored_chat
    if cached is not None and cached.id == tg_chat.id:
        return cached
    title = tg_chat.title or tg_chat.full_name or tg_chat.username or ""
    chat = await context.services.chats.register(tg_chat.id, kind=tg_chat.type, title=title)
    context.stored_chat = chat
    return chat


def guarded(command: Command) -> Callback:
    """Wrap a command's callback with the chat-type and role checks.

    A refusal for the role of a command above viewer (one that changes something) is an
    audit row with the outcome ``refused``: who tried what is part of the log.
    """

    async def run(update: Update, context: BotContext) -> None:
        if update.effective_chat is None or update.effective_user is None:
            return
        if command.private_only and update.effective_chat.type != TgChat.PRIVATE:
            raise NotAllowed(
                _("/{name} works in a private chat with me only.").format(name=command.name)
            )
        chat = await chat_of(update, context)
        try:
            await require_role(update, context, chat, command.role, f"/{command.name}")
        except NotAllowed:
            if command.role != Role.VIEWER:  # an attempt to change something: audited
                await context.services.repo.audit(
                    chat.id,
                    update.effective_user.id,
                    command.name,
                    _("needs the {role} role").format(role=command.role.value),
                    AuditOutcome.REFUSED,
                )
            raise
        await command.callback(update, context)

    run.__name__ = f"cmd_{command.name}"
    return run


def visible_to(commands: list[Command], role: Role, *, private: bool) -> list[Command]:
    """The commands a user with ``role`` may run in this kind of chat."""
    return [c for c in commands if c.role.rank <= role.rank and (private or not c.private_only)]
