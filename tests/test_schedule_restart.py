"""Restarts: overdue runs by the grace policy, claims left by a crash, the real start-up pass."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.scheduler import Scheduler
from bot.services.sending import SendRequest
from providers.registry import parse_route
from storage.models import ScheduleState, utcnow
from storage.tracking_repo import TrackingRepository
from tests.conftest import USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import (
    SECRET_KEY,
    T0,
    Gate,
    at,
    manual_bot,
    runner_of,
    schedule,
    scheduler_of,
    schedules,
)

NUMBER = "6281234567890"


async def first_bot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> Bot:
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    return bot


async def test_restart_sends_within_grace_and_reports_older_runs(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule in 30m {NUMBER} Within grace")  # due T0+30m
    await bot.private(f"/schedule in 10m {NUMBER} Too late")  # due T0+10m
    await bot.private(f"/schedule every day 10:05 {NUMBER} Daily")  # due T0+5m
    await bot.private(f"/schedule in 2h {NUMBER} Future")
    await stop_bot(bot)  # the bot is down from T0 to T0+40m

    bot = await manual_bot(tmp_path, tg, nusa)
    now = T0 + timedelta(minutes=40)
    runner = runner_of(bot)
    runner.started_at = now
    mark = tg.mark()
    assert await runner.recover(now) == 0
    assert await runner.run_due(now) == 3
    told = bot.replies_since(mark, USER)

    assert [m.message for m in nusa.sent] == ["Within grace"]
    (late,) = [t for t in told if "#1" in t]
    assert "fired (sent 10m late: the bot was not running at that time)" in late
    (missed,) = [t for t in told if "#2" in t]
    assert "was due on Fri 2027-03-26 10:10 UTC, but the bot was not running" in missed
    assert "more than 15 min late, so it was not sent" in missed
    assert "/reschedule 2 <when>" in missed
    (daily,) = [t for t in told if "#3" in t]
    assert "was not sent" in daily
    assert "Next run: Sat 2027-03-27 10:05 UTC" in daily
    states = {r.id: (r.state, r.next_run_at) for r in await schedules(bot)}
    assert states == {
        1: (ScheduleState.DONE, T0 + timedelta(minutes=30)),
        2: (ScheduleState.MISSED, T0 + timedelta(minutes=10)),
        3: (ScheduleState.PENDING, T0 + timedelta(days=1, minutes=5)),
        4: (ScheduleState.PENDING, T0 + timedelta(hours=2)),
    }
    assert (await schedule(bot, 3)).runs == 0  # a missed run is not counted as sent
    await stop_bot(bot)


async def test_grace_period_is_configurable(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule in 10m {NUMBER} Hi")
    await stop_bot(bot)
    bot = await manual_bot(tmp_path, tg, nusa, schedule_grace_minutes=60)
    await runner_of(bot).run_due(T0 + timedelta(minutes=50))
    assert len(nusa.sent) == 1
    await stop_bot(bot)


async def test_a_claim_left_after_sending_is_completed_without_sending_again(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule in 10m {NUMBER} Once")
    due = T0 + timedelta(minutes=10)
    # A process claims the run and sends it, then dies before recording anything else.
    store = bot.services.schedules.store
    assert await store.claim(1, worker="dead-process", now=due) is not None
    await bot.services.sender.send(
        SendRequest(
            chat_id=USER,
            actor_id=USER,
            actor_name="@alice",
            route=parse_route("nusasms:wa"),
            recipients=[NUMBER],
            text="Once",
            origin="schedule:1:1",
            schedule_id=1,
        )
    )
    await stop_bot(bot)
    assert len(nusa.sent) == 1

    bot = await manual_bot(tmp_path, tg, nusa)
    mark = tg.mark()
    now = due + timedelta(hours=2)  # long after: the send itself happened on time
    assert await runner_of(bot).recover(now) == 1
    await runner_of(bot).run_due(now)
    assert len(nusa.sent) == 1
    # One card: the recovery posts it with the run's line, unless the outbox's loop (which
    # owes the card since the batch was stored) was first and says it comes late.
    (card,) = bot.replies_since(mark, USER)
    assert "⏰ Scheduled send #1 fired (after a restart)" in card or "Posted late" in card
    assert "Send 1 via nusasms:wa by @alice · ⏰ scheduled send #1" in card
    row = await schedule(bot, 1)
    assert (row.state, row.runs, row.claimed_by) == (ScheduleState.DONE, 1, None)
    batch = await bot.services.repo.messages.batch(1)
    assert batch is not None
    assert batch.card_message_id is not None  # tracking can edit the card now
    await stop_bot(bot)


async def test_a_completed_run_whose_card_exists_is_not_posted_twice(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule every 2h {NUMBER} Ping")
    due = T0 + timedelta(hours=2)
    assert await bot.services.schedules.store.claim(1, worker="dead", now=due) is not None
    await bot.services.sender.send(
        SendRequest(
            chat_id=USER,
            actor_id=USER,
            actor_name="@alice",
            route=parse_route("nusasms:wa"),
            recipients=[NUMBER],
            text="Ping",
            origin="schedule:1:1",
            schedule_id=1,
        )
    )
    await TrackingRepository(bot.services.repo.messages).set_card(1, 4242, 0)
    await stop_bot(bot)

    bot = await manual_bot(tmp_path, tg, nusa)
    mark = tg.mark()
    assert await runner_of(bot).recover(due + timedelta(minutes=1)) == 1
    assert bot.replies_since(mark, USER) == []
    row = await schedule(bot, 1)
    assert (row.state, row.runs) == (ScheduleState.PENDING, 1)
    assert row.next_run_at == T0 + timedelta(hours=4)
    assert len(nusa.sent) == 1
    await stop_bot(bot)


async def test_a_claim_left_before_sending_follows_the_grace_policy(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule in 10m {NUMBER} Soon")
    await bot.private(f"/schedule in 20m {NUMBER} Later")
    store = bot.services.schedules.store
    assert await store.claim(1, worker="dead", now=T0 + timedelta(minutes=10)) is not None
    assert await store.claim(2, worker="dead", now=T0 + timedelta(minutes=20)) is not None
    await stop_bot(bot)

    bot = await manual_bot(tmp_path, tg, nusa)
    now = T0 + timedelta(minutes=30)  # #1 is 20 min late, #2 10 min late
    runner = runner_of(bot)
    assert await runner.recover(now) == 2
    assert {r.state for r in await schedules(bot)} == {ScheduleState.PENDING}
    await runner.run_due(now)
    assert [m.message for m in nusa.sent] == ["Later"]
    assert (await schedule(bot, 1)).state == ScheduleState.MISSED
    assert (await schedule(bot, 2)).state == ScheduleState.DONE
    await stop_bot(bot)


async def test_the_real_start_up_pass_fires_an_overdue_send(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    await bot.private(f"/schedule in 1h {NUMBER} Overdue")
    store = bot.services.schedules.store
    await store.reschedule(
        1,
        USER,
        states=(ScheduleState.PENDING,),
        next_run_at=utcnow() - timedelta(minutes=5),
        recurrence=None,
        timezone="UTC",
    )
    await stop_bot(bot)

    bot = await start_bot(
        make_settings(tmp_path, secret_key=SECRET_KEY), tg, nusa
    )  # the background task runs
    try:
        scheduler = scheduler_of(bot)
        assert scheduler.running
        await asyncio.wait_for(scheduler.first_pass(), timeout=10)
        assert [m.message for m in nusa.sent] == ["Overdue"]
        assert "5m late: the bot was not running at that time" in (tg.last_text(USER) or "")
        assert (await schedule(bot, 1)).state == ScheduleState.DONE
    finally:
        await stop_bot(bot)
    assert not scheduler.running


async def test_a_running_scheduler_wakes_for_a_new_schedule(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await start_bot(make_settings(tmp_path, secret_key=SECRET_KEY), tg, nusa)
    try:
        await bot.connect()
        scheduler = scheduler_of(bot)
        await asyncio.wait_for(scheduler.first_pass(), timeout=10)
        await bot.private(f"/schedule in 1h {NUMBER} Now")
        # Move it to now behind the scheduler's back, as another process could.
        await bot.services.schedules.store.reschedule(
            1,
            USER,
            states=(ScheduleState.PENDING,),
            next_run_at=utcnow(),
            recurrence=None,
            timezone="UTC",
        )
        mark = tg.mark()
        scheduler.wake()
        card = await tg.wait_for(
            "sendMessage", lambda c: "fired" in str(c.params.get("text")), since=mark
        )
        assert "Scheduled send #1 fired" in card.result["text"]
        assert [m.message for m in nusa.sent] == ["Now"]
    finally:
        await stop_bot(bot)


async def test_stopping_lets_the_run_being_sent_finish(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule in 10m {NUMBER} Finishing")
    due = T0 + timedelta(minutes=10)
    gate = Gate(bot)
    scheduler = Scheduler(
        runner_of(bot), bot.services.schedules.store, check_seconds=30, clock=lambda: due
    )
    scheduler.start()
    await asyncio.wait_for(gate.waiting.wait(), timeout=5)
    stopping = asyncio.create_task(scheduler.stop(wait=5))
    gate.opened.set()
    await stopping
    assert not scheduler.running
    assert [m.message for m in nusa.sent] == ["Finishing"]
    assert (await schedule(bot, 1)).state == ScheduleState.DONE
    await stop_bot(bot)


async def test_a_run_interrupted_by_stopping_is_sent_once_after_restart(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    await bot.private(f"/schedule in 10m {NUMBER} Interrupted")
    due = T0 + timedelta(minutes=10)
    gate = Gate(bot)
    scheduler = Scheduler(
        runner_of(bot), bot.services.schedules.store, check_seconds=30, clock=lambda: due
    )
    scheduler.start()
    await asyncio.wait_for(gate.waiting.wait(), timeout=5)
    await scheduler.stop(wait=0)  # the gate never opens: the run is cut off before its send
    stopped = await schedule(bot, 1)
    assert (stopped.state, stopped.claimed_by) == (ScheduleState.PENDING, None)  # no claim left
    await stop_bot(bot)

    bot = await manual_bot(tmp_path, tg, nusa)
    runner = runner_of(bot)
    now = due + timedelta(minutes=2)
    assert await runner.recover(now) == 0  # nothing to take over
    assert await runner.run_due(now) == 1
    assert [m.message for m in nusa.sent] == ["Interrupted"]
    assert (await schedule(bot, 1)).state == ScheduleState.DONE
    await stop_bot(bot)


async def test_the_scheduler_sleeps_until_the_next_due_time(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await first_bot(tmp_path, tg, nusa)
    try:
        store = bot.services.schedules.store
        runner = runner_of(bot)
        idle = Scheduler(runner, store, check_seconds=30, clock=lambda: T0)
        assert await idle._pause() == 30  # nothing scheduled: look again after the bound
        await bot.private(f"/schedule in 10m {NUMBER} Soon")
        soon = Scheduler(runner, store, check_seconds=30, clock=lambda: T0 + timedelta(minutes=9))
        assert await soon._pause() == 30  # 60 s away: capped by SCHEDULE_CHECK_SECONDS
        near = Scheduler(
            runner, store, check_seconds=30, clock=lambda: T0 + timedelta(minutes=10, seconds=-5)
        )
        assert await near._pause() == 5
        overdue = Scheduler(runner, store, check_seconds=30, clock=lambda: T0 + timedelta(hours=1))
        assert await overdue._pause() == 0.2  # due already: another pass right away
    finally:
        await stop_bot(bot)
