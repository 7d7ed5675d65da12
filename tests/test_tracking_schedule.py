"""The in-memory poll schedule: one row write per state change, no SQL for a wake with nothing due.

The database keeps ``next_poll_at``/``poll_attempts`` only as a restart hint written with a
state change; these tests count the SQL the tracker runs (``before_cursor_execute``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.tracking.policy import PollPolicy
from bot.tracking.schedule import PollSchedule
from bot.tracking.tracker import IDLE_SECONDS
from providers.base import DeliveryState, StatusReport
from providers.errors import RateLimited
from storage.models import Message
from tests.conftest import USER, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.tracking_support import (
    FakeClock,
    message_row,
    next_poll,
    send_one,
    start_tracked_bot,
    statements,
    status_polls,
    tracker_of,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def batch_rows(bot: Bot, batch_id: int) -> list[Message]:
    return await bot.services.repo.messages.of_batch(batch_id)


# -- the schedule and the restart rule, alone -------------------------------------------------


def test_schedule_gives_due_messages_earliest_first_and_keeps_them_armed() -> None:
    schedule = PollSchedule()
    schedule.arm(1, T0 + timedelta(seconds=30), 0)
    schedule.arm(2, T0 + timedelta(seconds=10), 0)
    schedule.arm(3, T0 + timedelta(seconds=20), 4)
    schedule.arm(1, T0 + timedelta(seconds=5), 2)  # re-armed: the older pair is stale
    schedule.arm(4, T0, 0)
    schedule.drop(4)
    assert schedule.next_due() == T0 + timedelta(seconds=5)
    retry = T0 + timedelta(seconds=100)
    assert schedule.take(T0 + timedelta(seconds=25), 10, retry_at=retry) == [1, 2, 3]
    assert schedule.when(3) == retry, "taken but not answered: polled again later, not lost"
    assert schedule.attempts(3) == 4
    assert 4 not in schedule
    assert len(schedule) == 3
    assert schedule.take(T0 + timedelta(seconds=99), 10, retry_at=retry) == []
    assert schedule.take(retry, 2, retry_at=retry + timedelta(seconds=1)) == [1, 2]


def test_restart_rule_replays_the_unchanged_backoff() -> None:
    policy = PollPolicy(first=15, cap=900)

    def replay(due: datetime, attempts: int, now: datetime) -> tuple[datetime, int]:
        while due < now:  # one poll at a time, as the previous run made them
            attempts += 1
            due += policy.delay(attempts)
        return due, attempts

    assert policy.catch_up(T0, 0, T0 - timedelta(seconds=1)) == (T0, 0), "not due yet"
    assert policy.catch_up(T0, 0, T0 + timedelta(seconds=16)) == (T0 + timedelta(seconds=30), 1)
    for seconds in (0, 1, 29, 31, 500, 3600, 7 * 3600, 48 * 3600):
        now = T0 + timedelta(seconds=seconds)
        for attempts in (0, 3, 9):
            assert policy.catch_up(T0, attempts, now) == replay(T0, attempts, now)
    due, _ = policy.catch_up(T0, 0, T0 + timedelta(hours=10))
    assert due - (T0 + timedelta(hours=10)) <= timedelta(seconds=900), "within one cap"


# -- writes ----------------------------------------------------------------------------------


async def test_an_unchanged_poll_writes_nothing_and_a_change_writes_one_row(
    tbot: Bot, clock: FakeClock
) -> None:
    ref = await send_one(tbot)
    tracker = tracker_of(tbot)
    clock.advance(16)
    with statements(tbot) as sql:
        await tracker.tick()
    assert status_polls(tbot.nusa) == 1
    assert sql.message_updates() == [], "the same state again: no write"
    assert tracker.poller.schedule.attempts(1) == 1

    tbot.nusa.set_status(ref, "S")
    due = next_poll(tbot, 1)
    assert due is not None
    clock.now = due
    with statements(tbot) as sql:
        await tracker.tick()
    (update,) = sql.message_updates()
    assert "next_poll_at" in update
    assert "poll_attempts" in update
    row = await message_row(tbot, 1)
    assert row.state == "sent"
    assert row.poll_attempts == 2
    assert row.next_poll_at == next_poll(tbot, 1) == clock() + timedelta(seconds=60)


async def test_a_receipt_rearms_the_backoff_in_the_same_write(tbot: Bot, clock: FakeClock) -> None:
    ref = await send_one(tbot)
    tracker = tracker_of(tbot)
    clock.advance(16)
    await tracker.tick()  # one unchanged poll: attempts 1, in memory only
    clock.advance(5)
    with statements(tbot) as sql:
        await tracker.receive("nusasms", [StatusReport(ref, DeliveryState.SENT, "S")])
    assert len(sql.message_updates()) == 1
    row = await message_row(tbot, 1)
    assert row.state == "sent"
    assert (row.poll_attempts, row.next_poll_at) == (1, clock() + timedelta(seconds=30))
    assert next_poll(tbot, 1) == row.next_poll_at

    with statements(tbot) as sql:
        outcome = await tracker.receive("nusasms", [StatusReport(ref, DeliveryState.SENT, "S")])
    assert outcome.matched == 1
    assert outcome.moved == []
    assert sql.message_updates() == [], "a duplicate receipt writes nothing"

    await tracker.receive("nusasms", [StatusReport(ref, DeliveryState.FAILED, "F", "gone")])
    assert next_poll(tbot, 1) is None, "final: no more polls"


async def test_a_rate_limited_poll_backs_off_by_retry_after_in_memory(
    tbot: Bot, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await send_one(tbot)
    poller = tracker_of(tbot).poller

    class Limited:
        async def status(self, ref: str, *, channel: str) -> StatusReport:
            raise RateLimited("slow down", provider="nusasms", retry_after=600)

    async def adapters(messages: Sequence[Message]) -> dict[tuple[int, str], object]:
        return {(m.chat_id, m.provider): Limited() for m in messages}

    monkeypatch.setattr(poller, "adapters", adapters)
    clock.advance(16)
    with statements(tbot) as sql:
        await tracker_of(tbot).tick()
    assert next_poll(tbot, 1) == clock() + timedelta(seconds=600)
    assert sql.message_updates() == []


async def test_refresh_polls_now_and_reschedules_in_memory(tbot: Bot, clock: FakeClock) -> None:
    ref = await send_one(tbot)
    tracker = tracker_of(tbot)
    clock.advance(2)  # long before the first poll
    with statements(tbot) as sql:
        outcome = await tracker.refresh(1, USER)
    assert outcome.asked == 1
    assert status_polls(tbot.nusa) == 1
    assert next_poll(tbot, 1) == clock() + timedelta(seconds=30)
    assert sql.message_updates() == []

    tbot.nusa.set_status(ref, "D")
    clock.advance(6)  # past the Refresh cooldown
    outcome = await tracker.refresh(1, USER)
    assert outcome.changed == 1
    assert (await message_row(tbot, 1)).state == "delivered"
    assert next_poll(tbot, 1) == clock() + timedelta(seconds=60), "read watch: polls go on"


# -- no database round for a new send -------------------------------------------------------


async def test_a_new_send_and_its_card_run_no_sql_until_a_poll_is_due(
    tbot: Bot, clock: FakeClock
) -> None:
    await send_one(tbot)
    tracker = tracker_of(tbot)
    await tracker.tick()  # the start's expiry sweep
    await tbot.private("/send nusasms:wa 6281234567891 Again")
    rows = await batch_rows(tbot, 2)
    tracker.poller.schedule.drop(2)  # as if the send had not told the tracker yet

    with statements(tbot) as sql:
        tracker.messages_sent(rows)
        tracker.card_posted(USER, 2)
        wait = await tracker.step()
    assert sql.sql == [], "nothing due: not one statement"
    assert next_poll(tbot, 2) == rows[0].next_poll_at
    assert 0 < wait <= IDLE_SECONDS

    clock.advance(16)
    with statements(tbot) as sql:
        await tracker.step()
    assert status_polls(tbot.nusa) == 2, "both messages were due"
    assert sql.message_updates() == []


async def test_new_sends_wake_the_poll_loop_only_when_due_sooner(
    tbot: Bot, clock: FakeClock
) -> None:
    await send_one(tbot)
    tracker = tracker_of(tbot)
    rows = await batch_rows(tbot, 1)
    tracker.poller.schedule.drop(1)
    wake = tracker._wake_polls
    wake.clear()  # whatever the send itself woke: only messages_sent below is looked at
    tracker._polls_sleep_until = (clock() + timedelta(seconds=5)).timestamp()
    tracker.messages_sent(rows)  # due in 15 s: the loop wakes before that anyway
    assert not wake.is_set()
    assert next_poll(tbot, 1) is not None

    tracker.poller.schedule.drop(1)
    tracker._polls_sleep_until = (clock() + timedelta(seconds=60)).timestamp()
    tracker.messages_sent(rows)
    assert wake.is_set()


async def test_a_send_whose_card_cannot_be_posted_is_still_tracked(
    tbot: Bot, clock: FakeClock
) -> None:
    await tbot.connect()
    tbot.tg.fail_next("sendMessage", 400, "Bad Request: injected failure")
    await tbot.private("/send nusasms:wa 6281234567890 Hello")
    batch = await tbot.services.repo.messages.batch(1)
    assert batch is not None
    assert batch.card_message_id is None, "the card was not posted"
    assert (await message_row(tbot, 1)).state == "accepted"
    assert next_poll(tbot, 1) is not None


# -- restarts --------------------------------------------------------------------------------


async def test_a_restart_rearms_each_message_where_its_backoff_stood(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    settings = make_settings(tmp_path)
    first = await start_tracked_bot(settings, tg, nusa, clock)
    ref = await send_one(first)
    nusa.set_status(ref, "S")
    clock.advance(16)
    await tracker_of(first).tick()  # the change writes the hint: attempts 1, next in 30 s
    clock.now = next_poll(first, 1) or clock()
    await tracker_of(first).tick()  # unchanged: attempts 2 in memory only
    before = (next_poll(first, 1), tracker_of(first).poller.schedule.attempts(1))
    assert before[1] == 2
    row = await message_row(first, 1)
    assert row.poll_attempts == 1
    await stop_bot(first)

    clock.advance(10)
    second = await start_tracked_bot(settings, tg, nusa, clock)
    try:
        after = (next_poll(second, 1), tracker_of(second).poller.schedule.attempts(1))
        assert after == before, "the restart polls when the previous run would have"
    finally:
        await stop_bot(second)


async def test_a_restart_keeps_the_read_watch_of_delivered_messages(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    settings = make_settings(tmp_path)
    first = await start_tracked_bot(settings, tg, nusa, clock)
    ref = await send_one(first)
    nusa.set_status(ref, "D")
    clock.advance(16)
    await tracker_of(first).tick()
    row = await message_row(first, 1)
    assert (row.state, row.next_poll_at) == ("delivered", None)
    await stop_bot(first)

    second = await start_tracked_bot(settings, tg, nusa, clock)
    try:
        due = next_poll(second, 1)
        assert due is not None, "still watched for its read"
        assert due <= row.updated_at + timedelta(seconds=60)
    finally:
        await stop_bot(second)

    clock.advance(7 * 3600)  # the read watch is over by the next start
    third = await start_tracked_bot(settings, tg, nusa, clock)
    try:
        assert len(tracker_of(third).poller.schedule) == 0
    finally:
        await stop_bot(third)
