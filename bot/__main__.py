"""Entry point: ``python -m bot`` or ``chatops-bridge``."""

from __future__ import annotations

import sys

from pydantic import ValidationError
from telegram import Update

from bot.app import build_application, freeze_long_lived_objects
from bot.config import Settings
from bot.logs import setup_logging
from bot.webhooks import run_webhook, webhook_secrets
from storage.db import DatabaseUnavailable


def load_settings() -> Settings:
    """Settings from the environment, or exit with one line saying what to set."""
    try:
        return Settings()
    except ValidationError as exc:
        fields = {str(err["loc"][0]).upper() for err in exc.errors() if err["loc"]}
        if "TELEGRAM_BOT_TOKEN" in fields:
            sys.exit(
                "chatops-bridge: TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather "
                "and set TELEGRAM_BOT_TOKEN in the environment or in .env."
            )
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        sys.exit(f"chatops-bridge: invalid configuration: {problems}")


def main() -> None:
    """Run the bot until interrupted (polling, or a webhook when WEBHOOK_URL is set)."""
    settings = load_settings()
    secrets = [settings.telegram_bot_token.get_secret_value()]
    if settings.secret_key:
        secrets.extend(settings.secret_key.get_secret_value().split(","))
    secrets.extend(webhook_secrets(settings.telegram_bot_token.get_secret_value()))
    setup_logging(settings.log_level, secrets=secrets)
    app = build_application(settings)
    freeze_long_lived_objects()
    try:
        if settings.webhook_url:
            # One server for Telegram updates and provider callbacks (bot/webhooks.py).
            run_webhook(app, settings)
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES)
    except DatabaseUnavailable as exc:
        sys.exit(f"chatops-bridge: {exc}")


if __name__ == "__main__":
    main()
