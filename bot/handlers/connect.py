"""/connect, /disconnect, /providers and /use; the guided credential dialogue.

Credentials are only ever typed in a private chat. ``/connect`` in a group answers with a
deep-link button; a group admin opens it and enters the credentials for the group in private.
Any message that carries a secret is deleted as soon as it is read, and no part of a value is
ever repeated in a reply or a log line.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.commands import Command, chat_of, is_telegram_admin
from bot.context import BotContext
from bot.handlers.common import message_of, reply, sender_name
from bot.handlers.senders import offer_choice
from bot.parsing import command_body, parse_pairs, take_token
from bot.render import providers_overview
from bot.services.accounts import provider_spec
from bot.services.dialogues import PendingConnect
from bot.services.errors import BadInput, NotAllowed
from bot.services.links import LIFETIME as LINK_LIFETIME
from i18n import _
from providers.registry import REGISTRY, example_route
from storage.models import Role, utcnow

log = logging.getLogger(__name__)

DIALOGUE_TIMEOUT = timedelta(minutes=10)
SKIP_WORDS = {"-", "skip"}
_CONNECT = re.compile(r"/connect(@\w+)?(\s|$)", re.IGNORECASE)
# Credential keys whose values are secret (``api_key``, passwords), from the registry.
_SECRET_KEYS = sorted({f.key for spec in REGISTRY.values() for f in spec.credentials if f.secret})
_SECRET_PAIR = re.compile(rf"(?<!\w)({'|'.join(map(re.escape, _SECRET_KEYS))})\s*=", re.IGNORECASE)


def user_of(update: Update) -> int:
    """The id of the user a guided dialogue belongs to."""
    user = update.effective_user
    if user is None:
        raise RuntimeError("update without a user")
    return user.id


def _usage() -> str:
    keys = "; ".join(
        f"{p.name}: {' '.join(f.key + '=…' for f in p.credentials)}" for p in REGISTRY.values()
    )
    return (
        "Usage: /connect &lt;provider&gt; to be asked for each value, or "
        f"/connect &lt;provider&gt; k=v … in one line ({escape(keys)})."
    )


async def delete_quietly(message: Message) -> bool:
    """Delete a message holding a secret; whether it worked."""
    try:
        return await message.delete()
    except TelegramError as exc:
        log.warning("could not delete a message holding credentials: %s", exc.message)
        return False


def _prompt(pending: PendingConnect) -> str:
    f = pending.current
    spec = REGISTRY[pending.provider]
    optional = " (optional: send - to skip)" if not f.required else ""
    target = "" if not pending.chat_title else f" for <b>{escape(pending.chat_title)}</b>"
    return (
        f"Connecting {escape(spec.display)}{target}.\n"
        f"Send {escape(_(f.prompt))} (<code>{escape(f.key)}</code>){optional}. "
        "I delete your message as soon as I read it. /cancel stops."
    )


async def _begin(
    update: Update, context: BotContext, *, chat_id: int, title: str, provider: str
) -> PendingConnect:
    spec = provider_spec(provider)
    pending = PendingConnect(chat_id, title, spec.name, list(spec.credentials))
    await context.services.dialogues.put(user_of(update), pending)
    return pending


async def connect(update: Update, context: BotContext) -> None:
    """/connect <provider> [k=v ...]."""
    message = message_of(update)
    chat = await chat_of(update, context)
    provider, rest = take_token(command_body(message.text or ""))
    if chat.kind != ChatType.PRIVATE:
        await _connect_in_group(update, context, provider)
        return
    if rest.strip():
        await delete_quietly(message)  # first: whatever follows the provider may be a secret
    if not provider:
        raise BadInput(_usage())
    spec = provider_spec(provider)
    if not rest.strip():
        pending = await _begin(update, context, chat_id=chat.id, title="", provider=spec.name)
        await reply(update, _prompt(pending))
        return
    try:
        values = parse_pairs(rest)
    except ValueError:
        # Never repeated, not even in part: a value typed without "k=" is most likely the key.
        raise BadInput(
            "One value is not k=v, so nothing was stored (your message was deleted). " + _usage()
        ) from None
    user = update.effective_user
    assert user is not None
    info = await context.services.accounts.connect(chat.id, spec.name, values, actor=user.id)
    await reply(
        update,
        f"✅ {escape(spec.display)} connected (account {escape(info.account)}). "
        "Your message with the credentials was deleted.",
    )
    await offer_choice(context.bot, context.services, chat.id, spec)


def carries_credentials(text: str) -> bool:
    """Whether a message looks like it holds credentials.

    That is a /connect with anything after the provider (``k=v`` or a bare key), or a secret
    key's ``key=value`` anywhere in the text (``api_key=…``, also as ``API_KEY = …``).
    """
    if _CONNECT.match(text) and take_token(command_body(text))[1].strip():
        return True
    return _SECRET_PAIR.search(text) is not None


async def scrub_group_secret(update: Update, context: BotContext) -> None:
    """Before any other handler: a group message carrying credentials is deleted at once.

    Runs on edited messages too, so a secret edited into an earlier message goes as well.
    Nothing in such a message is stored, repeated or run (except /connect, which only
    answers with the private-chat button).
    """
    message = message_of(update)
    if not carries_credentials(message.text or message.caption or ""):
        return
    deleted = await delete_quietly(message)
    await reply(
        update,
        "⚠️ Never type credentials in a group. "
        + (
            "I deleted your message"
            if deleted
            else "I could not delete your message: delete it yourself and rotate the key"
        )
        + "; nothing was stored. Use the private-chat button instead.",
    )
    if not _CONNECT.match(message.text or ""):
        # Anything else carrying a secret (a /send with api_key=… in its text) must not run:
        # its text would reach a provider and the database. /connect goes on to offer the
        # private-chat button, and never reads the values.
        raise ApplicationHandlerStop


async def _connect_in_group(update: Update, context: BotContext, provider: str) -> None:
    message = message_of(update)
    user = update.effective_user
    assert user is not None
    assert update.effective_chat is not None
    if not provider:
        raise BadInput(_usage())
    spec = provider_spec(provider)
    token = await context.services.links.issue(update.effective_chat.id, spec.name, actor=user.id)
    url = f"https://t.me/{context.bot.username}?start=connect-{token}"
    button = InlineKeyboardMarkup(
        [[InlineKeyboardButton(f"Enter {spec.display} credentials privately", url=url)]]
    )
    await message.reply_html(
        "Credentials are entered in a private chat with me. "
        f"The button works for {int(LINK_LIFETIME.total_seconds() // 60)} minutes, once.",
        reply_markup=button,
        do_quote=False,
    )


async def _may_administer(
    context: BotContext, chat_id: int, user_id: int, *, update: Update | None = None
) -> bool:
    stored = await context.services.chats.stored_role(chat_id, user_id)
    if stored is not None:
        return stored == Role.ADMIN
    if update is not None and update.effective_chat and update.effective_chat.id == chat_id:
        return await is_telegram_admin(update, context)
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError:
        return False
    return member.status in ("administrator", "creator")


async def start_from_deep_link(update: Update, context: BotContext, token: str) -> None:
    """/start connect-<token>: begin the guided dialogue for the group behind the token."""
    user = update.effective_user
    assert user is not None
    found = await context.services.links.peek(token)
    if not await _may_administer(context, found.chat_id, user.id):
        raise NotAllowed("Only an admin of that group can connect a provider for it.")
    await context.services.links.redeem(token)
    title = await context.services.chats.title(found.chat_id)
    pending = await _begin(
        update, context, chat_id=found.chat_id, title=title, provider=found.provider
    )
    await reply(update, _prompt(pending))


async def on_private_text(update: Update, context: BotContext) -> None:
    """A plain message in private: the next value of a guided /connect, if one is running."""
    dialogues = context.services.dialogues
    user_id = user_of(update)
    pending = await dialogues.get(user_id)
    message = message_of(update)
    if pending is None:
        await reply(update, "I only understand commands. /help lists them.")
        return
    await delete_quietly(message)
    if utcnow() - pending.started > DIALOGUE_TIMEOUT:
        await dialogues.drop(user_id)
        raise BadInput("The /connect dialogue timed out. Start it again with /connect.")
    value = (message.text or "").strip()
    current = pending.current
    if value.lower() in SKIP_WORDS:
        if current.required:
            raise BadInput(f"{current.key} is required. Send it, or /cancel.")
    elif not value or " " in value:
        raise BadInput(f"That does not look like a {current.key}. Send it again, or /cancel.")
    else:
        pending.values[current.key] = value
    pending.fields.pop(0)
    if pending.fields:
        await dialogues.put(user_id, pending)
        await reply(update, _prompt(pending))
        return
    await dialogues.drop(user_id)
    user = update.effective_user
    assert user is not None
    spec = REGISTRY[pending.provider]
    info = await context.services.accounts.connect(
        pending.chat_id, spec.name, pending.values, actor=user.id
    )
    where = f" for <b>{escape(pending.chat_title)}</b>" if pending.chat_title else ""
    await reply(
        update, f"✅ {escape(spec.display)} connected{where} (account {escape(info.account)})."
    )
    await offer_choice(context.bot, context.services, pending.chat_id, spec)
    if update.effective_chat is not None and pending.chat_id != update.effective_chat.id:
        try:
            await context.bot.send_message(
                pending.chat_id,
                f"✅ {escape(spec.display)} was connected by {escape(sender_name(update))}.",
                parse_mode="HTML",
            )
        except TelegramError as exc:
            log.warning("could not tell chat %s about the connection: %s", pending.chat_id, exc)


async def cancel_dialogue(update: Update, context: BotContext) -> bool:
    """Stop a guided /connect; whether one was running."""
    return await context.services.dialogues.drop(user_of(update))


async def disconnect(update: Update, context: BotContext) -> None:
    """/disconnect <provider>."""
    provider, _rest = take_token(command_body(message_of(update).text or ""))
    if not provider:
        example = example_route().provider.name
        raise BadInput(f"Usage: /disconnect &lt;provider&gt;, e.g. /disconnect {example}.")
    chat = await chat_of(update, context)
    user = update.effective_user
    assert user is not None
    spec = await context.services.accounts.disconnect(chat.id, provider, actor=user.id)
    await reply(update, f"{escape(spec.display)} disconnected; its credentials are deleted.")


async def providers(update: Update, context: BotContext) -> None:
    """/providers."""
    chat = await chat_of(update, context)
    creds = await context.services.accounts.connected(chat.id)
    await reply(update, providers_overview(creds, chat.default_route, chat.timezone))


async def use(update: Update, context: BotContext) -> None:
    """/use <route>[,<route>...]: the default route, or an ordered failover chain."""
    text = "".join(command_body(message_of(update).text or "").split())
    if not text:
        raise BadInput(f"Usage: /use &lt;route&gt;[,&lt;route&gt;…], e.g. /use {example_route()}.")
    chat = await chat_of(update, context)
    user = update.effective_user
    assert user is not None
    routes = await context.services.chats.use_route(chat.id, text, actor=user.id)
    providers = {r.provider.name: r.provider for r in routes}
    notes = [
        f"{escape(p.display)} is not connected yet: /connect {p.name}."
        for p in providers.values()
        if not await context.services.accounts.is_connected(chat.id, p.name)
    ]
    shown = " → ".join(f"<code>{escape(str(r))}</code>" for r in routes)
    if len(routes) == 1:
        head = f"Default route is now {shown}."
    else:
        head = (
            f"Sends now try {shown} in this order: the next route is used only when a route "
            "certainly did not send (refused credentials or input, no credit, rate limit, "
            "no connection), never after a timeout or a lost answer."
        )
    await reply(update, "\n".join([head, *notes]))


COMMANDS = (
    Command(
        "connect",
        "<provider> [k=v …]",
        "connect a provider (credentials in private)",
        Role.ADMIN,
        connect,
    ),
    Command("disconnect", "<provider>", "remove a provider's credentials", Role.ADMIN, disconnect),
    Command("providers", "", "connected providers and the default route", Role.VIEWER, providers),
    Command("use", "<route>", "set this chat's default route", Role.ADMIN, use),
)
