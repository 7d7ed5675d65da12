"""Quiet hours: a daily window, in the chat's time zone, during which nothing goes out.

``/quiet 22:00-07:00`` stores the window as typed (``HH:MM-HH:MM``) on the chat. A window
whose end is not after its start crosses midnight (22:00–07:00 covers 23:30 and 03:00). The
start belongs to the window and the end does not, so a send held "until 07:00" fires at 07:00
outside it. Wall-clock times are read in the chat's zone on the day in question, so a DST
change moves the window with the clock, as people expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.services.errors import BadInput, echo
from i18n import N_, _

OFF = "off"  # i18n: not shown (typed by the user)
USAGE = N_("/quiet &lt;HH:MM&gt;-&lt;HH:MM&gt; (e.g. /quiet 22:00-07:00) or /quiet off")
# [0-9], not \d: \d also matches other scripts' digits.
_WINDOW = re.compile(r"^([0-9]{1,2}):([0-9]{2})\s*[-–]\s*([0-9]{1,2}):([0-9]{2})$")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window ``[start, end)`` on the chat's wall clock."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``HH:MM-HH:MM`` into a window.

        Raises:
            BadInput: naming what is wrong (the shape, an hour or minute out of range, an
                empty window).

        """
        match = _WINDOW.match(text.strip())
        if match is None:
            raise BadInput(
                _("“{text}” is not a window. Usage: {usage}").format(
                    text=echo(text), usage=_(USAGE)
                )
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        for hour, minute in ((h1, m1), (h2, m2)):
            if hour > 23 or minute > 59:
                raise BadInput(
                    _(
                        "{hour:02d}:{minute:02d} is not a time of day: hours go from 00 to 23 "
                        "and minutes from 00 to 59. Usage: {usage}"
                    ).format(hour=hour, minute=minute, usage=_(USAGE))
                )
        if (h1, m1) == (h2, m2):
            raise BadInput(
                _(
                    "The window starts and ends at the same time; give two different times, "
                    "or /quiet off. Usage: {usage}"
                ).format(usage=_(USAGE))
            )
        return cls(time(h1, m1), time(h2, m2))

    @classmethod
    def stored(cls, value: str | None) -> QuietHours | None:
        """The window a chat stored (None when it has none, or an unreadable one)."""
        if not value:
            return None
        try:
            return cls.parse(value)
        except BadInput:
            return None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def label(self) -> str:
        """``22:00–07:00`` for chat text."""
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    @property
    def crosses_midnight(self) -> bool:
        """Whether the window runs past midnight (its end is not after its start)."""
        return self.end <= self.start

    def contains(self, local: time) -> bool:
        """Whether a wall-clock time is inside the window."""
        if self.crosses_midnight:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def held_until(self, now: datetime, zone: str) -> datetime | None:
        """When a send at ``now`` (aware) may go: the window's end (UTC), or None outside it."""
        tz = _zone(zone)
        local = now.astimezone(tz)
        if not self.contains(local.time().replace(tzinfo=None)):
            return None
        day = local.date()
        if self.crosses_midnight and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)
        end = datetime.combine(day, self.end, tzinfo=tz)
        # A wall-clock end skipped by a DST jump still maps to one instant after ``now``.
        at = end.astimezone(UTC)
        return at if at > now else now + timedelta(minutes=1)
