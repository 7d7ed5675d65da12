"""Pacing of the bot's own messages per chat, without sleeping.

Telegram allows about one message per second in a chat, 20 per minute in a group and 30 per
second overall. PTB's ``AIORateLimiter`` enforces the last two by waiting; this pacer keeps
the tracker's edits and notices under all three *before* a call is made, so a burst of
receipts is spread over time instead of queueing inside the rate limiter (and the per-chat
second, which AIORateLimiter does not know, is kept). It never sleeps: the card scheduler asks
:meth:`ChatPacer.ready` and tries again at :meth:`ChatPacer.free_at`. Time is a float of
seconds from the injected clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

_PRUNE_AT = 4096  # chats remembered before old entries are dropped


@dataclass(frozen=True, slots=True)
class PacerLimits:
    """The budgets; the defaults leave headroom below Telegram's for command replies."""

    chat_interval: float = 1.0
    per_second: int = 25
    group_per_minute: int = 20


class ChatPacer:
    """Remembers when each chat last got a message and what the global second has used."""

    def __init__(self, limits: PacerLimits | None = None) -> None:
        self.limits = limits or PacerLimits()
        self._last: dict[int, float] = {}
        self._blocked: dict[int, float] = {}
        self._second: deque[float] = deque()
        self._minute: dict[int, deque[float]] = {}

    def free_at(self, chat_id: int, now: float) -> float:
        """The earliest time a message to this chat fits every budget (``now`` or later)."""
        self._forget(now)
        at = now
        last = self._last.get(chat_id)
        if last is not None and last <= now:  # a clock that went back never blocks for long
            at = max(at, last + self.limits.chat_interval)
        at = max(at, self._blocked.get(chat_id, now))
        minute = self._minute.get(chat_id)
        if chat_id < 0 and minute and len(minute) >= self.limits.group_per_minute:
            at = max(at, minute[-self.limits.group_per_minute] + 60.0)
        if len(self._second) >= self.limits.per_second:
            at = max(at, self._second[-self.limits.per_second] + 1.0)
        return at

    def ready(self, chat_id: int, now: float) -> bool:
        """Whether a message to this chat may go now."""
        return self.free_at(chat_id, now) <= now

    def take(self, chat_id: int, now: float) -> None:
        """Count one message to this chat at ``now`` (also for sends made elsewhere)."""
        self._last[chat_id] = max(now, self._last.get(chat_id, now))
        self._second.append(now)
        if chat_id < 0:
            self._minute.setdefault(chat_id, deque()).append(now)

    def block(self, chat_id: int, until: float) -> None:
        """Telegram said ``retry_after``: nothing goes to this chat before ``until``."""
        self._blocked[chat_id] = max(until, self._blocked.get(chat_id, until))

    def _forget(self, now: float) -> None:
        if len(self._last) > _PRUNE_AT:
            horizon = now - self.limits.chat_interval
            self._last = {c: t for c, t in self._last.items() if t > horizon}
        while self._second and self._second[0] <= now - 1.0:
            self._second.popleft()
        for chat_id in [c for c, until in self._blocked.items() if until <= now]:
            del self._blocked[chat_id]
        for chat_id, stamps in list(self._minute.items()):
            while stamps and stamps[0] <= now - 60.0:
                stamps.popleft()
            if not stamps:
                del self._minute[chat_id]
