"""Shared helpers of the scheduling tests: a bot whose scheduler is driven by hand.

``schedule_check_seconds=0`` keeps the background task off, so a test decides exactly when a
pass runs and with which ``now`` (no sleeping, no real-time races with the test).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlmodel import col, select

from bot.scheduler import Scheduler
from bot.services.schedule_runner import ScheduleRunner
from bot.services.sending import SendOutcome, SendRequest
from storage.models import Schedule
from tests.conftest import Bot, make_settings, start_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram

T0 = datetime(2027, 3, 26, 10, 0, tzinfo=UTC)  # a Friday; Berlin moves to CEST on the 28th
SECRET_KEY = Fernet.generate_key().decode()  # one key, so a restarted bot reads its credentials


async def manual_bot(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, **overrides: object
) -> Bot:
    """A bot on ``tmp_path``'s database whose scheduler only runs when a test says so."""
    values: dict[str, object] = {"schedule_check_seconds": 0, "secret_key": SECRET_KEY}
    values.update(overrides)
    return await start_bot(make_settings(tmp_path, **values), tg, nusa)


def scheduler_of(bot: Bot) -> Scheduler:
    """The bot's scheduler."""
    resources = bot.app.bot_data.resources
    assert resources is not None
    assert resources.scheduler is not None
    return resources.scheduler


def runner_of(bot: Bot) -> ScheduleRunner:
    """The bot's schedule runner (claims and fires)."""
    return scheduler_of(bot).runner


def at(bot: Bot, now: datetime) -> None:
    """Make the chat commands see ``now`` as the current time."""
    bot.services.schedules.clock = lambda: now


async def schedules(bot: Bot) -> list[Schedule]:
    """Every schedule row, by id."""
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Schedule).order_by(col(Schedule.id))))


async def schedule(bot: Bot, schedule_id: int) -> Schedule:
    """One schedule row as stored now."""
    row = await bot.services.schedules.store.get(schedule_id)
    assert row is not None
    return row


class Gate:
    """Holds every send at the door until opened, so a test can act mid-run."""

    def __init__(self, bot: Bot) -> None:
        self.opened = asyncio.Event()
        self.waiting = asyncio.Event()
        sender = bot.services.sender
        original = sender.send

        async def held(request: SendRequest) -> SendOutcome:
            self.waiting.set()
            await self.opened.wait()
            return await original(request)

        sender.send = held  # type: ignore[method-assign]
