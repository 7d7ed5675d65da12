"""/timezone, /country and /role: chat settings and team roles."""

from __future__ import annotations

import re
from html import escape

from telegram import Update
from telegram.constants import ChatType

from bot.commands import Command, chat_of, require_role
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body, take_token
from bot.services.chats import ROLES_ARE_FOR_GROUPS
from bot.services.errors import BadInput, NotAllowed, echo
from bot.services.integers import parse_id
from bot.services.quiet import USAGE as QUIET_USAGE
from bot.services.quiet import QuietHours
from i18n import LANGUAGES, N_, _, use_language
from storage.models import Role

_USERNAME = re.compile(r"@|[A-Za-z]")
ROLE_USAGE = N_(
    "Usage: /role &lt;@user|user id&gt; &lt;admin|operator|viewer&gt;, or reply to a "
    "member's message with /role &lt;role&gt;."
)


async def timezone(update: Update, context: BotContext) -> None:
    """/timezone <Area/City>."""
    chat = await chat_of(update, context)
    arg, _rest = take_token(command_body(message_of(update).text or ""))
    if not arg:
        await reply(
            update,
            _(
                "This chat's time zone is <code>{zone}</code>. "
                "Change it with /timezone Area/City (e.g. Asia/Jakarta)."
            ).format(zone=escape(chat.timezone)),
        )
        return
    user = update.effective_user
    assert user is not None
    zone = await context.services.chats.set_timezone(chat.id, arg, actor=user.id)
    await reply(update, _("Time zone set to <code>{zone}</code>.").format(zone=escape(zone)))


async def country(update: Update, context: BotContext) -> None:
    """/country <ISO 3166 code>."""
    chat = await chat_of(update, context)
    arg, _rest = take_token(command_body(message_of(update).text or ""))
    if not arg:
        current = chat.country or _("not set (numbers need a + country code)")
        await reply(
            update,
            _("Default country: {country}. Change it with /country ID.").format(
                country=escape(current)
            ),
        )
        return
    user = update.effective_user
    assert user is not None
    region = await context.services.chats.set_country(chat.id, arg, actor=user.id)
    await reply(
        update,
        _("Numbers written without + are now read as {region} numbers.").format(
            region=escape(region)
        ),
    )


async def quiet(update: Update, context: BotContext) -> None:
    """/quiet <HH:MM>-<HH:MM>|off; alone: the chat's quiet hours."""
    chat = await chat_of(update, context)
    body = command_body(message_of(update).text or "").strip()
    zone = escape(chat.timezone)
    if not body:
        window = QuietHours.stored(chat.quiet_hours)
        now = _("none") if window is None else f"{window.label} ({zone})"
        await reply(
            update,
            _("Quiet hours: {hours}. Usage: {usage}").format(hours=now, usage=_(QUIET_USAGE)),
        )
        return
    user = update.effective_user
    assert user is not None
    window = await context.services.chats.set_quiet(chat.id, body, actor=user.id)
    if window is None:
        await reply(update, _("Quiet hours are off: sends go out when they are made."))
        return
    await reply(
        update,
        _(
            "🌙 Quiet hours: {hours} ({zone}, this chat's /timezone). Sends and scheduled "
            "runs inside the window wait until {end:%H:%M}; /send now … sends at once "
            "after a confirmation."
        ).format(hours=window.label, zone=zone, end=window.end),
    )


async def lang(update: Update, context: BotContext) -> None:
    """/lang <en|id>; alone: the chat's language and the choices (anyone may read it)."""
    chat = await chat_of(update, context)
    arg, _rest = take_token(command_body(message_of(update).text or ""))
    chats = context.services.chats
    if not arg:
        current = chats.language(chat)
        choices = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
        await reply(
            update,
            _(
                "This chat's language: {name}. Change it with /lang &lt;code&gt;: {choices}."
            ).format(name=escape(LANGUAGES[current]), choices=escape(choices)),
        )
        return
    user = update.effective_user
    assert user is not None
    await require_role(update, context, chat, Role.ADMIN, _("Changing the language"))
    code = await chats.set_language(chat.id, arg, actor=user.id)
    with use_language(code):  # the confirmation is the first answer in the new language
        await reply(
            update, _("I will answer in {name} in this chat.").format(name=LANGUAGES[code])
        )


async def role(update: Update, context: BotContext) -> None:
    """/role <user> <role>, or as a reply: /role <role>; alone: list the roles."""
    message = message_of(update)
    chat = await chat_of(update, context)
    if chat.kind == ChatType.PRIVATE:
        raise NotAllowed(_(ROLES_ARE_FOR_GROUPS))
    first, rest = take_token(command_body(message.text or ""))
    second, _rest = take_token(rest)
    services = context.services
    if not first:
        members = await services.chats.members(chat.id)
        if not members:
            await reply(
                update,
                _("No roles set. Group admins are admins; others are operators.")
                + "\n"
                + _(ROLE_USAGE),
            )
            return
        lines = [_("<b>Roles</b>")] + [
            f"• {escape('@' + m.username if m.username else str(m.user_id))}: {m.role}"
            for m in members
        ]
        await reply(update, "\n".join(lines))
        return
    target = message.reply_to_message.from_user if message.reply_to_message else None
    if target is not None and not second:
        user_id, username, role_name = target.id, target.username or "", first
    else:
        if not second:
            raise BadInput(_(ROLE_USAGE))
        role_name, username = second, first.lstrip("@")
        if not _USERNAME.match(first):  # usernames start with a letter: anything else is an id
            user_id, username = parse_id(first, what=_("user")), ""
        else:
            found = await services.chats.find_member(chat.id, first)
            if found is None:
                raise BadInput(
                    _(
                        "I do not know {user} yet (Telegram does not tell bots who a "
                        "username is). Reply to one of their messages with /role &lt;role&gt;, "
                        "or use their numeric id."
                    ).format(user=echo(first))
                )
            user_id = found
    actor = update.effective_user
    assert actor is not None
    given = await services.chats.set_role(
        chat, user_id=user_id, username=username, role_name=role_name, actor=actor.id
    )
    who = f"@{username}" if username else str(user_id)
    await reply(
        update,
        _("{user} is now {role} in this chat.").format(user=escape(who), role=given.value),
    )


COMMANDS = (
    Command(
        "timezone", "<Area/City>", N_("time zone for schedules and display"), Role.ADMIN, timezone
    ),
    Command(
        "country",
        "<ISO 3166 code>",
        N_("default country for numbers without +"),
        Role.ADMIN,
        country,
    ),
    Command(
        "quiet",
        "<HH:MM>-<HH:MM>|off",
        N_("quiet hours: sends and schedules inside the window wait for its end"),
        Role.ADMIN,
        quiet,
    ),
    Command("lang", "<en|id>", N_("the chat's language (English, Indonesian)"), Role.VIEWER, lang),
    Command(
        "role",
        "<user> <admin|operator|viewer>",
        N_("team roles in a group chat"),
        Role.ADMIN,
        role,
    ),
)
