"""Quiet hours (/quiet): the window's arithmetic, and sends and schedules held until its end.

Through the real Application with an injected clock: a send inside the window becomes a
scheduled send at its end (nothing is dropped, the chat is told when), a schedule firing inside
it waits (a repeating one keeps its rhythm), and ``/send now`` goes at once after a
confirmation that names the quiet hours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.services.errors import BadInput
from bot.services.quiet import QuietHours
from storage.models import Chat, Schedule, ScheduleState
from tests.confirm_support import confirm
from tests.conftest import GROUP, USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, feed, photo_message, private_message
from tests.schedule_support import at, manual_bot, runner_of, schedule

NUMBER = "6281234567890"
ZONE = "Asia/Jakarta"  # UTC+7, no DST
# 23:30 in Jakarta on Friday 2027-03-26; the window 22:00-07:00 ends at 00:00 UTC.
NIGHT = datetime(2027, 3, 26, 16, 30, tzinfo=UTC)
DAWN = datetime(2027, 3, 27, 0, 0, tzinfo=UTC)
DAY = datetime(2027, 3, 26, 5, 0, tzinfo=UTC)  # 12:00 in Jakarta
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


# -- the window ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("25:00-26:00", "25:00 is not a time of day"),
        ("22:00-07:60", "07:60 is not a time of day"),
        ("22:00-22:00", "starts and ends at the same time"),
        ("tonight", "is not a window"),
        ("22-07", "is not a window"),
    ],
)
def test_bad_windows_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        QuietHours.parse(text)


@pytest.mark.parametrize(
    ("local", "inside"),
    [
        (time(21, 59), False),
        (time(22, 0), True),
        (time(23, 30), True),
        (time(0, 0), True),
        (time(6, 59), True),
        (time(7, 0), False),
        (time(12, 0), False),
    ],
)
def test_a_window_crossing_midnight(local: time, inside: bool) -> None:
    window = QuietHours.parse("22:00-07:00")
    assert window.crosses_midnight
    assert window.contains(local) is inside


def test_a_window_within_one_day() -> None:
    window = QuietHours.parse("12:00 - 13:30")
    assert str(window) == "12:00-13:30"
    assert not window.crosses_midnight
    assert window.contains(time(12, 0))
    assert window.contains(time(13, 29))
    assert not window.contains(time(13, 30))
    assert not window.contains(time(23, 0))


def test_held_until_is_the_next_end_of_the_window_in_the_chat_zone() -> None:
    window = QuietHours.parse("22:00-07:00")
    assert window.held_until(NIGHT, ZONE) == DAWN  # before midnight: tomorrow's 07:00
    early = datetime(2027, 3, 26, 20, 0, tzinfo=UTC)  # 03:00 on Saturday in Jakarta
    assert window.held_until(early, ZONE) == DAWN  # after midnight: the same day's 07:00
    assert window.held_until(DAY, ZONE) is None


def test_time_zones_decide_whether_the_same_moment_is_quiet() -> None:
    window = QuietHours.parse("22:00-07:00")
    assert window.held_until(NIGHT, ZONE) is not None  # 23:30 in Jakarta
    assert window.held_until(NIGHT, "Europe/Berlin") is None  # 17:30 in Berlin
    assert window.held_until(NIGHT, "America/New_York") is None  # 12:30 in New York
    tokyo = window.held_until(NIGHT, "Asia/Tokyo")  # 01:30 in Tokyo: until 07:00 there
    assert tokyo == datetime(2027, 3, 26, 22, 0, tzinfo=UTC)


def test_an_end_skipped_by_a_dst_jump_still_lies_ahead() -> None:
    # Berlin skips 02:00-03:00 on 2027-03-28: the end 02:30 does not exist that night.
    window = QuietHours.parse("01:00-02:30")
    now = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)  # 01:30 CET
    until = window.held_until(now, "Europe/Berlin")
    assert until is not None
    assert until > now
    assert window.held_until(until, "Europe/Berlin") is None


# -- through the Application --------------------------------------------------------------------


@pytest.fixture
async def qbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot in Jakarta with quiet hours 22:00-07:00, at night."""
    bot = await manual_bot(tmp_path, tg, nusa, confirm_above=3)
    await bot.connect()
    await bot.private(f"/timezone {ZONE}")
    await bot.private("/use nusasms:wa")
    reply = await bot.private("/quiet 22:00-07:00")
    assert "Quiet hours: 22:00–07:00 (Asia/Jakarta" in reply, reply
    at(bot, NIGHT)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def chat(bot: Bot, chat_id: int = USER) -> Chat:
    async with bot.services.repo.db.read() as s:
        row = await s.get(Chat, chat_id)
    assert row is not None
    return row


async def test_quiet_shows_sets_and_turns_off(qbot: Bot) -> None:
    assert "Quiet hours: 22:00–07:00 (Asia/Jakarta)" in await qbot.private("/quiet")
    reply = await qbot.private("/quiet 25:00-26:00")
    assert "25:00 is not a time of day" in reply, reply
    assert (await chat(qbot)).quiet_hours == "22:00-07:00"  # unchanged
    assert "Quiet hours are off" in await qbot.private("/quiet off")
    assert (await chat(qbot)).quiet_hours is None
    assert "Quiet hours: none" in await qbot.private("/quiet")
    reply = await qbot.private(f"/send {NUMBER} Hi")
    assert "accepted → 6281234567890" in reply, reply  # off: it goes at once, even at night


async def test_quiet_needs_an_admin_in_a_group(qbot: Bot) -> None:
    await qbot.group("/help")
    reply = await qbot.group("/quiet 22:00-07:00", user_id=7)
    assert "/quiet needs the admin role" in reply, reply
    assert (await chat(qbot, GROUP)).quiet_hours is None


