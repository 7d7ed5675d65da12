"""The typed ``CallbackContext`` handlers receive, carrying the application's services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.services import Services
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


BotApplication = Application[
    ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any
]
