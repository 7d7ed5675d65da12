"""Per-account request pacing shared by every chat that uses the same provider account.

NusaSMS allows one request per 50 ms per account; several chats may share one key and a bulk
send fans out, so the limiter is keyed by the account, not by the chat or the adapter instance.
Keys are hashed so credentials never sit in memory as dictionary keys.
"""

from __future__ import annotations

import hashlib

from aiolimiter import AsyncLimiter


class AccountLimiters:
    """Hands out one leaky-bucket limiter per (provider, account)."""

    def __init__(self) -> None:
        self._limiters: dict[str, AsyncLimiter] = {}

    def get(self, provider: str, account_key: str, *, interval: float) -> AsyncLimiter:
        """The limiter allowing one request per ``interval`` seconds for this account.

        An ``interval`` of 0 means no pacing (a local fake or a provider without a limit).
        """
        digest = hashlib.sha256(f"{provider}\0{account_key}".encode()).hexdigest()
        limiter = self._limiters.get(digest)
        if limiter is None:
            limiter = AsyncLimiter(1, interval) if interval > 0 else AsyncLimiter(1e9, 1)
            self._limiters[digest] = limiter
        return limiter