async def test_a_send_inside_the_window_is_held_and_goes_at_its_end(qbot: Bot) -> None:
    reply = await qbot.private(f"/send {NUMBER} Good morning")
    assert "this send is held until Sat 2027-03-27 07:00 Asia/Jakarta" in reply, reply
    assert "as scheduled send #1" in reply
    assert qbot.nusa.sent == []
    row = await schedule(qbot, 1)
    assert (row.next_run_at, row.state) == (DAWN, ScheduleState.PENDING)
    runner = runner_of(qbot)
    assert await runner.run_due(DAWN - timedelta(seconds=1)) == 0
    assert await runner.run_due(DAWN) == 1
    assert [(m.destination, m.message) for m in qbot.nusa.sent] == [(NUMBER, "Good morning")]


async def test_a_held_send_replayed_is_held_once(qbot: Bot) -> None:
    update = private_message(f"/send {NUMBER} Once")
    await feed(qbot.app, update)
    await feed(qbot.app, update)  # Telegram (or the inbox after a crash) hands it over again
    async with qbot.services.repo.db.read() as s:
        (row,) = list(await s.exec(select(Schedule)))
    assert row.origin is not None
    assert await runner_of(qbot).run_due(DAWN) == 1
    assert len(qbot.nusa.sent) == 1


async def test_a_schedule_firing_inside_the_window_waits_for_its_end(qbot: Bot) -> None:
    at(qbot, DAY)
    reply = await qbot.private(f"/schedule 2027-03-26 23:00 {NUMBER} Night shift")
    assert "inside this chat's quiet hours: it waits until Sat 2027-03-27 07:00" in reply, reply
    due = datetime(2027, 3, 26, 16, 0, tzinfo=UTC)  # 23:00 in Jakarta
    mark = qbot.tg.mark()
    assert await runner_of(qbot).run_due(due) == 1
    (told,) = qbot.replies_since(mark, USER)
    assert "is due inside this chat's quiet hours; it waits until Sat 2027-03-27 07:00" in told
    assert qbot.nusa.sent == []
    row = await schedule(qbot, 1)
    assert (row.state, row.next_run_at, row.runs) == (ScheduleState.PENDING, DAWN, 0)
    assert await runner_of(qbot).run_due(DAWN) == 1
    assert len(qbot.nusa.sent) == 1
    assert (await schedule(qbot, 1)).state == ScheduleState.DONE


async def test_a_repeating_schedule_held_keeps_its_rhythm(qbot: Bot) -> None:
    at(qbot, DAY)
    await qbot.private(f"/schedule every day 23:00 {NUMBER} Nightly report")
    first = datetime(2027, 3, 26, 16, 0, tzinfo=UTC)
    assert await runner_of(qbot).run_due(first) == 1
    assert qbot.nusa.sent == []
    assert await runner_of(qbot).run_due(DAWN) == 1
    assert len(qbot.nusa.sent) == 1
    row = await schedule(qbot, 1)
    # The next run is 23:00 again, not 07:00: the held run did not move the rhythm.
    assert (row.next_run_at, row.hold_due, row.runs) == (first + timedelta(days=1), None, 1)


async def test_send_now_goes_at_once_after_a_confirmation_naming_quiet_hours(qbot: Bot) -> None:
    reply = await qbot.private(f"/send now {NUMBER} Server down")
    assert "Send to 1 recipient?" in reply, reply
    assert "Quiet hours now (22:00–07:00, Asia/Jakarta): Send sends it at once anyway." in reply
    assert qbot.nusa.sent == []
    said = await confirm(qbot)
    assert "Sending, confirmed by @alice." in said, said
    assert len(qbot.nusa.sent) == 1
    async with qbot.services.repo.db.read() as s:
        assert list(await s.exec(select(Schedule))) == []


async def test_send_now_outside_the_window_is_a_plain_send(qbot: Bot) -> None:
    at(qbot, DAY)
    reply = await qbot.private(f"/send now {NUMBER} Lunch")
    assert "accepted → 6281234567890" in reply, reply


async def test_a_large_send_inside_the_window_says_so_first_and_is_held_on_send(
    qbot: Bot,
) -> None:
    numbers = ",".join(f"62812{i:08d}" for i in range(5))
    reply = await qbot.private(f"/send {numbers} Promo")
    assert "Send to 5 recipients?" in reply, reply
    assert "after Send it is held until Sat 2027-03-27 07:00 Asia/Jakarta" in reply
    said = await confirm(qbot)
    assert "this send is held until Sat 2027-03-27 07:00" in said, said
    assert qbot.nusa.sent == []
    async with qbot.services.repo.db.read() as s:
        (row,) = list(await s.exec(select(Schedule).order_by(col(Schedule.id))))
    assert row.next_run_at == DAWN
    assert await runner_of(qbot).run_due(DAWN) == 1
    assert len(qbot.nusa.sent) == 5


async def test_a_file_cannot_wait_and_the_reply_says_what_to_do(qbot: Bot) -> None:
    qbot.tg.add_file(JPEG, file_id="PHOTO", file_path="photos/file_1.jpg")
    photo = photo_message(file_id="PHOTO", file_size=len(JPEG))
    await feed(qbot.app, photo)
    reply = await qbot.private(f"/send {NUMBER} Menu", reply_to=photo)
    assert "A photo cannot wait for 07:00" in reply, reply
    assert "/send now" in reply
    assert qbot.nusa.sent == []
    async with qbot.services.repo.db.read() as s:
        assert list(await s.exec(select(Schedule))) == []
