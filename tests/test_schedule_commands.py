"""/schedule, /scheduled, /cancel, /reschedule and the Cancel buttons, through the real bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import AuditEntry, ScheduleState
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, callback_query, feed, photo_message, private_message
from tests.schedule_support import T0, at, manual_bot, runner_of, schedule, schedules

NUMBER = "6281234567890"


@pytest.fixture
async def sbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot at T0 whose scheduler runs only when the test says so."""
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def test_schedule_confirms_local_and_utc_time(sbot: Bot) -> None:
    await sbot.private("/timezone Asia/Jakarta")
    reply = await sbot.private(f"/schedule 2027-12-01 09:00 nusasms:wa {NUMBER} Hello <team>")
    assert "Scheduled send #1 for Wed 2027-12-01 09:00 Asia/Jakarta (02:00 UTC)" in reply
    assert "Hello <team>" in reply
    (row,) = await schedules(sbot)
    assert row.state == ScheduleState.PENDING
    assert row.timezone == "Asia/Jakarta"
    assert row.recipients == f'["{NUMBER}"]'
    assert row.route == "nusasms:wa"
    assert sbot.nusa.sent == []  # nothing is sent before its time
    async with sbot.services.repo.db.read() as s:
        actions = [a.action for a in await s.exec(select(AuditEntry))]
    assert "schedule" in actions


async def test_schedule_normalises_numbers_with_the_chat_country(sbot: Bot) -> None:
    await sbot.private("/country ID")
    reply = await sbot.private("/schedule in 2h 0812-3456-7890, +62 812 3456 7891 Hi")
    assert "Scheduled send #1" in reply
    (row,) = await schedules(sbot)
    assert row.recipients == '["6281234567890", "6281234567891"]'
    assert row.next_run_at == T0 + timedelta(hours=2)


async def test_recurring_schedule_is_confirmed_with_its_rule(sbot: Bot) -> None:
    await sbot.private("/timezone Europe/Berlin")
    reply = await sbot.private(f"/schedule every mon,wed 17:30 {NUMBER} Standup")
    assert "Mon 2027-03-29 17:30 Europe/Berlin (15:30 UTC)" in reply
    assert "Repeats every mon,wed 17:30 (Europe/Berlin)" in reply


async def test_scheduled_lists_pending_sends_with_cancel_buttons(sbot: Bot) -> None:
    assert "Nothing is scheduled" in await sbot.private("/scheduled")
    await sbot.private(f"/schedule tomorrow 09:00 {NUMBER} First")
    await sbot.private(f"/schedule every 2h {NUMBER} Second")
    await sbot.private(f"/schedule in 1h {NUMBER} Third")
    await sbot.private("/cancel 3")
    reply = await sbot.private("/scheduled")
    assert "#1 Sat 2027-03-27 09:00 UTC" in reply
    assert "#2 Fri 2027-03-26 12:00 UTC" in reply
    assert "repeats every 2h" in reply
    assert "#3" not in reply
    markup = sbot.tg.calls_to("sendMessage")[-1].params["reply_markup"]
    assert markup == {
        "inline_keyboard": [
            [
                {"text": "Cancel #2", "callback_data": "sched:cancel:2"},
                {"text": "Cancel #1", "callback_data": "sched:cancel:1"},
            ]
        ]
    }


async def test_cancel_button_cancels_and_refreshes_the_list(sbot: Bot) -> None:
    await sbot.private(f"/schedule tomorrow 09:00 {NUMBER} First")
    await sbot.private(f"/schedule tomorrow 10:00 {NUMBER} Second")
    await sbot.private("/scheduled")
    listing = sbot.tg.calls_to("sendMessage")[-1].result
    mark = sbot.tg.mark()
    await feed(
        sbot.app,
        callback_query(
            "sched:cancel:1",
            message_chat_id=USER,
            message_id=listing["message_id"],
            message=listing,
        ),
    )
    assert sbot.tg.calls_to("answerCallbackQuery")
    assert "Scheduled send #1 cancelled by @alice" in sbot.replies_since(mark, USER)[-1]
    edited = sbot.tg.calls_to("editMessageText")[-1]
    assert "#2" in edited.result["text"]
    assert "#1 " not in edited.result["text"]
    assert (await schedule(sbot, 1)).state == ScheduleState.CANCELLED
    # Pressing the stale button again gets a specific answer, nothing changes.
    mark = sbot.tg.mark()
    await feed(
        sbot.app,
        callback_query("sched:cancel:1", message_chat_id=USER, message_id=listing["message_id"]),
    )
    assert "is cancelled already" in sbot.replies_since(mark, USER)[-1]
    assert (await schedule(sbot, 2)).state == ScheduleState.PENDING


