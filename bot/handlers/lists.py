"""/lists, /list add|del, the Replace / Keep buttons; /templates, /template add|del.

Reading is for viewers; adding and deleting need an admin, checked here as the command guard
checks a command's own role. ``/list add <name>`` replies to the document that holds the
numbers: what its name and size already tell is refused before the download.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler

from bot.commands import Command, chat_of, require_role
from bot.context import BotContext
from bot.handlers.attachment import download_file
from bot.handlers.common import edit_pressed, message_of, reply, sender_name
from bot.parsing import command_body, take_token
from bot.render_lists import (
    decided,
    deleted,
    list_table,
    template_saved,
    template_table,
    uploaded,
)
from bot.services.errors import BadInput
from i18n import N_, _
from storage.models import Role

ADD = frozenset({"add"})
DELETE = frozenset({"del", "delete"})
LIST_USAGE = N_(
    "/list add &lt;name&gt; (as a reply to a .csv or .txt file of numbers) · "
    "/list del &lt;name&gt; · /lists"
)
TEMPLATE_USAGE = N_(
    "/template add &lt;name&gt; &lt;text with {placeholders}&gt; · /template del &lt;name&gt; · "
    "/templates"
)
DATA = "lst:"
PATTERN = r"^lst:\d{1,18}:[rk]$"


def _actor(update: Update) -> int:
    user = update.effective_user
    assert user is not None
    return user.id


async def lists(update: Update, context: BotContext) -> None:
    """/lists: the chat's recipient lists."""
    chat = await chat_of(update, context)
    rows = await context.services.lists.all(chat.id)
    await reply(update, list_table(rows, chat.timezone))


async def list_command(update: Update, context: BotContext) -> None:
    """/list add <name> (a reply to a document), /list del <name>; /list alone lists them."""
    chat = await chat_of(update, context)
    message = message_of(update)
    action, rest = take_token(command_body(message.text or ""))
    name, extra = take_token(rest)
    service = context.services.lists
    if action.lower() in ADD:
        await require_role(update, context, chat, Role.ADMIN, "/list add")  # i18n: not shown
        if not name or extra:
            raise BadInput(
                _("Usage: {usage}. A list name is one word, e.g. customers.").format(
                    usage=_(LIST_USAGE)
                )
            )
        quoted = message.reply_to_message
        document = quoted.document if quoted is not None else None
        if document is None:
            raise BadInput(
                _(
                    "Send /list add &lt;name&gt; as a reply to the .csv or .txt file that holds "
                    "the numbers (one a line, or a number/phone column)."
                )
            )
        name = await service.check_upload(
            chat.id,
            name,
            file_name=document.file_name,
            mime_type=document.mime_type,
            size=document.file_size,
        )
        data = await download_file(context.bot, document.file_id, "file", outcome="stored")
        upload = await service.upload(
            chat, name, file_name=document.file_name or "", data=data, actor=_actor(update)
        )
        markup = None
        if upload.confirmation_id is not None:
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            _("Replace"), callback_data=f"{DATA}{upload.confirmation_id}:r"
                        ),
                        InlineKeyboardButton(
                            _("Keep"), callback_data=f"{DATA}{upload.confirmation_id}:k"
                        ),
                    ]
                ]
            )
        await message.reply_html(
            uploaded(upload, chat.timezone), reply_markup=markup, do_quote=False
        )
    elif action.lower() in DELETE:
        await require_role(update, context, chat, Role.ADMIN, "/list del")  # i18n: not shown
        if not name or extra:
            raise BadInput(_("Usage: {usage}").format(usage=_(LIST_USAGE)))
        row = await service.delete(chat.id, name, actor=_actor(update))
        await reply(update, deleted(row))
    elif not action:
        await lists(update, context)
    else:
        raise BadInput(_("Usage: {usage}").format(usage=_(LIST_USAGE)))


async def on_press(update: Update, context: BotContext) -> None:
    """Replace or Keep under a /list add whose name is in use (admins; once)."""
    query = update.callback_query
    if query is None or update.effective_chat is None or update.effective_user is None:
        return
    await query.answer()
    chat = await chat_of(update, context)
    await require_role(update, context, chat, Role.ADMIN, _("Replacing a list"))
    _prefix, raw_id, choice = (query.data or "").split(":")
    outcome = await context.services.lists.decide(
        chat.id, int(raw_id), replace=choice == "r", actor=_actor(update)
    )
    await edit_pressed(query, decided(outcome, sender_name(update)), None)


def press_handler() -> CallbackQueryHandler[BotContext, None]:
    """The handler of the Replace / Keep buttons."""
    return CallbackQueryHandler(on_press, pattern=PATTERN)


async def templates(update: Update, context: BotContext) -> None:
    """/templates: the chat's templates."""
    chat = await chat_of(update, context)
    await reply(update, template_table(await context.services.templates.all(chat.id)))


async def template_command(update: Update, context: BotContext) -> None:
    """/template add <name> <text>, /template del <name>; /template alone lists them."""
    chat = await chat_of(update, context)
    action, rest = take_token(command_body(message_of(update).text or ""))
    service = context.services.templates
    if action.lower() in ADD:
        await require_role(update, context, chat, Role.ADMIN, "/template add")  # i18n: not shown
        row, old = await service.add(chat.id, rest, actor=_actor(update))
        await reply(update, template_saved(row, old))
    elif action.lower() in DELETE:
        await require_role(update, context, chat, Role.ADMIN, "/template del")  # i18n: not shown
        name, extra = take_token(rest)
        if not name or extra:
            raise BadInput(_("Usage: {usage}").format(usage=_(TEMPLATE_USAGE)))
        name = await service.delete(chat.id, name, actor=_actor(update))
        await reply(update, _("🗑 Template <b>{name}</b> deleted.").format(name=name))
    elif not action:
        await templates(update, context)
    else:
        raise BadInput(_("Usage: {usage}").format(usage=_(TEMPLATE_USAGE)))


COMMANDS = (
    Command(
        "lists", "", N_("this chat's recipient lists (name, size, columns)"), Role.VIEWER, lists
    ),
    Command(
        "list",
        "add <name> | del <name>",
        N_("store a .csv/.txt of numbers as a list (reply to the file), or delete one (admins)"),
        Role.VIEWER,
        list_command,
    ),
    Command("templates", "", N_("this chat's message templates"), Role.VIEWER, templates),
    Command(
        "template",
        "add <name> <text with {placeholders}> | del <name>",  # i18n: not shown
        N_("add, replace or delete a message template (admins)"),
        Role.VIEWER,
        template_command,
    ),
)
