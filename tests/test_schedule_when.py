"""Reading <when> and computing recurring runs: every form, DST changes, every bad input."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.services.errors import BadInput
from bot.services.when import Recurrence, describe_time, read_when

NOW = datetime(2027, 3, 26, 10, 15, 30, tzinfo=UTC)  # Friday; Berlin moves to CEST on the 28th
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "at", "zone", "rule", "rest"),
    [
        ("2027-12-01T09:00 628 hi", utc(2027, 12, 1, 8), "Europe/Berlin", None, "628 hi"),
        ("2027-12-01 09:00 628 hi", utc(2027, 12, 1, 8), "Europe/Berlin", None, "628 hi"),
        ("2027-12-01 9am 628 hi", utc(2027, 12, 1, 8), "Europe/Berlin", None, "628 hi"),
        ("2027-12-01T09:00+07:00 628", utc(2027, 12, 1, 2), "Europe/Berlin", None, "628"),
        ("2027-12-01T09:00Z 628", utc(2027, 12, 1, 9), "Europe/Berlin", None, "628"),
        ("in 2h 628 hi", utc(2027, 3, 26, 12, 15, 30), "Europe/Berlin", None, "628 hi"),
        ("in 30m 628", utc(2027, 3, 26, 10, 45, 30), "Europe/Berlin", None, "628"),
        ("in 1d 628", utc(2027, 3, 27, 10, 15, 30), "Europe/Berlin", None, "628"),
        ("in 1h30m 628", utc(2027, 3, 26, 11, 45, 30), "Europe/Berlin", None, "628"),
        ("in 2 hours 15 minutes 628", utc(2027, 3, 26, 12, 30, 30), "Europe/Berlin", None, "628"),
        ("tomorrow 09:00 628 hi", utc(2027, 3, 27, 8), "Europe/Berlin", None, "628 hi"),
        ("today 17:00 628", utc(2027, 3, 26, 16), "Europe/Berlin", None, "628"),
        ("today 5:30pm 628", utc(2027, 3, 26, 16, 30), "Europe/Berlin", None, "628"),
        ("17:00 628", utc(2027, 3, 26, 16), "Europe/Berlin", None, "628"),
        ("tomorrow 09:00 Asia/Jakarta 628", utc(2027, 3, 27, 2), "Asia/Jakarta", None, "628"),
        (
            "every day 09:00 nusasms:wa 628 hi",
            utc(2027, 3, 27, 8),
            "Europe/Berlin",
            "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
            "nusasms:wa 628 hi",
        ),
        (
            "every mon,wed 17:30 628",
            utc(2027, 3, 29, 15, 30),  # Monday, already CEST
            "Europe/Berlin",
            "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=17;BYMINUTE=30;BYSECOND=0",
            "628",
        ),
        (
            "every mon, Wednesday 17:30 628",
            utc(2027, 3, 29, 15, 30),
            "Europe/Berlin",
            "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=17;BYMINUTE=30;BYSECOND=0",
            "628",
        ),
        (
            "every weekday 08:00 628",
            utc(2027, 3, 29, 6),
            "Europe/Berlin",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=0;BYSECOND=0",
            "628",
        ),
        (
            "every 2h 628",
            utc(2027, 3, 26, 12, 15),
            "Europe/Berlin",
            "FREQ=HOURLY;INTERVAL=2",
            "628",
        ),
        (
            "every 90m 628",
            utc(2027, 3, 26, 11, 45),
            "Europe/Berlin",
            "FREQ=MINUTELY;INTERVAL=90",
            "628",
        ),
    ],
)
def test_every_accepted_form(
    body: str, at: datetime, zone: str, rule: str | None, rest: str
) -> None:
    when, left = read_when(body, zone="Europe/Berlin", now=NOW)
    assert when.at == at
    assert when.zone == zone
    assert (when.recurrence.rule if when.recurrence else None) == rule
    assert left == rest


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "When?"),
        ("yesterday 628 hi", "cannot read “yesterday”"),
        ("<b> 628", "cannot read “&lt;b&gt;”"),
        ("in soon 628", "In how long?"),
        ("in 0m 628", "at least 1 minute"),
        ("tomorrow 628 hi", "tomorrow at what time?"),
        ("2027-12-01 628 hi", "2027-12-01 at what time?"),
        ("2027-02-30 09:00 628", "is not a date and time"),
        ("2027-12-01 25:00 628", "not a time of day"),
        ("2027-12-01 9:7 628", "is not a date and time"),
        ("25:00 628", "not a time of day"),
        ("13pm 628", "not a time of day"),
        ("2027-01-01 09:00 628", "in the past"),
        ("2027-03-26T10:00Z 628", "in the past"),
        ("10:00 628", "today has passed"),
        ("2029-01-01 09:00 628", "more than a year ahead"),
        ("tomorrow 09:00 Mars/Olympus 628", "“Mars/Olympus” is not a time zone"),
        ("2027-12-01T09:00+07:00 Asia/Jakarta 628", "either a UTC offset or a time zone"),
        ("every 1m 628", "use every 5m or longer"),
        ("every 1d 628", "say the time"),
        ("every fortnight 09:00 628", "cannot read “every fortnight”"),
        ("every mon,funday 09:00 628", "“funday” is not a day"),
        ("every day 628", "Every day at what time?"),
        ("every day 09:00:30 628", "whole minutes"),
    ],
)
def test_bad_when_gets_a_specific_reply(body: str, expected: str) -> None:
    with pytest.raises(BadInput) as caught:
        read_when(body, zone="Europe/Berlin", now=NOW)
    assert expected in caught.value.message


@pytest.mark.parametrize(
    "now",
    [NOW, NOW.replace(second=0, microsecond=1), NOW.replace(second=59, microsecond=999_999)],
    ids=["half-past", "just-after-the-minute", "just-before-the-next"],
)
@pytest.mark.parametrize(
    ("span", "delta"),
    [
        ("1m", timedelta(minutes=1)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1 day", timedelta(days=1)),
    ],
)
def test_relative_times_are_now_plus_the_span_exactly(
    now: datetime, span: str, delta: timedelta
) -> None:
    when, _ = read_when(f"in {span} 628", zone="Asia/Jakarta", now=now)
    assert when.at == now + delta


def test_a_broken_stored_zone_says_how_to_fix_it() -> None:
    with pytest.raises(BadInput, match="/timezone"):
        read_when("tomorrow 09:00 628", zone="Nowhere/Gone", now=NOW)


def test_daily_run_keeps_local_wall_clock_across_spring_forward() -> None:
    rule = Recurrence("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0")
    runs = []
    at = NOW
    for _ in range(3):
        at = rule.next_after(at, zone=BERLIN, anchor=at)
        runs.append(at)
    assert runs == [utc(2027, 3, 27, 8), utc(2027, 3, 28, 7), utc(2027, 3, 29, 7)]
    assert {r.astimezone(BERLIN).hour for r in runs} == {9}


def test_daily_run_keeps_local_wall_clock_across_fall_back_in_new_york() -> None:
    rule = Recurrence("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0")
    start = utc(2027, 11, 6, 15)  # Saturday; New York falls back on Sunday the 7th
    first = rule.next_after(start, zone=NEW_YORK, anchor=start)
    second = rule.next_after(first, zone=NEW_YORK, anchor=first)
    assert (first, second) == (utc(2027, 11, 7, 14), utc(2027, 11, 8, 14))
    assert first.astimezone(NEW_YORK).hour == second.astimezone(NEW_YORK).hour == 9


def test_a_time_repeated_by_fall_back_runs_once() -> None:
    rule = Recurrence("FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0")
    start = utc(2027, 11, 7, 4)  # 00:00 EDT on the fall-back day
    first = rule.next_after(start, zone=NEW_YORK, anchor=start)
    second = rule.next_after(first, zone=NEW_YORK, anchor=first)
    assert first == utc(2027, 11, 7, 5, 30)  # the first 01:30 (EDT)
    assert second == utc(2027, 11, 8, 6, 30)  # next day, not the repeated 01:30 EST


def test_a_time_skipped_by_spring_forward_runs_after_the_gap() -> None:
    rule = Recurrence("FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0")
    start = utc(2027, 3, 27, 12)
    first = rule.next_after(start, zone=BERLIN, anchor=start)
    assert first == utc(2027, 3, 28, 1, 30)  # 02:30 does not exist: 03:30 CEST
    assert rule.next_after(first, zone=BERLIN, anchor=first) == utc(2027, 3, 29, 0, 30)


def test_elapsed_rule_counts_real_hours_across_dst() -> None:
    rule = Recurrence("FREQ=HOURLY;INTERVAL=2")
    anchor = utc(2027, 3, 27, 23)
    runs = [anchor]
    for _ in range(3):
        runs.append(rule.next_after(runs[-1], zone=BERLIN, anchor=anchor))
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(hours=2)] * 3


def test_latest_due_after_downtime() -> None:
    hourly = Recurrence("FREQ=HOURLY;INTERVAL=2")
    due = utc(2027, 3, 26, 1)
    assert hourly.latest_due(due, utc(2027, 3, 26, 8, 30), zone=BERLIN) == utc(2027, 3, 26, 7)
    daily = Recurrence("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0")
    due = utc(2027, 3, 20, 8)
    assert daily.latest_due(due, NOW, zone=BERLIN) == utc(2027, 3, 26, 8)
    assert daily.latest_due(due, due - timedelta(hours=1), zone=BERLIN) == due


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=5;BYSECOND=0", "every day 09:05"),
        ("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=17;BYMINUTE=30;BYSECOND=0", "every mon,wed 17:30"),
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=0;BYSECOND=0", "every weekday 08:00"),
        ("FREQ=HOURLY;INTERVAL=2", "every 2h"),
        ("FREQ=MINUTELY;INTERVAL=90", "every 1h30m"),
    ],
)
def test_labels(rule: str, label: str) -> None:
    assert Recurrence(rule).label == label


def test_describe_shows_local_and_utc() -> None:
    assert describe_time(utc(2027, 12, 1, 2), "Asia/Jakarta") == (
        "Wed 2027-12-01 09:00 Asia/Jakarta (02:00 UTC)"
    )
    assert describe_time(utc(2027, 12, 1, 20), "Asia/Jakarta") == (
        "Thu 2027-12-02 03:00 Asia/Jakarta (Wed 2027-12-01 20:00 UTC)"
    )
    assert describe_time(utc(2027, 12, 1, 2), "UTC") == "Wed 2027-12-01 02:00 UTC"
