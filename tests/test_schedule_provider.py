"""Schedules handed to the provider (Parrotica's ``scheduledAt``), through the real Application.

The bot's scheduler is driven by hand (``schedule_check_seconds=0``) and the chat commands see
T0 (2027), which the Parrotica fake, on the real clock, takes as the future.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from storage.models import Message, ScheduleState
from tests.confirm_support import confirm
from tests.conftest import USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import T0, at, manual_bot, runner_of, schedule

NUMBER = "6281234567890"
CONNECT = f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"


@pytest.fixture
async def pbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A bot connected to Parrotica (and NusaSMS) at T0, its scheduler run by hand."""
    bot = await manual_bot(tmp_path, tg, nusa)
    assert "connected" in await bot.private(CONNECT)
    at(bot, T0)
    try:
        yield bot
    finally:
        await stop_bot(bot)


def posts(bot: Bot) -> int:
    """How many sends reached the Parrotica fake."""
    return len(bot.parrotica.requests_to("messages", "POST"))


async def messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


async def test_a_one_off_is_handed_over_at_once_and_never_sent_again(pbot: Bot) -> None:
    reply = await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hello later")
    assert "Scheduled send #1 for Fri 2027-03-26 12:00 UTC" in reply, reply
    assert "Held by Parrotica" in reply, reply
    assert "accepted → 6281234567890" in reply, reply
    assert "/cancel 1" not in reply
    (sent,) = pbot.parrotica.messages.values()
    assert sent.scheduled_at == T0 + timedelta(hours=2)
    assert (sent.state, sent.numbers, sent.content) == ("scheduled", [f"+{NUMBER}"], "Hello later")
    row = await schedule(pbot, 1)
    assert (row.state, row.provider_ref, row.runs) == (ScheduleState.PENDING, str(sent.id), 0)
    (message,) = await messages(pbot)
    assert message.provider_ref == str(sent.id)
    # Polling starts after the due time (status_poll_seconds=15 after it).
    assert message.next_poll_at == T0 + timedelta(hours=2, seconds=15)
    # The bot's scheduler passes the due time: nothing is sent again, the row is done.
    runner = runner_of(pbot)
    assert await runner.run_due(T0 + timedelta(hours=1)) == 0
    assert (await schedule(pbot, 1)).state == ScheduleState.PENDING
    assert await runner.run_due(T0 + timedelta(hours=2, minutes=1)) == 0
    assert await runner.run_due(T0 + timedelta(days=2)) == 0
    assert posts(pbot) == 1
    assert len(pbot.parrotica.messages) == 1
    assert not pbot.nusa.sent
    row = await schedule(pbot, 1)
    assert (row.state, row.runs, row.last_run_at) == (
        ScheduleState.DONE,
        1,
        T0 + timedelta(hours=2),
    )


async def test_scheduled_lists_it_at_the_provider_without_a_cancel_button(pbot: Bot) -> None:
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    await pbot.connect()
    await pbot.private(f"/schedule in 3h nusasms:wa {NUMBER} Local")
    mark = pbot.tg.mark()
    listing = await pbot.private("/scheduled")
    assert "#1 Fri 2027-03-26 12:00 UTC · at Parrotica" in listing, listing
    assert listing.count("at Parrotica") == 1
    (call,) = [c for c in pbot.tg.calls[mark:] if c.method == "sendMessage"]
    assert "Cancel #2" in str(call.params.get("reply_markup"))
    assert "Cancel #1" not in str(call.params.get("reply_markup"))
    # After its time it is no longer open.
    at(pbot, T0 + timedelta(hours=2, minutes=1))
    listing = await pbot.private("/scheduled")
    assert "at Parrotica" not in listing
    assert (await schedule(pbot, 1)).state == ScheduleState.DONE


async def test_reschedule_moves_it_at_the_provider(pbot: Bot) -> None:
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    (sent,) = pbot.parrotica.messages.values()
    reply = await pbot.private("/reschedule 1 tomorrow 09:00")
    assert "Rescheduled send #1 for Sat 2027-03-27 09:00 UTC" in reply, reply
    tomorrow = T0 + timedelta(hours=23)
    assert sent.scheduled_at == tomorrow
    body = pbot.parrotica.json_body()
    assert body["messageId"] == sent.id
    row = await schedule(pbot, 1)
    assert (row.state, row.next_run_at, row.provider_ref) == (
        ScheduleState.PENDING,
        tomorrow,
        str(sent.id),
    )
    assert posts(pbot) == 1
    # A repeating rule cannot be given to a provider that takes one time.
    reply = await pbot.private("/reschedule 1 every day 09:00")
    assert "Parrotica keeps one time per scheduled message" in reply, reply
    assert (await schedule(pbot, 1)).recurrence is None


async def test_reschedule_shows_the_providers_refusal_and_changes_nothing(pbot: Bot) -> None:
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    pbot.parrotica.fail_next(400, path_contains="reschedule")
    reply = await pbot.private("/reschedule 1 in 5h")
    assert reply.startswith("⚠️"), reply
    row = await schedule(pbot, 1)
    assert row.next_run_at == T0 + timedelta(hours=2)


