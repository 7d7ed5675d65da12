"""Firing: through the /send path exactly once, recurrence across DST, failures reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from storage.models import Batch, Message, Schedule, ScheduleState
from tests.conftest import USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import T0, at, manual_bot, runner_of, schedule

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


async def batches(bot: Bot) -> list[Batch]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Batch).order_by(col(Batch.id))))


async def test_a_due_schedule_fires_once_through_the_send_path(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 2h nusasms:wa {NUMBER} Hello <team>")
    runner = runner_of(sbot)
    assert await runner.run_due(T0 + timedelta(hours=2, seconds=-1)) == 0
    assert sbot.nusa.sent == []
    mark = sbot.tg.mark()
    assert await runner.run_due(T0 + timedelta(hours=2)) == 1
    assert [(m.destination, m.message) for m in sbot.nusa.sent] == [(NUMBER, "Hello <team>")]
    (card,) = sbot.replies_since(mark, USER)
    assert card.startswith("⏰ Scheduled send #1 fired.\nSend 1 via nusasms:wa by @alice")
    assert "accepted" in card
    row = await schedule(sbot, 1)
    assert (row.state, row.runs, row.last_run_at) == (
        ScheduleState.DONE,
        1,
        T0 + timedelta(hours=2),
    )
    (batch,) = await batches(sbot)
    assert (batch.origin, batch.schedule_id) == ("schedule:1:1", 1)
    assert batch.card_message_id is not None  # tracking edits the card like any /send's
    assert [m.state for m in await sbot.services.repo.messages.of_batch(1)] == ["accepted"]
    # Later passes find nothing more to do.
    assert await runner.run_due(T0 + timedelta(hours=5)) == 0
    assert len(sbot.nusa.sent) == 1
    assert "accepted" in await sbot.private("/status 1")


async def test_daily_schedule_keeps_0900_local_across_the_dst_change(sbot: Bot) -> None:
    await sbot.private("/timezone Europe/Berlin")
    await sbot.private(f"/schedule every day 09:00 {NUMBER} Morning")
    runner = runner_of(sbot)
    expected = [
        datetime(2027, 3, 27, 8, tzinfo=UTC),  # Saturday 09:00 CET
        datetime(2027, 3, 28, 7, tzinfo=UTC),  # Sunday 09:00 CEST: DST began at 02:00
        datetime(2027, 3, 29, 7, tzinfo=UTC),
    ]
    for due in expected:
        assert (await schedule(sbot, 1)).next_run_at == due
        assert await runner.run_due(due) == 1
    row = await schedule(sbot, 1)
    assert (row.state, row.runs) == (ScheduleState.PENDING, 3)
    assert row.next_run_at == datetime(2027, 3, 30, 7, tzinfo=UTC)
    assert len(sbot.nusa.sent) == 3
    assert [b.origin for b in await batches(sbot)] == [f"schedule:1:{n}" for n in (1, 2, 3)]
    notes = [t for t in sbot.tg.sent_texts(USER) if "fired" in t]
    assert "Next run: Sun 2027-03-28 09:00 Europe/Berlin (07:00 UTC)" in notes[0]
    assert "Next run: Mon 2027-03-29 09:00 Europe/Berlin (07:00 UTC)" in notes[1]


async def test_every_2h_skips_runs_missed_by_downtime_and_says_so(sbot: Bot) -> None:
    await sbot.private(f"/schedule every 2h {NUMBER} Ping")
    runner = runner_of(sbot)
    now = T0 + timedelta(hours=8, minutes=5)  # runs due at +2h, +4h, +6h, +8h
    mark = sbot.tg.mark()
    assert await runner.run_due(now) == 1
    assert len(sbot.nusa.sent) == 1
    (card,) = sbot.replies_since(mark, USER)
    assert "sent 5m late" in card
    assert "earlier runs were skipped" in card
    assert (await schedule(sbot, 1)).next_run_at == T0 + timedelta(hours=10)


async def test_a_one_off_that_cannot_be_sent_fails_with_its_reason(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Hi")
    await sbot.private("/disconnect nusasms")
    mark = sbot.tg.mark()
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    (told,) = sbot.replies_since(mark, USER)
    assert "Scheduled send #1 could not be sent: NusaSMS is not connected" in told
    row = await schedule(sbot, 1)
    assert row.state == ScheduleState.FAILED
    assert "not connected" in row.note
    assert sbot.nusa.sent == []
    # Connected again, the failed send can be given a new time and goes out once.
    await sbot.connect()
    at(sbot, T0 + timedelta(hours=1))
    assert "Rescheduled send #1" in await sbot.private("/reschedule 1 in 5m")
    await runner_of(sbot).run_due(T0 + timedelta(hours=1, minutes=5))
    assert len(sbot.nusa.sent) == 1
    assert [b.origin for b in await batches(sbot)] == ["schedule:1:2"]


async def test_a_recurring_run_that_fails_keeps_its_next_run(sbot: Bot) -> None:
    await sbot.private(f"/schedule every day 11:00 {NUMBER} Daily")
    await sbot.private("/disconnect nusasms")
    mark = sbot.tg.mark()
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    (told,) = sbot.replies_since(mark, USER)
    assert "could not be sent" in told
    assert "Next run: Sat 2027-03-27 11:00 UTC" in told
    row = await schedule(sbot, 1)
    assert (row.state, row.next_run_at) == (ScheduleState.PENDING, T0 + timedelta(hours=25))


async def test_provider_failures_show_on_the_card_like_any_send(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Hi")
    sbot.nusa.fail_next(400, "Invalid WA Sender", path_contains="/whatsapp/")
    mark = sbot.tg.mark()
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    (card,) = sbot.replies_since(mark, USER)
    assert "fired" in card
    assert "failed" in card
    assert (await schedule(sbot, 1)).state == ScheduleState.DONE


async def test_schedules_held_by_a_provider_are_not_fired_here(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Hi")
    async with sbot.services.repo.db.write() as s:
        await s.exec(update(Schedule).values(provider_ref="provider-42"))
    assert await sbot.services.schedules.store.next_due_at() is None
    assert await runner_of(sbot).run_due(T0 + timedelta(minutes=59)) == 0
    assert (await schedule(sbot, 1)).state == ScheduleState.PENDING
    assert await runner_of(sbot).run_due(T0 + timedelta(hours=1)) == 0
    assert sbot.nusa.sent == []
    # Its time has passed: the provider sent it, so the row is closed, never fired here.
    row = await schedule(sbot, 1)
    assert (row.state, row.runs, row.last_run_at) == (
        ScheduleState.DONE,
        1,
        T0 + timedelta(hours=1),
    )


async def test_the_sender_of_a_scheduled_send_is_its_author(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Hi")
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    async with sbot.services.repo.db.read() as s:
        (message,) = list(await s.exec(select(Message)))
    (batch,) = await batches(sbot)
    assert (batch.created_by, batch.created_by_name) == (USER, "@alice")
    assert message.idempotency_key == "schedule:1:1:0"


async def test_a_broken_row_is_failed_and_reported_not_left_claimed(sbot: Bot) -> None:
    await sbot.private(f"/schedule every day 11:00 {NUMBER} Daily")
    async with sbot.services.repo.db.write() as s:
        await s.exec(update(Schedule).values(recurrence="FREQ=DAILY;BYHOUR=x"))
    mark = sbot.tg.mark()
    assert await runner_of(sbot).run_due(T0 + timedelta(hours=1)) == 1
    (told,) = sbot.replies_since(mark, USER)
    assert "Scheduled send #1 could not be sent: an internal error (logged)" in told
    row = await schedule(sbot, 1)
    assert (row.state, row.claimed_by, row.runs) == (ScheduleState.FAILED, None, 0)
    assert sbot.nusa.sent == []
