"""How often delivery states are polled, when they expire, and the clock everything reads.

Backoff: the first poll comes ``first`` seconds after the send (set by the sender), poll *n*
then waits ``first * factor**n`` seconds, never more than ``cap``. A message still open
``expire_after`` after it was created becomes ``expired``.

Read receipts: ``delivered`` is final, but a WhatsApp message may still become ``read``. A
delivered message on a read-receipt channel keeps being polled on the same backoff for
``read_watch`` after its delivery, then polling stops (it stays ``delivered``). That bounds
the extra polls per message (under 30 with the defaults) while catching the reads that come
soon; a push callback still records a later read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Settings
from storage.models import utcnow
from storage.tracking_repo import ReadWatch

# Now, as an aware UTC datetime; injected so tests drive time instead of sleeping.
Clock = Callable[[], datetime]

system_clock: Clock = utcnow
READ_CHANNELS = frozenset({"wa"})


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """The tracker's schedule; :meth:`from_settings` reads it from the environment."""

    first: float = 15.0
    cap: float = 900.0
    factor: float = 2.0
    expire_after: timedelta = timedelta(hours=48)
    read_watch: timedelta = timedelta(hours=6)
    read_channels: frozenset[str] = READ_CHANNELS
    page_size: int = 100
    max_pages: int = 50
    concurrency: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        """The policy from ``STATUS_*`` settings."""
        return cls(
            first=settings.status_poll_seconds,
            cap=max(settings.status_poll_max_seconds, settings.status_poll_seconds),
            expire_after=timedelta(hours=settings.status_expire_hours),
            read_watch=timedelta(hours=settings.status_read_watch_hours),
            concurrency=settings.status_poll_concurrency,
        )

    def delay(self, attempts: int) -> timedelta:
        """The wait before the next poll of a message already polled ``attempts`` times."""
        seconds = self.first * self.factor ** min(max(attempts, 0), 32)
        return timedelta(seconds=min(seconds, self.cap))

    def catch_up(self, due: datetime, attempts: int, now: datetime) -> tuple[datetime, int]:
        """Where an unchanged backoff armed at ``due`` after ``attempts`` polls stands at ``now``.

        The restart rule: the database holds the next poll and attempts written with the last
        state change; the polls since then changed nothing and lived in memory only. Replaying
        them (each poll at its due time, ``attempts + 1``, the next ``delay`` later) gives the
        first poll at or after ``now`` and its attempts: after a short restart each message is
        polled when the previous run would have polled it, and after a long stop every
        message comes due within one ``cap`` rather than all at once.
        """
        while due < now:
            step = self.delay(attempts + 1)
            if step <= timedelta(0):
                return now, attempts
            if step.total_seconds() >= self.cap:  # capped: the rest is arithmetic
                polls = math.ceil((now - due) / step)
                return due + polls * step, attempts + polls
            due += step
            attempts += 1
        return due, attempts

    def watch(self, now: datetime) -> ReadWatch:
        """Which messages are polled at ``now`` (open ones, and recently delivered WA)."""
        since = now - self.read_watch if self.read_watch > timedelta(0) else None
        return ReadWatch(self.read_channels, since)

    @property
    def expire_hours(self) -> str:
        """The expiry age in hours for chat text (``48``, ``1.5``)."""
        hours = self.expire_after.total_seconds() / 3600
        return f"{hours:g}"
