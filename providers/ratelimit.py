"""Per-account request pacing shared by every chat that uses the same provider account.

NusaSMS allows one request per 50 ms per account; several chats may share one key and a bulk
send fans out, so the pacer is keyed by the account, not by the chat or the adapter instance.
Keys are hashed so credentials never sit in memory as dictionary keys.

A :class:`SlotPacer` hands out start slots exactly ``interval`` apart. Each request reserves
its slot before it waits, so an on-time wake-up costs nothing later (a leaky bucket that
measures from wake-up time drifts ~1 ms on every request here, which cost 10% of a bulk
send's throughput); only an actually late wake-up pushes the next start back, so that two
starts are never closer than ``interval``.
"""

from __future__ import annotations

import asyncio
import hashlib
from types import TracebackType


class SlotPacer:
    """An async context manager that starts requests ``interval`` seconds apart.

    Starts follow a fixed schedule (no drift from late wake-ups) and are never closer than
    ``floor`` (the provider's documented minimum; defaults to ``interval``).
    """

    def __init__(self, interval: float, *, floor: float | None = None) -> None:
        self.interval = interval
        self.floor = interval if floor is None else min(floor, interval)
        self._lock = asyncio.Lock()  # FIFO: requests start in the order they asked
        self._last_target = float("-inf")
        self._last_start = float("-inf")

    async def __aenter__(self) -> None:
        if self.interval <= 0:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:
            # The schedule advances from the previous *target*, so a late wake-up adds no
            # drift; the second wait keeps ``floor`` after a start that was itself late.
            target = max(loop.time(), self._last_target + self.interval)
            for wake in (target, self._last_start + self.floor):
                delay = wake - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._last_target = target
            self._last_start = loop.time()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class AccountLimiters:
    """Hands out one pacer per (provider, account)."""

    def __init__(self) -> None:
        self._pacers: dict[str, SlotPacer] = {}

    def get(
        self, provider: str, account_key: str, *, interval: float, floor: float | None = None
    ) -> SlotPacer:
        """The pacer starting this account's requests ``interval`` seconds apart.

        ``floor`` is the documented minimum gap (see :class:`SlotPacer`); an ``interval`` of
        0 means no pacing (a local fake or a provider without a limit).
        """
        digest = hashlib.sha256(f"{provider}\0{account_key}".encode()).hexdigest()
        pacer = self._pacers.get(digest)
        if pacer is None:
            pacer = SlotPacer(interval, floor=floor)
            self._pacers[digest] = pacer
        return pacer