async def test_cancel_button_needs_the_operator_role(sbot: Bot) -> None:
    sbot.tg.chat_admins[GROUP] = {USER}
    assert "2 is now viewer" in await sbot.group("/role 2 viewer")
    mark = sbot.tg.mark()
    await feed(
        sbot.app,
        callback_query("sched:cancel:1", message_chat_id=GROUP, message_id=5, user_id=2),
    )
    assert "needs the operator role" in sbot.replies_since(mark, GROUP)[-1]


async def test_cancel_with_id(sbot: Bot) -> None:
    await sbot.private(f"/schedule every day 09:00 {NUMBER} Daily")
    await sbot.private(f"/schedule in 2h {NUMBER} Once")
    assert "#1 (every day 09:00) cancelled: no further runs" in await sbot.private("/cancel 1")
    assert "#2 cancelled; it will not be sent" in await sbot.private("/cancel #2")
    assert {r.state for r in await schedules(sbot)} == {ScheduleState.CANCELLED}
    await runner_of(sbot).run_due(T0 + timedelta(days=2))
    assert sbot.nusa.sent == []


async def test_cancel_without_id_still_stops_a_guided_connect(sbot: Bot) -> None:
    await sbot.private("/connect nusasms")
    assert "Cancelled. Nothing was stored." in await sbot.private("/cancel")
    assert "There is nothing to cancel" in await sbot.private("/cancel")


async def test_reschedule_moves_a_pending_send(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 2h {NUMBER} Once")
    reply = await sbot.private("/reschedule 1 tomorrow 08:15")
    assert "Rescheduled send #1 for Sat 2027-03-27 08:15 UTC" in reply
    await runner_of(sbot).run_due(T0 + timedelta(hours=3))
    assert sbot.nusa.sent == []  # the old time no longer fires it
    await runner_of(sbot).run_due(T0 + timedelta(hours=22, minutes=15))
    assert len(sbot.nusa.sent) == 1


async def test_reschedule_of_a_recurring_send(sbot: Bot) -> None:
    await sbot.private(f"/schedule every day 09:00 {NUMBER} Daily")
    reply = await sbot.private("/reschedule 1 tomorrow 11:00")
    assert "then as before" in reply
    row = await schedule(sbot, 1)
    assert row.recurrence == "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0"
    reply = await sbot.private("/reschedule 1 every 6h")
    assert "Repeats every 6h" in reply
    assert (await schedule(sbot, 1)).recurrence == "FREQ=HOURLY;INTERVAL=6"


async def test_a_missed_one_off_can_be_rescheduled(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Late")
    await runner_of(sbot).run_due(T0 + timedelta(hours=3))
    assert (await schedule(sbot, 1)).state == ScheduleState.MISSED
    at(sbot, T0 + timedelta(hours=3))
    assert "Rescheduled send #1" in await sbot.private("/reschedule 1 in 10m")
    await runner_of(sbot).run_due(T0 + timedelta(hours=3, minutes=10))
    assert len(sbot.nusa.sent) == 1
    assert (await schedule(sbot, 1)).state == ScheduleState.DONE


# -- every bad input gets its own reply, and the database stays as it was ----------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/schedule", "Usage: /schedule <when>"),
        (f"/schedule 2026-01-01 09:00 {NUMBER} Hi", "That time is in the past"),
        (f"/schedule 09:00 {NUMBER} Hi", "09:00 today has passed in UTC"),
        (f"/schedule next week {NUMBER} Hi", "I cannot read “next” as a time"),
        (
            f"/schedule tomorrow 09:00 Mars/Olympus {NUMBER} Hi",
            "“Mars/Olympus” is not a time zone",
        ),
        (f"/schedule every 1m {NUMBER} Hi", "use every 5m or longer"),
        ("/schedule in 2h", "Who gets it, and what does it say?"),
        (f"/schedule in 2h {NUMBER}", "The message text is empty"),
        ("/schedule in 2h nusasms:wa", "No recipient given. Usage: /schedule"),
        (f"/schedule in 2h pigeon:post {NUMBER} Hi", "pigeon"),
        ("/schedule in 2h 12 Hi", "Nothing was sent"),
        ("/reschedule", "Usage: /reschedule <id> <when>"),
        ("/reschedule 1", "Usage: /reschedule <id> <when>"),
        ("/reschedule abc in 2h", "“abc” is not a scheduled send id"),
        ("/reschedule 99 in 2h", "There is no scheduled send #99"),
        ("/cancel 99", "There is no scheduled send #99"),
        ("/cancel x1", "“x1” is not a scheduled send id"),
    ],
)
async def test_bad_input(sbot: Bot, command: str, expected: str) -> None:
    reply = await sbot.private(command)
    assert expected in reply, reply
    assert await schedules(sbot) == []
    assert sbot.nusa.sent == []


