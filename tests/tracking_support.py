"""Helpers of the delivery-tracking tests: a hand-driven clock and a bot whose tracker it drives.

The tracker's background loops stay off; a test moves the clock and calls ``tick`` itself, so
nothing sleeps and every Telegram call can be tied to the fake time of the tick that made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.app import build_application, start_resources
from bot.config import Settings
from bot.tracking.tracker import Tracker
from storage.models import Batch, Message, StatusEvent
from tests.conftest import USER, Bot, make_settings, providers_transport, stop_bot
from tests.fakes.courier import FakeCourier
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import FakeParrotica
from tests.fakes.telegram import Call, FakeTelegram, OfflineRequest, callback_query, feed


class FakeClock:
    """Now, moved by hand; starts at the real now so stored UTC times stay comparable."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move ``seconds`` on from now, or from the real now if that is later.

        Rows are stamped with the real time (``created_at``), so on a slow machine a clock set
        at the fixture's start would fall behind the rows it is meant to age.
        """
        self.now = max(self.now, datetime.now(UTC)) + timedelta(seconds=seconds)
        return self.now


async def start_tracked_bot(
    settings: Settings,
    tg: FakeTelegram,
    nusa: FakeNusaSms,
    clock: FakeClock,
    parrotica: FakeParrotica | None = None,
    courier: FakeCourier | None = None,
) -> Bot:
    """Like ``tests.conftest.start_bot``, with the tracker on ``clock`` and no loops."""
    parrotica = parrotica or FakeParrotica()
    courier = courier or FakeCourier()
    app = build_application(
        settings,
        request=OfflineRequest(tg),
        provider_transport=providers_transport(nusa, parrotica, courier),
        rate_limit=False,
    )
    await app.initialize()
    await start_resources(app, clock=clock, background=False)
    return Bot(app, tg, nusa, parrotica, courier)


# Fixtures of every tracking test (registered through ``pytest_plugins`` in conftest.py).


@pytest.fixture
def clock() -> FakeClock:
    """The tracker's hand-driven clock."""
    return FakeClock()


@pytest.fixture
async def tbot(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> AsyncIterator[Bot]:
    """A bot whose tracker runs on ``clock`` with its loops off."""
    started = await start_tracked_bot(make_settings(tmp_path), tg, nusa, clock)
    try:
        yield started
    finally:
        await stop_bot(started)


async def send_one(bot: Bot, to: str = "6281234567890") -> str:
    """Connect, send one WhatsApp message; returns its NusaSMS ref."""
    await bot.connect()
    reply = await bot.private(f"/send nusasms:wa {to} Hello")
    assert "accepted" in reply, reply
    return bot.nusa.sent[-1].ref_no


def status_polls(nusa: FakeNusaSms) -> int:
    """How many delivery-status polls the fake NusaSMS answered."""
    return sum("/whatsapp/status/" in r.url.path for r in nusa.requests)


class Statements:
    """SQL statements the database runs while the block is open (``before_cursor_execute``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sql: list[str] = []
        self._engine = engine.sync_engine

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_rest: object) -> None:
        self.sql.append(" ".join(statement.split()))

    def message_updates(self) -> list[str]:
        """The UPDATE statements of the message table."""
        return [s for s in self.sql if s.upper().startswith("UPDATE MESSAGE ")]

    def __enter__(self) -> Statements:
        event.listen(self._engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)


def statements(bot: Bot) -> Statements:
    """A recorder of the SQL the bot's database runs, used as a ``with`` block."""
    resources = bot.app.bot_data.resources
    assert resources is not None
    assert resources.engine is not None
    return Statements(resources.engine)


def next_poll(bot: Bot, message_id: int) -> datetime | None:
    """When the tracker polls the message next (its in-memory schedule), None if never."""
    return tracker_of(bot).poller.schedule.when(message_id)


def tracker_of(bot: Bot) -> Tracker:
    """The bot's tracker."""
    resources = bot.app.bot_data.resources
    assert resources is not None
    assert resources.tracker is not None
    return resources.tracker


@dataclass
class Clocked:
    """A Telegram call with the fake time of the tick that made it."""

    at: float
    call: Call

    @property
    def chat_id(self) -> int:
        return int(self.call.params["chat_id"])


class Recorder:
    """Ticks the tracker and remembers which calls each tick made."""

    def __init__(self, bot: Bot, clock: FakeClock) -> None:
        self.bot = bot
        self.clock = clock
        self.calls: list[Clocked] = []

    async def tick(self) -> None:
        mark = self.bot.tg.mark()
        await tracker_of(self.bot).tick(self.clock())
        stamp = self.clock().timestamp()
        self.calls.extend(Clocked(stamp, c) for c in self.bot.tg.calls[mark:])

    async def run(self, seconds: float, step: float = 0.25) -> None:
        """Tick every ``step`` seconds of fake time for ``seconds``."""
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            await self.tick()


async def batch_of(bot: Bot, batch_id: int = 1) -> Batch:
    batch = await bot.services.repo.messages.batch(batch_id)
    assert batch is not None
    return batch


async def message_row(bot: Bot, message_id: int) -> Message:
    async with bot.services.repo.db.read() as s:
        found = await s.get(Message, message_id)
    assert found is not None
    return found


async def history_states(bot: Bot, message_id: int) -> list[str]:
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(StatusEvent)
            .where(StatusEvent.message_id == message_id)
            .order_by(col(StatusEvent.id))
        )
        return [e.state for e in rows]


def card_text(bot: Bot, chat_id: int, message_id: int | None) -> str:
    """The card as Telegram shows it now."""
    assert message_id is not None
    return str(bot.tg.messages[(chat_id, message_id)]["text"])


def card_buttons(bot: Bot, chat_id: int, message_id: int | None) -> list[str]:
    """The callback data of the card's buttons."""
    assert message_id is not None
    markup: dict[str, Any] = bot.tg.messages[(chat_id, message_id)].get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def press(bot: Bot, data: str, *, chat_id: int = USER, message_id: int) -> Call:
    """Press an inline button of the bot's message; returns the callback's answer call."""
    mark = bot.tg.mark()
    message = bot.tg.messages.get((chat_id, message_id))
    await feed(
        bot.app,
        callback_query(data, message_chat_id=chat_id, message_id=message_id, message=message),
    )
    answer = bot.tg.find_call("answerCallbackQuery", since=mark)
    assert answer is not None, "the button press got no answer"
    return answer


def edits_since(bot: Bot, mark: int, chat_id: int | None = None) -> list[Call]:
    return [
        c
        for c in bot.tg.calls[mark:]
        if c.method == "editMessageText"
        and (chat_id is None or int(c.params["chat_id"]) == chat_id)
    ]
