"""``/healthz``: whether this process can reach its database and Telegram right now.

The database gets one ``SELECT 1`` with a short timeout on every check (a load balancer's
probe every few seconds is nothing to it). Telegram gets a ``getMe``, remembered for
:data:`TELEGRAM_TTL` seconds: several probes (Docker's, the proxy's, Prometheus') must not
become a stream of Bot API calls, and a token Telegram refused does not come back by itself.

What a failed check says is a fixed phrase and the error's class name, never the error's
text: Telegram's errors may carry a request URL, and every Bot API URL holds the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TimedOut

from storage.db import Database, is_unavailable

DATABASE_TIMEOUT = 2.0  # seconds; a probe that waits longer is itself the problem
TELEGRAM_TIMEOUT = 5.0
TELEGRAM_TTL = 15.0  # seconds a getMe answer (or its failure) stands for Telegram's state


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's state: ``ok``, else a short reason safe to show anyone."""

    ok: bool
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        """``{"ok": true}`` or ``{"ok": false, "error": "…"}``."""
        return {"ok": True} if self.ok else {"ok": False, "error": self.error}


@dataclass(frozen=True, slots=True)
class Report:
    """The answer of ``/healthz``: healthy only when every dependency is."""

    database: Check
    telegram: Check

    @property
    def ok(self) -> bool:
        """Both dependencies answer."""
        return self.database.ok and self.telegram.ok

    def as_json(self) -> dict[str, Any]:
        """The JSON body, naming each dependency and what failed."""
        return {
            "ok": self.ok,
            "database": self.database.as_json(),
            "telegram": self.telegram.as_json(),
        }


NOT_STARTED = Check(False, "not started")


async def check_database(db: Database | None, *, seconds: float = DATABASE_TIMEOUT) -> Check:
    """``SELECT 1`` within ``seconds``."""
    if db is None:
        return NOT_STARTED
    try:
        async with asyncio.timeout(seconds):
            await db.ping()
    except TimeoutError:
        return Check(False, f"no answer within {seconds:g} s")
    except Exception as exc:  # any failure is the answer; its text may name the server
        kind = "unreachable" if is_unavailable(exc) else "failing"
        return Check(False, f"{kind} ({type(exc).__name__})")
    return Check(True)


def telegram_reason(exc: Exception) -> str:
    """Why Telegram is not usable, without the error's text (it may hold the token's URL)."""
    if isinstance(exc, InvalidToken):
        return "the bot token was refused"
    if isinstance(exc, TimedOut | TimeoutError):
        return "no answer in time"
    if isinstance(exc, NetworkError):
        return f"unreachable ({type(exc).__name__})"
    return f"failing ({type(exc).__name__})"


class TelegramCheck:
    """``getMe``, remembered for ``ttl`` seconds (a success and a failure alike)."""

    def __init__(
        self,
        *,
        ttl: float = TELEGRAM_TTL,
        timeout: float = TELEGRAM_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._last: tuple[float, Check] | None = None
        self._lock = asyncio.Lock()  # concurrent probes share one getMe

    async def __call__(self, bot: Bot) -> Check:
        """Telegram's state, asking it at most once every ``ttl`` seconds."""
        async with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < self.ttl:
                return self._last[1]
            try:
                async with asyncio.timeout(self.timeout):
                    await bot.get_me()
            except Exception as exc:  # any failure is the answer (a stopped bot's included)
                result = Check(False, telegram_reason(exc))
            else:
                result = Check(True)
            self._last = (self._clock(), result)
            return result

    def forget(self) -> None:
        """Ask Telegram again at the next check."""
        self._last = None
