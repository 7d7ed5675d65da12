"""Provider callbacks as custom updates, and the unguessable URLs they arrive on.

In webhook mode one HTTP server receives Telegram updates and provider callbacks. A
callback's body is validated there and put on ``application.update_queue`` as a
:class:`ProviderCallback`; a ``TypeHandler(ProviderCallback, ...)`` per kind handles it.
URLs carry a per-deployment secret derived from the bot token, so they cannot be guessed
and stay the same across restarts (providers keep calling the URL they were given).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

CALLBACK_PREFIX = "callbacks"


@dataclass(frozen=True, slots=True)
class ProviderCallback:
    """One callback from a provider, as received (already parsed as JSON or a form)."""

    provider: str
    kind: str
    body: Any


def callback_secret(bot_token: str, provider: str, kind: str) -> str:
    """The path secret of one callback kind (HMAC of the bot token; never the token)."""
    digest = hmac.new(bot_token.encode(), f"{provider}:{kind}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def callback_path(bot_token: str, provider: str, kind: str) -> str:
    """The URL path (without leading slash) a provider posts this kind of callback to."""
    return f"{CALLBACK_PREFIX}/{provider}/{kind}/{callback_secret(bot_token, provider, kind)}"


def callback_url(webhook_url: str | None, bot_token: str, provider: str, kind: str) -> str | None:
    """The full public callback URL, or None when the bot is not in webhook mode."""
    if not webhook_url:
        return None
    return f"{webhook_url.rstrip('/')}/{callback_path(bot_token, provider, kind)}"
