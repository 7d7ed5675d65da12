"""Entry point: ``python -m bot`` or the ``chatops-bridge`` console script.

``chatops-bridge`` (or ``chatops-bridge run``) runs the bot; ``chatops-bridge rotate-keys``
re-encrypts every stored credential under the newest ``SECRET_KEY`` and says how many it did.

Whatever stops the start (a bad setting, the database, Telegram refusing the token or not
answering) ends the process with exit code 1 and one line on stderr: no traceback (at
``LOG_LEVEL=DEBUG`` the log has it) and no secret, because the line is masked like the log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import BaseSettings
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.app import build_application, freeze_long_lived_objects
from bot.config import CoreSettings, Settings
from bot.lifecycle import serve_polling, stop_on_signals
from bot.logs import redact, setup_logging
from bot.ops import ops_server
from bot.services.accounts import rotate_credentials
from bot.webhooks import serve_webhook_mode, webhook_secrets
from storage.crypto import CredentialCipher, SecretKeyError
from storage.db import Database, DatabaseUnavailable, open_database, sqlite_path
from storage.repo import Repository

log = logging.getLogger("bot")
PROG = "chatops-bridge"
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def fail(problem: str, secrets: list[str] | None = None) -> NoReturn:
    """Exit 1 with one line on stderr saying what is wrong (secrets masked)."""
    line = " ".join(problem.split())  # one line, whatever the message held
    sys.exit(f"{PROG}: {redact(line, secrets or [])}")


def package_version() -> str:
    """The installed package's version (from its metadata)."""
    try:
        return version(PROG)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def load_settings(kind: type[SettingsT]) -> SettingsT:
    """Settings from the environment, or exit with one line saying what to set."""
    try:
        return kind()
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["type"] == "missing" and e["loc"] == ("telegram_bot_token",) for e in errors):
            fail(
                "TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather "
                "and set TELEGRAM_BOT_TOKEN in the environment or in .env."
            )
        # Each error's own message only: pydantic's full text would quote the value.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in errors
        )
        fail(f"invalid configuration: {problems}")


def secret_values(settings: CoreSettings) -> list[str]:
    """Every secret the settings hold or derive, for the log's and the error line's mask."""
    secrets: list[str] = []
    if settings.secret_key:
        secrets.extend(k.strip() for k in settings.secret_key.get_secret_value().split(","))
    if isinstance(settings, Settings):
        token = settings.telegram_bot_token.get_secret_value()
        secrets.append(token)
        secrets.extend(webhook_secrets(token))
    return secrets


def start_problem(exc: Exception, settings: Settings) -> str:
    """Why the bot could not run, in one line for an operator."""
    if isinstance(exc, InvalidToken):
        return (
            "Telegram rejected TELEGRAM_BOT_TOKEN (Unauthorized): copy the token again from "
            "@BotFather, or get a new one there with /token."
        )
    if isinstance(exc, NetworkError):  # TimedOut included
        base = urlsplit(settings.telegram_base_url)
        where = f"{base.scheme}://{base.hostname}" + (f":{base.port}" if base.port else "")
        return f"cannot reach Telegram at {where} ({exc.message}); check the network"
    if isinstance(exc, TelegramError):
        return f"Telegram refused to start the bot: {exc.message}"
    if isinstance(exc, DatabaseUnavailable | SecretKeyError):
        return str(exc)
    return f"stopped by an error: {type(exc).__name__}: {exc} (LOG_LEVEL=DEBUG logs where)"


async def serve(settings: Settings) -> None:
    """Run the bot until SIGINT or SIGTERM: polling, or a webhook when WEBHOOK_URL is set."""
    app = build_application(settings)
    freeze_long_lived_objects()
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with ops_server(app, settings):  # METRICS_PORT: /metrics and /healthz
        if settings.webhook_url:
            # One server for Telegram updates and provider callbacks (bot/webhooks.py).
            await serve_webhook_mode(app, settings, stop)
        else:
            await serve_polling(app, stop, grace=settings.shutdown_grace_seconds)


def run() -> None:
    """``chatops-bridge run``: the bot, until interrupted."""
    settings = load_settings(Settings)
    secrets = secret_values(settings)
    setup_logging(settings.log_level, secrets=secrets)
    try:
        asyncio.run(serve(settings))
    except Exception as exc:
        log.debug("the bot stopped on an error", exc_info=True)
        fail(start_problem(exc, settings), secrets)


async def _rotate(settings: CoreSettings) -> tuple[int, int]:
    assert settings.secret_key is not None
    keys = [k for k in (p.strip() for p in settings.secret_key.get_secret_value().split(",")) if k]
    cipher = CredentialCipher(keys)  # before the database: a bad key list is said first
    engine = await open_database(settings.database_url)
    try:
        done = await rotate_credentials(Repository(Database(engine)), cipher)
    finally:
        await engine.dispose()
    return done.rotated, done.unreadable


def rotate_keys() -> int:
    """``chatops-bridge rotate-keys``: re-encrypt stored credentials under the newest key."""
    settings = load_settings(CoreSettings)
    secrets = secret_values(settings)
    setup_logging(settings.log_level, secrets=secrets)
    if settings.secret_key is None:
        fail(
            "rotate-keys needs SECRET_KEY: the new key first, then the old ones, "
            "comma-separated (README, Key rotation)."
        )
    database = sqlite_path(settings.database_url)
    if database is not None and not database.exists():  # a typo must not create a database
        fail(f"there is no database at {database} (DATABASE_URL)")
    try:
        rotated, unreadable = asyncio.run(_rotate(settings))
    except (DatabaseUnavailable, SecretKeyError) as exc:
        fail(str(exc), secrets)
    print(f"re-encrypted {rotated} stored credentials under the newest SECRET_KEY")
    if unreadable:
        print(
            f"{PROG}: {unreadable} stored credentials match no key in SECRET_KEY and were left "
            "as they are; put the key they were written with back into the list",
            file=sys.stderr,
        )
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line: ``chatops-bridge [--version] [run | rotate-keys]``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A Telegram bot that sends SMS, WhatsApp and e-mail through providers and "
        "tracks their delivery. Settings come from the environment or .env (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="run the bot until SIGINT or SIGTERM (the default)")
    commands.add_parser(
        "rotate-keys",
        help="re-encrypt every stored credential under the newest SECRET_KEY and say how many",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command the arguments name (the bot when none)."""
    args = parser().parse_args(argv)
    if args.command == "rotate-keys":
        sys.exit(rotate_keys())
    run()


if __name__ == "__main__":
    main()
