"""The one error handler: log first, then tell the chat something useful.

Bad input and provider errors become specific replies; anything unexpected is logged with its
traceback and the chat gets a short apology that never includes internal details or secrets.
"""

from __future__ import annotations

import logging
from html import escape

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError

from bot.context import BotContext
from bot.services.errors import UserError
from i18n import N_, _
from providers.errors import ProviderError, RateLimited
from storage.db import is_unavailable

log = logging.getLogger(__name__)

DATABASE_DOWN = N_(
    "⚠️ The bot's database did not answer, so this command did not finish. Try again in a "
    "minute; if it was a send, /status shows what reached the provider once the database is "
    "back (nothing is resent automatically)."
)
UNEXPECTED = N_(
    "Something went wrong on my side; it has been logged. Nothing was retried automatically: "
    "/status shows what was sent."
)


def describe(error: BaseException) -> str:
    """The chat text for an error (HTML)."""
    if isinstance(error, UserError):
        return f"⚠️ {error.message}"
    if isinstance(error, RateLimited):
        return _("⏳ {message} Try again in {seconds:.0f} s.").format(
            message=escape(error.message), seconds=error.retry_after
        )
    if isinstance(error, ProviderError):
        return f"⚠️ {escape(error.message)}"
    if is_unavailable(error):
        return _(DATABASE_DOWN)
    return _(UNEXPECTED)


async def on_error(update: object, context: BotContext) -> None:
    """Log the error, then answer in the chat the update came from."""
    error = context.error
    if error is None:
        return
    if isinstance(error, UserError):
        log.info("refused: %s", error.message)
    elif isinstance(error, ProviderError):
        log.warning("provider error: %s", error.message)
    elif is_unavailable(error):
        log.error("database unavailable: %s", str(error).splitlines()[0])
    elif isinstance(error, Forbidden):
        log.info("chat unreachable: %s", error.message)
        return
    else:
        log.error("unhandled error while handling an update", exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        await context.bot.send_message(
            update.effective_chat.id, describe(error), parse_mode=ParseMode.HTML
        )
    except TelegramError as exc:
        log.warning("could not report an error to chat %s: %s", update.effective_chat.id, exc)