async def test_past_times_are_refused_before_any_request(pbot: Bot) -> None:
    before = len(pbot.parrotica.requests)
    reply = await pbot.private(f"/schedule 2026-01-01 09:00 parrotica {NUMBER} Hi")
    assert "That time is in the past" in reply, reply
    assert len(pbot.parrotica.requests) == before
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    before = len(pbot.parrotica.requests)
    reply = await pbot.private("/reschedule 1 2026-01-01 09:00")
    assert "That time is in the past" in reply, reply
    assert len(pbot.parrotica.requests) == before


async def test_a_due_hand_over_can_no_longer_be_moved(pbot: Bot) -> None:
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    at(pbot, T0 + timedelta(hours=2, seconds=30))
    reply = await pbot.private("/reschedule 1 in 1h")
    assert "Parrotica has sent it (or is sending it)" in reply, reply
    assert not pbot.parrotica.requests_to("reschedule")


async def test_cancel_says_plainly_the_provider_cannot(pbot: Bot) -> None:
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    before = len(pbot.parrotica.requests)
    reply = await pbot.private("/cancel 1")
    assert "Parrotica cannot cancel a scheduled message" in reply, reply
    assert "Nothing was changed" in reply
    assert "/reschedule 1 <when>" in reply
    assert len(pbot.parrotica.requests) == before
    row = await schedule(pbot, 1)
    assert (row.state, row.note) == (ScheduleState.PENDING, "")


async def test_recurring_schedules_on_the_provider_stay_local(pbot: Bot) -> None:
    reply = await pbot.private(f"/schedule every day 11:00 parrotica {NUMBER} Daily")
    assert "Cancel: /cancel 1" in reply, reply
    assert posts(pbot) == 0
    assert (await schedule(pbot, 1)).provider_ref is None
    assert await runner_of(pbot).run_due(T0 + timedelta(hours=1)) == 1
    (sent,) = pbot.parrotica.messages.values()
    assert sent.scheduled_at is None
    row = await schedule(pbot, 1)
    assert (row.state, row.next_run_at) == (ScheduleState.PENDING, T0 + timedelta(hours=25))


async def test_a_large_hand_over_keeps_every_provider_message(pbot: Bot) -> None:
    numbers = [f"62812{i:08d}" for i in range(150)]
    reply = await pbot.private(f"/schedule in 2h parrotica {','.join(numbers)} Promo")
    assert "Schedule to 150 recipients?" in reply, reply
    assert posts(pbot) == 0  # nothing scheduled before Send
    await confirm(pbot)
    assert posts(pbot) == 2
    refs = (await schedule(pbot, 1)).provider_ref
    assert refs == ",".join(str(i) for i in sorted(pbot.parrotica.messages))
    await pbot.private("/reschedule 1 in 4h")
    assert {m.scheduled_at for m in pbot.parrotica.messages.values()} == {T0 + timedelta(hours=4)}


async def test_a_refused_hand_over_fails_the_row_and_is_never_fired_here(pbot: Bot) -> None:
    pbot.parrotica.fail_next(400, path_contains="/message", method="POST")
    reply = await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    assert "could not be handed to Parrotica: Parrotica: HTTP 400 (HTTP 400). The bot" in reply
    assert "failed → 6281234567890" in reply, reply
    row = await schedule(pbot, 1)
    assert (row.state, row.provider_ref, row.runs) == (ScheduleState.FAILED, None, 1)
    assert await runner_of(pbot).run_due(T0 + timedelta(hours=2)) == 0
    assert not pbot.parrotica.messages


async def test_a_crash_before_the_ref_is_stored_never_sends_twice(pbot: Bot) -> None:
    store = pbot.services.schedules.store

    async def crash(schedule_id: int, refs: str) -> bool:
        raise RuntimeError("the process died here")

    original = store.hand_over
    store.hand_over = crash  # type: ignore[method-assign]
    await pbot.private(f"/schedule in 2h parrotica {NUMBER} Hi")
    store.hand_over = original  # type: ignore[method-assign]
    assert len(pbot.parrotica.messages) == 1  # Parrotica holds it
    row = await schedule(pbot, 1)
    assert (row.state, row.provider_ref) == (ScheduleState.PENDING, None)
    mark = pbot.tg.mark()
    assert await runner_of(pbot).run_due(T0 + timedelta(hours=2)) == 1
    assert posts(pbot) == 1  # the stored batch was found: nothing sent again
    (card,) = pbot.replies_since(mark, USER)
    assert "Scheduled send #1 fired" in card
    assert (await schedule(pbot, 1)).state == ScheduleState.DONE


async def test_nusasms_schedules_are_unchanged(pbot: Bot) -> None:
    await pbot.connect()
    reply = await pbot.private(f"/schedule in 1h nusasms:wa {NUMBER} Hi")
    assert "Cancel: /cancel 1" in reply, reply
    assert (await schedule(pbot, 1)).provider_ref is None
    assert not pbot.nusa.sent
    assert await runner_of(pbot).run_due(T0 + timedelta(hours=1)) == 1
    assert len(pbot.nusa.sent) == 1
    assert posts(pbot) == 0
