"""Races: two schedulers on one database, and /cancel against a firing run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.scheduler import TelegramNotifier
from bot.services.schedule_runner import ScheduleRunner
from storage.db import Database, create_engine
from storage.models import ScheduleState
from storage.schedules import ScheduleRepository
from tests.conftest import USER, Bot, stop_bot
from tests.databases import database_url
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import T0, Gate, at, manual_bot, runner_of, schedule, schedules

NUMBER = "6281234567890"
GRACE = timedelta(minutes=15)


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


@pytest.fixture
async def other_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A second engine on the bot's database file: another process's connections."""
    engine = create_engine(database_url(tmp_path))
    yield engine
    await engine.dispose()


def second_runner(bot: Bot, engine: AsyncEngine, name: str) -> ScheduleRunner:
    """A competing scheduler with its own database connections and worker name."""
    return ScheduleRunner(
        ScheduleRepository(Database(engine)),
        bot.services.repo,
        bot.services.sender,
        TelegramNotifier(bot.app.bot, bot.services, grace=GRACE),
        grace=GRACE,
        worker=name,
    )


async def test_two_schedulers_racing_send_each_schedule_once(
    sbot: Bot, other_engine: AsyncEngine
) -> None:
    for n in range(6):
        await sbot.private(f"/schedule in 1h {NUMBER} Message {n}")
    runners = [
        runner_of(sbot),
        second_runner(sbot, other_engine, "worker-b"),
        second_runner(sbot, other_engine, "worker-c"),
    ]
    now = T0 + timedelta(hours=1)
    mark = sbot.tg.mark()
    handled = await asyncio.gather(*(r.run_due(now) for r in runners))
    assert sum(handled) == 6
    assert sorted(m.message for m in sbot.nusa.sent) == [f"Message {n}" for n in range(6)]
    cards = [t for t in sbot.replies_since(mark, USER) if "fired" in t]
    assert len(cards) == 6
    assert {r.state for r in await schedules(sbot)} == {ScheduleState.DONE}
    assert {r.claimed_by for r in await schedules(sbot)} == {None}


async def test_the_race_for_one_row_has_exactly_one_winner(
    sbot: Bot, other_engine: AsyncEngine
) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Only once")
    now = T0 + timedelta(hours=1)
    mine = sbot.services.schedules.store
    theirs = ScheduleRepository(Database(other_engine))
    claims = await asyncio.gather(
        *(store.claim(1, worker=f"w{i}", now=now) for i, store in enumerate([mine, theirs] * 5))
    )
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert (await schedule(sbot, 1)).claimed_by == winners[0].claimed_by


async def test_cancel_while_a_one_off_is_being_sent_is_too_late(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Going out")
    gate = Gate(sbot)
    firing = asyncio.create_task(runner_of(sbot).run_due(T0 + timedelta(hours=1)))
    await asyncio.wait_for(gate.waiting.wait(), timeout=5)  # claimed, provider not yet called
    reply = await sbot.private("/cancel 1")
    assert "is being sent right now; it is too late to cancel it" in reply
    assert (await schedule(sbot, 1)).state == ScheduleState.CLAIMED
    gate.opened.set()
    assert await firing == 1
    assert len(sbot.nusa.sent) == 1
    assert (await schedule(sbot, 1)).state == ScheduleState.DONE


async def test_cancel_while_a_recurring_run_is_sent_stops_later_runs(sbot: Bot) -> None:
    await sbot.private(f"/schedule every 2h {NUMBER} Ping")
    gate = Gate(sbot)
    firing = asyncio.create_task(runner_of(sbot).run_due(T0 + timedelta(hours=2)))
    await asyncio.wait_for(gate.waiting.wait(), timeout=5)
    reply = await sbot.private("/cancel 1")
    assert "that run goes out, and no further runs will follow" in reply
    gate.opened.set()
    await firing
    assert len(sbot.nusa.sent) == 1
    assert "It was cancelled: no further runs." in (sbot.tg.last_text(USER) or "")
    row = await schedule(sbot, 1)
    assert (row.state, row.runs) == (ScheduleState.CANCELLED, 1)
    assert await runner_of(sbot).run_due(T0 + timedelta(hours=4)) == 0
    assert len(sbot.nusa.sent) == 1


async def test_cancel_before_the_claim_wins_and_nothing_is_sent(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 1h {NUMBER} Never")
    due = await sbot.services.schedules.store.due(T0 + timedelta(hours=1), 10)
    assert [r.id for r in due] == [1]  # read as due by a scheduler ...
    assert "cancelled" in await sbot.private("/cancel 1")  # ... cancelled before its claim
    assert (
        await sbot.services.schedules.store.claim(1, worker="late", now=T0 + timedelta(hours=1))
        is None
    )
    assert await runner_of(sbot).run_due(T0 + timedelta(hours=1)) == 0
    assert sbot.nusa.sent == []


async def test_cancel_and_fire_at_the_same_moment_never_both_win(sbot: Bot) -> None:
    for n in range(8):
        await sbot.private(f"/schedule in 1h {NUMBER} Race {n}")
    services = sbot.services
    now = T0 + timedelta(hours=1)

    async def cancel(schedule_id: int) -> bool:
        return await services.schedules.store.cancel(schedule_id, USER, note="race")

    results = await asyncio.gather(runner_of(sbot).run_due(now), *(cancel(i) for i in range(1, 9)))
    cancelled = [i for i, won in zip(range(1, 9), results[1:], strict=True) if won]
    rows = {r.id: r.state for r in await schedules(sbot)}
    assert {rows[i] for i in cancelled} <= {ScheduleState.CANCELLED}
    sent = {m.message for m in sbot.nusa.sent}
    for i in range(1, 9):
        assert (rows[i] == ScheduleState.DONE) == (f"Race {i - 1}" in sent)
        assert rows[i] in (ScheduleState.DONE, ScheduleState.CANCELLED)
    assert len(sbot.nusa.sent) == len(sent) == 8 - len(cancelled)
