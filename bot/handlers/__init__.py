"""Every handler, registered in one place from the feature modules' command lists."""

from __future__ import annotations

from telegram import BotCommand, Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.commands import Command, guarded
from bot.context import BotApplication, BotContext
from bot.handlers import (
    address_book,
    approvals,
    balance,
    cards,
    check,
    confirm,
    connect,
    inline,
    lists,
    multicast,
    reports,
    schedule,
    send,
    senders,
    settings,
    start,
    status,
    stoplist,
)
from bot.handlers.common import message_of, reply
from bot.services.errors import echo
from i18n import _

SCRUB = -1  # first: a group message carrying credentials is deleted before anything else
DIALOGUE = 1  # after commands: plain text continues a guided /connect
FALLBACK = 2  # last: unknown commands get an answer
# Provider callbacks of one kind each; a group of their own, so no other handler shadows them.
PHONE_CHECKS = 10


COMMANDS: list[Command] = [
    *start.COMMANDS,
    *connect.COMMANDS,
    *send.COMMANDS,
    *status.COMMANDS,
    *balance.COMMANDS,
    *senders.COMMANDS,
    *settings.COMMANDS,
    *schedule.COMMANDS,
    *check.COMMANDS,
    *address_book.COMMANDS,
    *multicast.COMMANDS,
    *lists.COMMANDS,
    *stoplist.COMMANDS,
    *reports.COMMANDS,
    *approvals.COMMANDS,
]

KNOWN = frozenset(c.name for c in COMMANDS)


async def unknown_command(update: Update, context: BotContext) -> None:
    """Answer a command this bot does not have (in groups only when addressed to it)."""
    message = message_of(update)
    word = (message.text or "").split()[0]
    name, _at, addressee = word.partition("@")
    if name.lstrip("/").lower() in KNOWN:  # handled by its CommandHandler in group 0
        return
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return
    if not addressee and message.chat.type != ChatType.PRIVATE:
        return
    await reply(
        update,
        _("Unknown command {name}. /help lists the commands you can use.").format(name=echo(name)),
    )


# Only new messages run commands: an edited /send must not send again.
NEW = filters.UpdateType.MESSAGE
EDITED = filters.UpdateType.EDITED_MESSAGE
# "/cmd ..." text without a bot_command entity (some clients and emulators send none).
SLASH_TEXT = filters.TEXT & filters.Regex(r"^/[A-Za-z0-9_]+(@\w+)?(\s|$)") & ~filters.COMMAND


async def command_without_entity(update: Update, context: BotContext) -> None:
    """Run a command typed as plain text, exactly as its CommandHandler would."""
    message = message_of(update)
    word, *args = (message.text or "").split()
    name, _at, addressee = word[1:].partition("@")
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return
    command = next((c for c in COMMANDS if c.name == name.lower()), None)
    if command is None:
        await unknown_command(update, context)
        return
    context.args = args
    await guarded(command)(update, context)


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button no handler took (an old version's, a stale id, made-up data).

    Unanswered, the Telegram client would show the button's spinner until it times out.
    """
    query = update.callback_query
    assert query is not None
    await query.answer(_("This button is no longer valid. Run the command again for fresh ones."))


def register(app: BotApplication) -> None:
    """Add every handler to the application."""
    # New and edited messages alike: a secret can be edited into a message sent earlier.
    app.add_handler(
        MessageHandler(
            (NEW | EDITED) & filters.ChatType.GROUPS & (filters.TEXT | filters.CAPTION),
            connect.scrub_group_secret,
        ),
        group=SCRUB,
    )
    for command in COMMANDS:
        app.add_handler(CommandHandler(command.name, guarded(command), filters=NEW))
    app.add_handler(MessageHandler(NEW & SLASH_TEXT, command_without_entity))
    app.add_handler(schedule.cancel_button_handler())
    app.add_handler(schedule.card_cancel_handler())
    app.add_handler(senders.pick_handler())
    app.add_handler(multicast.press_handler())
    app.add_handler(confirm.press_handler())
    app.add_handler(approvals.press_handler())
    app.add_handler(lists.press_handler())
    app.add_handler(
        MessageHandler(
            NEW & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND & ~SLASH_TEXT,
            connect.on_private_text,
        ),
        group=DIALOGUE,
    )
    app.add_handler(MessageHandler(NEW & filters.COMMAND, unknown_command), group=FALLBACK)
    app.add_handler(check.callback_handler(), group=PHONE_CHECKS)
    cards.register(app)  # card buttons; status callbacks in a group of their own
    inline.register(app)  # inline queries and the buttons of cards posted through them
    # Last in group 0, so it only sees presses that no button handler above took.
    app.add_handler(CallbackQueryHandler(stale_button))


def bot_commands(private: bool) -> list[BotCommand]:
    """The command menu Telegram shows, from the same registry as the handlers."""
    return [
        BotCommand(c.name, _(c.summary)[:256]) for c in COMMANDS if private or not c.private_only
    ]
