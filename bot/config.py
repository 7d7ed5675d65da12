"""Settings from the environment and ``.env``, named as in ``shared/COMMANDS.md``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.parrotica.paths import resolve_paths
from storage.db import async_url, sqlite_path


class Settings(BaseSettings):
    """Everything an operator can configure; secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", env_file_encoding="utf-8", env_ignore_empty=True
    )

    telegram_bot_token: SecretStr
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    database_url: str = "sqlite+aiosqlite:///./data/chatops.db"
    secret_key: SecretStr | None = None

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

    webhook_url: str | None = None
    webhook_listen: str | None = None
    webhook_port: int | None = None

    log_level: str = "INFO"

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("TELEGRAM_BOT_TOKEN is empty")
        return value

    @field_validator("parrotica_paths")
    @classmethod
    def _parrotica_paths(cls, value: str | None) -> str | None:
        resolve_paths(value)  # a bad table stops the bot at start, naming the key
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return async_url(value)

    @property
    def data_dir(self) -> Path:
        """Where the generated encryption key lives: beside the SQLite file, else ./data."""
        path = sqlite_path(self.database_url)
        return path.parent if path is not None else Path("data")
