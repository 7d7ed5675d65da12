"""/contacts, /groups and /activity: the address book and activity log kept at a provider.

Listing is for viewers; ``/contacts add`` and ``/contacts del`` need an admin, checked here the
same way the command guard checks a command's own role.
"""

from __future__ import annotations

from telegram import Update

from bot.commands import Command, chat_of, require_role
from bot.context import BotContext
from bot.handlers.common import message_of, reply
from bot.parsing import command_body, take_token
from bot.render_address_book import (
    activity_list,
    contact_added,
    contact_page,
    contacts_deleted,
    group_list,
)
from bot.services.address_book import split_provider
from i18n import N_
from storage.models import Role

ADD = frozenset({"add"})
DELETE = frozenset({"del", "delete"})


def _actor(update: Update) -> int:
    user = update.effective_user
    assert user is not None
    return user.id


async def contacts(update: Update, context: BotContext) -> None:
    """/contacts [<page>], /contacts add <name> <number>, /contacts del <id>[,<id>…]."""
    chat = await chat_of(update, context)
    provider, body = split_provider(command_body(message_of(update).text or ""))
    action, rest = take_token(body)
    book = context.services.address_books
    if action.lower() in ADD:
        await require_role(update, context, chat, Role.ADMIN, "/contacts add")  # i18n: not shown
        added = await book.add_contact(
            chat.id, rest, country=chat.country, actor=_actor(update), provider=provider
        )
        await reply(update, contact_added(added))
    elif action.lower() in DELETE:
        await require_role(update, context, chat, Role.ADMIN, "/contacts del")  # i18n: not shown
        deleted = await book.delete_contacts(
            chat.id, rest, actor=_actor(update), provider=provider
        )
        await reply(update, contacts_deleted(deleted))
    else:
        await reply(update, contact_page(await book.contacts(chat.id, body, provider=provider)))


async def groups(update: Update, context: BotContext) -> None:
    """/groups [<provider>]."""
    chat = await chat_of(update, context)
    provider, _rest = take_token(command_body(message_of(update).text or ""))
    listing = await context.services.address_books.groups(chat.id, provider=provider or None)
    await reply(update, group_list(listing))


async def activity(update: Update, context: BotContext) -> None:
    """/activity [<provider>]."""
    chat = await chat_of(update, context)
    provider, _rest = take_token(command_body(message_of(update).text or ""))
    listing = await context.services.address_books.activity(chat.id, provider=provider or None)
    await reply(update, activity_list(listing, chat.timezone))


COMMANDS = (
    Command(
        "contacts",
        "[<page>] | add <name> <number> | del <id>[,<id>…]",
        N_("the provider's address book (admins add and delete)"),
        Role.VIEWER,
        contacts,
    ),
    Command("groups", "[<provider>]", N_("the provider's contact groups"), Role.VIEWER, groups),
    Command(
        "activity",
        "[<provider>]",
        N_("the provider account's recent activity"),
        Role.VIEWER,
        activity,
    ),
)
