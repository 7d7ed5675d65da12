"""/start and /help: what the bot does and the commands this user may use here."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from telegram import Update
from telegram.constants import ChatType

from bot.commands import Command, chat_of, current_role, visible_to
from bot.context import BotContext
from bot.handlers.common import reply
from i18n import N_, _
from providers.registry import REGISTRY
from storage.models import Role


def intro() -> str:
    """What the bot does, naming the registry's providers (``A``, ``A or B``, ``A, B or C``)."""
    names = [escape(p.display) for p in REGISTRY.values()]
    through = (
        names[-1]
        if len(names) < 2
        else _("{names} or {last}").format(names=", ".join(names[:-1]), last=names[-1])
    )
    return _(
        "<b>chatops-bridge</b> sends SMS and WhatsApp messages through {providers} from this "
        "chat and shows what happened to them.\n"
        "Connect a provider with /connect, then /send a message and follow it with /status."
    ).format(providers=through)


def inline_help(bot_username: str) -> str:
    """The /help line about inline mode (anyone may use it)."""
    mention = escape(f"@{bot_username}") if bot_username else _("@&lt;this bot&gt;")
    return _(
        "Inline mode: type {mention} &lt;message id or number&gt; in any chat to share the "
        "status card of one of your messages (from chats you are a member of)."
    ).format(mention=mention)


def help_text(
    commands: Sequence[Command], role: Role, *, private: bool, bot_username: str = ""
) -> str:
    """The /help reply: intro and the commands this role may run in this chat."""
    lines = [intro(), "", _("<b>Your commands</b> (role: {role}):").format(role=role.value)]
    lines.extend(escape(c.help_line) for c in visible_to(list(commands), role, private=private))
    lines.append("")
    lines.append(inline_help(bot_username))
    return "\n".join(lines)


async def show_help(update: Update, context: BotContext) -> None:
    """Reply with the commands this user may run here."""
    from bot.handlers import COMMANDS  # the full registry, built after this module

    chat = await chat_of(update, context)
    role = await current_role(update, context, chat, Role.ADMIN)
    private = chat.kind == ChatType.PRIVATE
    await reply(
        update, help_text(COMMANDS, role, private=private, bot_username=context.bot.username)
    )


async def start(update: Update, context: BotContext) -> None:
    """/start, or /start connect-<token> from a group's deep link."""
    if context.args and context.args[0].startswith("connect-"):
        from bot.handlers.connect import start_from_deep_link

        await start_from_deep_link(update, context, context.args[0].removeprefix("connect-"))
        return
    await show_help(update, context)


COMMANDS = (
    Command("start", "", N_("what this bot does"), Role.VIEWER, start),
    Command("help", "", N_("the commands you may use here"), Role.VIEWER, show_help),
)
