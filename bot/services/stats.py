"""/stats: a chat's messages per day by final state and by route, and a short summary.

Counted in Python from keyset pages of the chat's messages (:meth:`History.stats_pages`), so
the same code runs on SQLite and PostgreSQL and days are the chat's own (its time zone):
memory holds one page and the counters (days × states, days × routes), plus one number per
delivered message for the median.

- *sent*: every message the chat sent in the period (one per recipient);
- *delivered*: delivered or read; *failed*: failed, undelivered, aborted or expired;
- *delivery rate*: delivered ÷ sent; *median time to delivered*: from the send (or the time a
  provider was asked to send it later) to the ``delivered`` receipt.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from i18n import N_
from providers.base import DeliveryState
from storage.repo import Repository

DEFAULT_DAYS = 7
MAX_DAYS = 90

# The chart's state groups: keys in code, and (translated with _()) its legend's labels.
DELIVERED = N_("delivered")
FAILED = N_("failed")
OPEN = N_("in progress")
UNKNOWN = N_("unknown")
OUTCOMES = (DELIVERED, FAILED, OPEN, UNKNOWN)  # the chart's state groups, in stacking order
_DELIVERED_STATES = {DeliveryState.DELIVERED.value, DeliveryState.READ.value}


def outcome_of(state: str) -> str:
    """The chart's group of a message state."""
    if state in _DELIVERED_STATES:
        return DELIVERED
    try:
        known = DeliveryState(state)
    except ValueError:
        return UNKNOWN
    if known == DeliveryState.UNKNOWN:
        return UNKNOWN
    return FAILED if known.is_final else OPEN


@dataclass(slots=True)
class Stats:
    """Counts per local day of the period, by outcome and by route, and the summary figures."""

    days: list[date]
    zone: str
    by_outcome: Counter[tuple[date, str]] = field(default_factory=Counter)
    by_route: Counter[tuple[date, str]] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    to_delivered: list[float] = field(default_factory=list)  # seconds, one per delivery

    @property
    def sent(self) -> int:
        """Messages sent in the period."""
        return sum(self.outcomes.values())

    @property
    def routes(self) -> list[str]:
        """Routes used in the period, most messages first."""
        totals: Counter[str] = Counter()
        for (_day, route), n in self.by_route.items():
            totals[route] += n
        return [route for route, _ in totals.most_common()]

    @property
    def delivery_rate(self) -> float:
        """Delivered ÷ sent (0 when nothing was sent)."""
        return self.outcomes[DELIVERED] / self.sent if self.sent else 0.0

    @property
    def median_to_delivered(self) -> timedelta | None:
        """The median time from send to delivered receipt; None without deliveries."""
        if not self.to_delivered:
            return None
        return timedelta(seconds=statistics.median(self.to_delivered))


def read_days(value: int | None) -> int:
    """The period in days (default :data:`DEFAULT_DAYS`); ValueError outside 1…MAX_DAYS."""
    days = DEFAULT_DAYS if value is None else value
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(days)
    return days


async def chat_stats(
    repo: Repository, chat_id: int, *, days: int, zone: str, now: datetime
) -> Stats:
    """The chat's statistics over the last ``days`` local days, today included."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    stats = Stats([first + timedelta(days=i) for i in range(days)], zone)
    since = datetime.combine(first, time(), tzinfo=tz)
    async for page in repo.history.stats_pages(chat_id, since):
        for row in page:
            day = row.created_at.astimezone(tz).date()
            outcome = outcome_of(row.state)
            stats.by_outcome[(day, outcome)] += 1
            stats.by_route[(day, f"{row.provider}:{row.channel}")] += 1
            stats.outcomes[outcome] += 1
            if row.delivered_at is not None:
                start = max(row.created_at, row.send_at or row.created_at)
                stats.to_delivered.append(max(0.0, (row.delivered_at - start).total_seconds()))
    return stats
