"""Settings from the environment and ``.env``, named as in the README's configuration table.

:class:`CoreSettings` is what the database and the credential keys need (all that
``chatops-bridge rotate-keys`` reads); :class:`Settings` adds Telegram, the providers and the
rest of the bot. Every check that can be made without the network is made here, so a bad
value stops the start before any request, with one line naming the variable.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.services.errors import BadInput
from bot.services.when import read_duration
from i18n import LANGUAGES, supported
from providers.parrotica.paths import resolve_paths
from storage.crypto import CredentialCipher
from storage.db import async_url, sqlite_path

# What @BotFather hands out: the bot's numeric id, a colon, then the secret part.
TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class CoreSettings(BaseSettings):
    """What every command of ``chatops-bridge`` reads: database, credential keys, log level."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", env_file_encoding="utf-8", env_ignore_empty=True
    )

    database_url: str = "sqlite+aiosqlite:///./data/chatops.db"
    secret_key: SecretStr | None = None
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return async_url(value)

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            keys = [k for k in value.get_secret_value().split(",") if k.strip()]
            CredentialCipher(keys)  # its SecretKeyError (a ValueError) says what is wrong
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def data_dir(self) -> Path:
        """Where the generated encryption key lives: beside the SQLite file, else ./data."""
        path = sqlite_path(self.database_url)
        return path.parent if path is not None else Path("data")


class Settings(CoreSettings):
    """Everything an operator can configure; secrets are ``SecretStr`` so they never print."""

    telegram_bot_token: SecretStr
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"

    nusasms_base_url: str = "https://api.nusasms.com/nusasms_api/1.0"
    nusasms_sms_base_url: str = "https://api.nusasms.com/api"
    nusasms_wa_sender: str | None = None
    nusasms_min_interval: float = Field(0.05, ge=0)
    parrotica_base_url: str = "https://api.parrotica.com"
    parrotica_paths: str | None = None
    courier_base_url: str = "https://api.carium.com/courier"
    courier_identity_url: str = "https://api.carium.com/identity"

    status_poll_seconds: float = Field(15.0, gt=0)
    status_poll_max_seconds: float = Field(900.0, gt=0)
    status_poll_concurrency: int = Field(8, ge=1, le=100)
    status_expire_hours: float = Field(48.0, gt=0)
    status_read_watch_hours: float = Field(6.0, ge=0)
    send_concurrency: int = Field(20, ge=1, le=200)
    http_timeout: float = Field(20.0, gt=0)
    schedule_grace_minutes: float = Field(15.0, ge=0)
    schedule_check_seconds: float = Field(30.0, ge=0)
    # A send to more recipients than this asks for a Send press first (0: every send does),
    # and is a large send (one progress card, Stop, resumed after a restart).
    confirm_above: int = Field(50, ge=0)
    # The language of chats that have not chosen one with /lang (i18n.LANGUAGES).
    default_language: str = "en"
    # How long an operator's send held by /approval waits for an admin (``24h``, ``90m``).
    approval_expiry: timedelta = timedelta(hours=24)
    # How long a stop (SIGTERM) waits for the sends in hand; below Docker's 10 s kill.
    shutdown_grace_seconds: float = Field(8.0, ge=0)
    # Unset: keep message texts and numbers forever.
    retention_days: int | None = Field(None, ge=1)

    webhook_url: str | None = None
    webhook_listen: str | None = None
    webhook_port: int | None = None
    # Prometheus /metrics and /healthz on this port too (any mode); 0 picks a free one.
    metrics_port: int | None = Field(None, ge=0, le=65535)

    # Several replicas on PostgreSQL: each refreshes its heartbeat this often, and one not
    # seen for REPLICA_DEAD_SECONDS is dead (its work is taken over).
    replica_heartbeat_seconds: float = Field(5.0, gt=0)
    replica_dead_seconds: float = Field(30.0, gt=0)
    # Shared provider rate limits across replicas in Redis (else the database holds them).
    redis_url: SecretStr | None = None

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError("it is empty")
        if not TOKEN_SHAPE.match(token):
            # Never quote the value: it may be a real token with a stray character.
            raise ValueError(
                "it does not look like a bot token (digits, a colon, then letters, digits, "
                "- or _, as @BotFather gives it)"
            )
        return SecretStr(token)

    @field_validator("default_language")
    @classmethod
    def _spoken_language(cls, value: str) -> str:
        code = value.strip().lower()
        if not supported(code):
            raise ValueError(f"use one of {', '.join(LANGUAGES)}")
        return code

    @field_validator("approval_expiry", mode="before")
    @classmethod
    def _approval_expiry(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return read_duration(value)
            except BadInput as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("parrotica_paths")
    @classmethod
    def _parrotica_paths(cls, value: str | None) -> str | None:
        resolve_paths(value)  # a bad table stops the bot at start, naming the key
        return value

    @model_validator(mode="after")
    def _replica_timing(self) -> Settings:
        # A replica must get at least two heartbeats in before others may call it dead.
        if self.replica_dead_seconds < 2 * self.replica_heartbeat_seconds:
            raise ValueError(
                "REPLICA_DEAD_SECONDS must be at least twice REPLICA_HEARTBEAT_SECONDS"
            )
        return self
