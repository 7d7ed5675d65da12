"""The typed ``CallbackContext`` handlers receive, and the application forgetting handled updates.

:class:`BotApplication` is PTB's ``Application`` (made by ``ApplicationBuilder`` through its
public ``application_class``) with one addition: once an update from Telegram was handled,
its copy in the inbox (:mod:`storage.inbox`) is deleted, so only updates a crash or a stop
interrupted are replayed at the next start (:mod:`bot.inbox`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.health import TelegramCheck
from bot.metrics import Metrics
from bot.services import Services
from i18n import ENGLISH, supported, use_language
from storage.models import Chat

if TYPE_CHECKING:
    from bot.app import Resources
    from bot.lifecycle import InFlight


class BotData:
    """Application-wide state; filled in ``post_init``."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.settings: Settings | None = None
        self.bot_username: str = ""
        self.provider_transport: httpx.AsyncBaseTransport | None = None
        self.resources: Resources | None = None
        self.in_flight: InFlight | None = None
        # This application's own registry (None: metrics off, as a benchmark's baseline).
        self.metrics: Metrics | None = Metrics()
        self.telegram_check = TelegramCheck()  # /healthz's cached getMe


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """Gives handlers typed access to the services and settings."""

    # The stored chat of this update, read once by the command guard and reused by the
    # handler (PTB makes one context per update).
    stored_chat: Chat | None = None

    @property
    def services(self) -> Services:
        """The use-cases (available once ``post_init`` ran)."""
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not ready: post_init has not run")
        return services

    @property
    def settings(self) -> Settings:
        """The running configuration."""
        settings = self.bot_data.settings
        if settings is None:
            raise RuntimeError("settings are not ready: post_init has not run")
        return settings


log = logging.getLogger(__name__)


class BotApplication(
    Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
):
    """The bot's ``Application``: an update handled to the end leaves the inbox."""

    async def language_for(self, update: object) -> str:
        """The language to answer ``update`` in: its chat's, else the user's if spoken.

        An inline query has no chat: the sender's Telegram language is used when the bot
        speaks it. Provider callbacks and a database that cannot be read get the default.
        """
        services = self.bot_data.services
        if services is None or not isinstance(update, Update):
            return ENGLISH
        chats = services.chats
        chat = update.effective_chat
        if chat is None:
            user = update.effective_user
            code = (user.language_code or "")[:2] if user is not None else ""
            return code if supported(code) else chats.default_language
        try:
            return await chats.language_of(chat.id)
        except Exception:  # the handler meets the same database and answers about it
            log.warning("could not read the language of chat %s", chat.id, exc_info=True)
            return chats.default_language

    async def process_update(self, update: object) -> None:
        """Handle ``update`` as PTB does, then delete its inbox copy.

        A handler's error was given to the error handler by then, and the user was answered:
        the update counts as handled. A cancellation (a stop cutting the update off) raises
        through here and keeps the copy, as does an update refused because a stop began:
        the next start handles it again. Provider callbacks are not Telegram updates and
        were never stored.
        """
        language = await self.language_for(update)
        with use_language(language):
            await super().process_update(update)
        if not isinstance(update, Update):
            return
        data = self.bot_data
        if data.in_flight is not None and data.in_flight.closed:
            return  # a stop cut the updates off: this one may not have been handled
        if data.services is None:
            return
        try:
            await data.services.repo.inbox.done(update.update_id)
        except Exception:  # kept: the next start handles it again, which is safe
            log.warning("could not mark update %s handled", update.update_id, exc_info=True)
