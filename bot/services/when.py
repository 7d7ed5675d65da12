"""Reading ``<when>`` for /schedule and /reschedule, and computing recurring run times.

Accepted forms (read in the chat's time zone unless an ``Area/City`` token follows the time)::

    2026-12-01T09:00   2026-12-01 09:00   2026-12-01T09:00+07:00   17:30 (today)
    in 2h   in 30m   in 1d   in 1h30m   in 2 hours
    today 17:00   tomorrow 09:00   tomorrow 9am
    every day 09:00   every weekday 08:30   every mon,wed 17:30   every 2h   every 90m

``<when>`` is one to three tokens at the front of the command; :func:`read_when` takes exactly
what it understands and returns the rest (route, recipients, text) untouched.

Recurrence is an RFC 5545 ``RRULE`` evaluated with :mod:`dateutil.rrule`. Day and weekday rules
run on the chat's wall clock (09:00 stays 09:00 local across a DST change); ``every 2h`` rules
count elapsed time in UTC (a DST change neither adds nor drops a run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

from bot.parsing import take_token
from bot.services.chats import valid_timezone
from bot.services.errors import BadInput, echo
from bot.services.integers import read_whole
from i18n import N_, _

MIN_INTERVAL = timedelta(minutes=5)
MAX_AHEAD = timedelta(days=366)
# What the user types: the input grammar is English in every language.
EXAMPLES = (
    "2026-12-01 09:00, in 2h, tomorrow 09:00, every day 09:00, "
    "every mon,wed 17:30"  # i18n: not shown
)
TOO_FAR = N_("That is more than a year ahead; schedule at most 366 days ahead.")

# [0-9], not \d: \d also matches other scripts' digits, which int() and datetime then read.
_CLOCK = re.compile(r"^([0-9]{1,2})(?::([0-9]{2}))?(?::([0-9]{2}))?(am|pm)?$", re.IGNORECASE)
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_LIKE = re.compile(r"^[0-9]{1,2}(:|am|pm)", re.IGNORECASE)
_ZONE = re.compile(r"^(UTC|[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)+)$")
_UNITS = {
    "w": 7 * 24 * 60,
    "week": 7 * 24 * 60,
    "weeks": 7 * 24 * 60,
    "d": 24 * 60,
    "day": 24 * 60,
    "days": 24 * 60,
    "h": 60,
    "hr": 60,
    "hrs": 60,
    "hour": 60,
    "hours": 60,
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
}
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_COMPACT = re.compile(rf"(?:[0-9]+(?:{_UNIT}))+", re.IGNORECASE)
_PIECE = re.compile(rf"([0-9]+)({_UNIT})", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+")
_DAYS = {
    "mon": "MO",
    "monday": "MO",
    "tue": "TU",
    "tues": "TU",
    "tuesday": "TU",
    "wed": "WE",
    "wednesday": "WE",
    "thu": "TH",
    "thur": "TH",
    "thurs": "TH",
    "thursday": "TH",
    "fri": "FR",
    "friday": "FR",
    "sat": "SA",
    "saturday": "SA",
    "sun": "SU",
    "sunday": "SU",
}
_DAY_SETS = {
    "day": (),
    "days": (),
    "daily": (),
    "weekday": ("MO", "TU", "WE", "TH", "FR"),
    "weekdays": ("MO", "TU", "WE", "TH", "FR"),
    "weekend": ("SA", "SU"),
    "weekends": ("SA", "SU"),
}
_DAY_ORDER = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WALL_CLOCK = ("DAILY", "WEEKLY")


def load_zone(name: str) -> ZoneInfo:
    """The zone of a stored chat setting, or ``BadInput`` saying how to fix it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadInput(
            _(
                "This chat's time zone “{zone}” is not known here any more. "
                "Set it again with /timezone Area/City."
            ).format(zone=escape(name))
        ) from exc


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A repeat rule: an RFC 5545 ``RRULE`` body such as ``FREQ=DAILY;BYHOUR=9;BYMINUTE=0``."""

    rule: str

    @property
    def parts(self) -> dict[str, str]:
        """The rule's ``KEY=VALUE`` parts."""
        return dict(p.split("=", 1) for p in self.rule.split(";") if "=" in p)

    @property
    def on_wall_clock(self) -> bool:
        """Whether runs follow the local clock (day rules) rather than elapsed time."""
        return self.parts.get("FREQ") in _WALL_CLOCK

    @property
    def interval(self) -> timedelta:
        """The fixed gap between runs of an elapsed-time rule (``every 2h``)."""
        parts = self.parts
        unit = timedelta(hours=1) if parts.get("FREQ") == "HOURLY" else timedelta(minutes=1)
        return unit * int(parts.get("INTERVAL", "1"))

    @property
    def label(self) -> str:
        """The rule as a user would type it: ``every mon,wed 17:30``, ``every 2h``.

        Written in the input grammar (English in every language), so it can be typed back.
        """
        if not self.on_wall_clock:
            return f"every {duration_label(self.interval)}"
        parts = self.parts
        clock = f"{int(parts['BYHOUR']):02d}:{int(parts['BYMINUTE']):02d}"
        days = parts.get("BYDAY", "")
        if not days:
            return f"every day {clock}"  # i18n: not shown
        if days == "MO,TU,WE,TH,FR":
            return f"every weekday {clock}"  # i18n: not shown
        named = {v: k for k, v in _DAYS.items() if len(k) == 3}
        return f"every {','.join(named[d] for d in days.split(','))} {clock}"

    def next_after(self, after: datetime, *, zone: ZoneInfo, anchor: datetime) -> datetime:
        """The first run strictly after ``after`` (UTC).

        Args:
            after: the moment to look past.
            zone: the schedule's time zone (wall-clock rules).
            anchor: a run time; elapsed-time rules keep its phase (every 2h from 09:00).

        """
        if not self.on_wall_clock:
            steps = (after - anchor) // self.interval + 1
            return anchor + self.interval * steps
        rule = rrulestr(self.rule, dtstart=_naive(after, zone))
        candidate = rule.after(_naive(after, zone))
        # A wall-clock time repeated by a DST fall-back can map back before ``after``.
        while candidate is not None and _aware(candidate, zone) <= after:
            candidate = rule.after(candidate)
        if candidate is None:
            raise ValueError(f"rule {self.rule} has no run after {after}")
        return _aware(candidate, zone)

    def latest_due(self, due: datetime, now: datetime, *, zone: ZoneInfo) -> datetime:
        """The last run time in ``[due, now]``: the one to fire when downtime skipped others."""
        if now <= due:
            return due
        if not self.on_wall_clock:
            return due + self.interval * ((now - due) // self.interval)
        rule = rrulestr(self.rule, dtstart=_naive(due, zone))
        latest = rule.before(_naive(now, zone), inc=True)
        return due if latest is None else max(due, _aware(latest, zone))


def _naive(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


def _aware(naive: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous local time is its first occurrence; a non-existent one (inside a
    # spring-forward gap) is read with the offset before the change, i.e. shifted later.
    return naive.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class When:
    """A resolved ``<when>``: the first run (UTC), the zone it was read in, the repeat rule."""

    at: datetime
    zone: str
    recurrence: Recurrence | None = None


def duration_label(span: timedelta) -> str:
    """``1h30m``, ``2d``, ``45m``."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n) or "0m"


def read_duration(text: str) -> timedelta:
    """A whole span as ``/schedule in …`` reads it (``24h``, ``1h30m``, ``2 days``).

    Raises:
        BadInput: anything but one positive span.

    """
    span, rest = _take_duration(text.strip())
    if span is None or rest.strip() or span <= timedelta(0):
        raise BadInput(
            _("{value} is not a span of time such as 24h, 90m or 2d.").format(value=echo(text))
        )
    return span


def read_when(body: str, *, zone: str, now: datetime) -> tuple[When, str]:
    """Take ``<when>`` off the front of ``body``; returns it and the rest as typed.

    Raises:
        BadInput: unreadable, past, too far ahead, or in an unknown time zone; the message
            says which and shows the accepted forms.

    """
    first, rest = take_token(body)
    word = first.lower()
    if not first:
        raise BadInput(_("When? Say when to send it, e.g. {examples}.").format(examples=EXAMPLES))
    if word == "every":
        return _read_every(rest, zone=zone, now=now)
    if word == "in":
        span, rest = _take_duration(rest)
        if span is None:
            raise BadInput(_("In how long? e.g. in 2h, in 30m, in 1h30m, in 1d."))
        if span < timedelta(minutes=1):
            raise BadInput(_("Schedule at least 1 minute ahead; to send now use /send."))
        zone_name, rest = _take_zone(rest, zone)
        # Exactly the span from now: "in 1m" typed at 10:15:59 is due at 10:16:59.
        return _checked(When(now + span, zone_name), now), rest
    if word in ("today", "tomorrow"):
        clock_text, after = take_token(rest)
        clock = _clock(clock_text)
        if clock is None:
            raise BadInput(
                _("{day} at what time? e.g. {word} 09:00.").format(day=echo(first), word=word)
            )
        zone_name, rest = _take_zone(after, zone)
        tz = load_zone(zone_name)
        day = now.astimezone(tz).date() + timedelta(days=1 if word == "tomorrow" else 0)
        return _checked(When(_local(day, clock, tz), zone_name), now), rest
    if _ISO_DATE.match(first):
        return _read_iso(first, rest, zone=zone, now=now)
    clock = _clock(first)
    if clock is not None:
        zone_name, rest = _take_zone(rest, zone)
        tz = load_zone(zone_name)
        when = When(_local(now.astimezone(tz).date(), clock, tz), zone_name)
        if when.at <= now:
            raise BadInput(
                _(
                    "{clock:%H:%M} today has passed in {zone}. "
                    "Did you mean tomorrow {clock:%H:%M}?"
                ).format(clock=clock, zone=zone_name)
            )
        return _checked(when, now), rest
    raise BadInput(
        _("I cannot read “{text}” as a time. Use one of: {examples}.").format(
            text=echo(first), examples=EXAMPLES
        )
    )


def _checked(when: When, now: datetime) -> When:
    if when.at <= now:
        raise BadInput(
            _("That time is in the past: {when}. Choose a later time.").format(
                when=describe_time(when.at, when.zone)
            )
        )
    if when.at - now > MAX_AHEAD:
        raise BadInput(_(TOO_FAR))
    return when


def _clock(token: str) -> time | None:
    """A time of day (``09:00``, ``9:00:30``, ``9am``, ``5:30pm``), None if it is not one."""
    match = _CLOCK.match(token)
    if match is None or (match.group(2) is None and match.group(4) is None):
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    second = int(match.group(3) or 0)
    suffix = (match.group(4) or "").lower()
    if suffix:
        if not 1 <= hour <= 12:
            raise BadInput(_("“{text}” is not a time of day.").format(text=echo(token)))
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise BadInput(
            _("“{text}” is not a time of day (00:00 to 23:59).").format(text=echo(token))
        )
    return time(hour, minute, second)


def _local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _take_zone(rest: str, default: str) -> tuple[str, str]:
    """An optional ``Area/City`` right after the time; the chat's zone otherwise."""
    token, after = take_token(rest)
    if token and _ZONE.match(token):
        return valid_timezone(token), after
    load_zone(default)
    return default, rest


def _take_duration(body: str) -> tuple[timedelta | None, str]:
    """``2h``, ``1h30m``, ``2 hours``, ``1 hour 30 minutes``: taken greedily from the front.

    Raises:
        BadInput: for a span beyond :data:`MAX_AHEAD` (timedelta itself overflows soon after).

    """
    minutes = 0
    found = False
    rest = body
    while True:
        token, after = take_token(rest)
        if _COMPACT.fullmatch(token):
            pieces = _PIECE.findall(token)
        elif _NUMBER.fullmatch(token) and take_token(after)[0].lower() in _UNITS:
            unit, after = take_token(after)
            pieces = [(token, unit)]
        else:
            break
        for amount, unit in pieces:
            value = read_whole(amount)  # None beyond 64 bits: far too long anyway
            if value is None:
                raise BadInput(_(TOO_FAR))
            minutes += value * _UNITS[unit.lower()]
        found, rest = True, after
    if minutes > MAX_AHEAD // timedelta(minutes=1):
        raise BadInput(_(TOO_FAR))
    return (timedelta(minutes=minutes) if found else None), rest


def _read_iso(first: str, rest: str, *, zone: str, now: datetime) -> tuple[When, str]:
    text = first
    if len(first) == 10:  # a date alone: the time is the next token
        clock_text, after = take_token(rest)
        if not _TIME_LIKE.match(clock_text):
            raise BadInput(_("{day} at what time? e.g. {day} 09:00.").format(day=echo(first)))
        text, rest = f"{first}T{clock_text}", after
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        date_part, _sep, clock_part = text.partition("T")
        clock = _clock(clock_part)
        try:
            day = date.fromisoformat(date_part)
        except ValueError:
            clock = None
        if clock is None:
            raise BadInput(
                _(
                    "“{text}” is not a date and time I can read. "
                    "Use 2026-12-01 09:00 (year-month-day hours:minutes)."
                ).format(text=echo(text.replace("T", " ")))
            ) from None
        parsed = datetime.combine(day, clock)
    if parsed.tzinfo is not None:
        token, _after = take_token(rest)
        if token and _ZONE.match(token):
            raise BadInput(_("Give either a UTC offset or a time zone, not both."))
        return _checked(When(parsed.astimezone(UTC), zone), now), rest
    zone_name, rest = _take_zone(rest, zone)
    at = parsed.replace(tzinfo=load_zone(zone_name)).astimezone(UTC)
    return _checked(When(at, zone_name), now), rest


def _read_every(body: str, *, zone: str, now: datetime) -> tuple[When, str]:
    span, rest = _take_duration(body)
    if span is not None:
        return _every_interval(span, rest, zone=zone, now=now)
    first, rest = take_token(body)
    while first.endswith(",") and rest:  # "every mon, wed 17:30"
        more, rest = take_token(rest)
        first += more
    word = first.lower()
    if word in _DAY_SETS:
        days = _DAY_SETS[word]
    else:
        names = [n for n in word.split(",") if n]
        if not names or names[0] not in _DAYS:
            raise BadInput(
                _(
                    "I cannot read “every {text}”. Use every day 09:00, "
                    "every weekday 08:30, every mon,wed 17:30 or every 2h."
                ).format(text=echo(first))
            )
        unknown = [n for n in names if n not in _DAYS]
        if unknown:
            raise BadInput(
                _("“{text}” is not a day. Use mon, tue, wed, thu, fri, sat, sun.").format(
                    text=echo(unknown[0])
                )
            )
        chosen = {_DAYS[n] for n in names}
        days = tuple(d for d in _DAY_ORDER if d in chosen)
    clock_text, after = take_token(rest)
    clock = _clock(clock_text)
    if clock is None:
        raise BadInput(
            _("Every {days} at what time? e.g. every {days} 09:00.").format(days=echo(first))
        )
    if clock.second:
        raise BadInput(_("Repeating times are whole minutes, like 09:00."))
    zone_name, rest = _take_zone(after, zone)
    rule = f"FREQ=DAILY;BYHOUR={clock.hour};BYMINUTE={clock.minute};BYSECOND=0"
    if days and len(days) < 7:
        rule = f"FREQ=WEEKLY;BYDAY={','.join(days)};BYHOUR={clock.hour};"
        rule += f"BYMINUTE={clock.minute};BYSECOND=0"
    recurrence = Recurrence(rule)
    at = recurrence.next_after(now, zone=load_zone(zone_name), anchor=now)
    return _checked(When(at, zone_name, recurrence), now), rest


def _every_interval(span: timedelta, rest: str, *, zone: str, now: datetime) -> tuple[When, str]:
    if span < MIN_INTERVAL:
        raise BadInput(
            _("Repeating sends run at most every {span}; use every {span} or longer.").format(
                span=duration_label(MIN_INTERVAL)
            )
        )
    if span >= timedelta(days=1):
        raise BadInput(
            _("For daily or weekly runs say the time: every day 09:00 or every mon 09:00.")
        )
    minutes = int(span.total_seconds() // 60)
    rule = f"FREQ=HOURLY;INTERVAL={minutes // 60}"
    if minutes % 60:
        rule = f"FREQ=MINUTELY;INTERVAL={minutes}"
    zone_name, rest = _take_zone(rest, zone)
    at = now.replace(second=0, microsecond=0) + span
    return _checked(When(at, zone_name, Recurrence(rule)), now), rest


def describe_time(at: datetime, zone: str) -> str:
    """``Tue 2026-12-01 09:00 Asia/Jakarta (02:00 UTC)``; seconds only when not zero."""
    fmt = "%a %Y-%m-%d %H:%M" + (":%S" if at.second else "")
    local = at.astimezone(load_zone(zone))
    utc = at.astimezone(UTC)
    if zone == "UTC":
        return f"{utc.strftime(fmt)} UTC"
    same_day = local.date() == utc.date()
    utc_fmt = ("%H:%M" if same_day else "%a %Y-%m-%d %H:%M") + (":%S" if at.second else "")
    return f"{local.strftime(fmt)} {zone} ({utc.strftime(utc_fmt)} UTC)"