async def test_bad_times_in_reschedule(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 2h {NUMBER} Once")
    before = await schedule(sbot, 1)
    for command, expected in [
        ("/reschedule 1 2026-01-01 09:00", "That time is in the past"),
        ("/reschedule 1 whenever", "I cannot read “whenever” as a time"),
        ("/reschedule 1 in 3h Europe/Nowhere", "“Europe/Nowhere” is not a time zone"),
        ("/reschedule 1 in 3h hello", "Only a time goes after the id"),
    ]:
        assert expected in await sbot.private(command), command
    assert await schedule(sbot, 1) == before


async def test_a_provider_not_connected_is_refused_at_once(sbot: Bot) -> None:
    sbot.services.schedules.clock = lambda: T0
    reply = await sbot.private(f"/schedule in 2h nusasms:wa {NUMBER} Hi", user_id=3)
    assert "NusaSMS is not connected in this chat" in reply
    assert await schedules(sbot) == []


async def test_an_unknown_chat_zone_is_reported(sbot: Bot) -> None:
    await sbot.services.repo.update_chat(USER, timezone="Atlantis/Capital")
    assert (
        "set it again with /timezone"
        in (await sbot.private(f"/schedule in 2h {NUMBER} Hi")).lower()
    )


async def test_another_chats_schedule_cannot_be_touched(sbot: Bot) -> None:
    await sbot.private(f"/connect nusasms api_key={NUSA_KEY}", user_id=2)
    sbot.services.schedules.clock = lambda: T0
    await sbot.private(f"/schedule in 2h {NUMBER} Mine", user_id=2)
    for command in ("/cancel 1", "/reschedule 1 in 3h"):
        assert "belongs to another chat" in await sbot.private(command)
    mark = sbot.tg.mark()
    await feed(sbot.app, callback_query("sched:cancel:1", message_chat_id=USER, message_id=7))
    assert "belongs to another chat" in sbot.replies_since(mark, USER)[-1]
    row = await schedule(sbot, 1)
    assert (row.state, row.next_run_at) == (ScheduleState.PENDING, T0 + timedelta(hours=2))
    assert "Nothing is scheduled" in await sbot.private("/scheduled")


async def test_rescheduling_or_cancelling_a_sent_one_is_refused(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Once")
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    assert (await schedule(sbot, 1)).state == ScheduleState.DONE
    assert "was already sent on" in await sbot.private("/reschedule 1 in 3h")
    assert "was already sent on" in await sbot.private("/cancel 1")
    assert (await schedule(sbot, 1)).state == ScheduleState.DONE
    assert len(sbot.nusa.sent) == 1


async def test_rescheduling_a_cancelled_one_is_refused(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Once")
    await sbot.private("/cancel 1")
    assert "is cancelled already" in await sbot.private("/reschedule 1 in 3h")
    assert "is cancelled already" in await sbot.private("/cancel 1")


async def test_media_cannot_be_scheduled(sbot: Bot) -> None:
    photo = photo_message()
    await feed(sbot.app, photo)
    mark = sbot.tg.mark()
    await feed(sbot.app, private_message(f"/schedule in 2h {NUMBER} Look", reply_to=photo))
    assert "text only" in sbot.replies_since(mark, USER)[-1]
    assert await schedules(sbot) == []


async def test_viewers_cannot_schedule_or_cancel(sbot: Bot) -> None:
    sbot.tg.chat_admins[GROUP] = {USER}
    assert "2 is now viewer" in await sbot.group("/role 2 viewer")
    assert "needs the operator role" in await sbot.group(f"/schedule in 2h {NUMBER} Hi", user_id=2)
    assert "needs the operator role" in await sbot.group("/cancel 1", user_id=2)
    assert "needs the operator role" in await sbot.group("/reschedule 1 in 2h", user_id=2)
    assert "Nothing is scheduled" in await sbot.group("/scheduled", user_id=2)


async def test_help_lists_the_schedule_commands(sbot: Bot) -> None:
    reply = await sbot.private("/help")
    for name in ("/schedule", "/scheduled", "/cancel", "/reschedule"):
        assert name in reply
