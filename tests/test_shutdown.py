"""SIGTERM drains: the real process stops within its grace while sends are in flight.

``python -m bot`` runs against the fake Bot API and a NusaSMS fake whose sends take
``SLOW`` seconds each. A ``/send`` to sixteen numbers and a scheduled run to four are in
flight (two calls at a time each, so they need 24 and 6 seconds) when the test sends SIGTERM
with ``SHUTDOWN_GRACE_SECONDS=5``. The process must exit 0 well before the sends could finish,
leave every message in a definite state that is true to what the provider received, and
leave no schedule claimed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from providers.base import DeliveryState
from storage.db import Database, create_engine
from storage.models import Message, Schedule, ScheduleState, utcnow
from storage.schedules import ScheduleRepository
from tests.conftest import NUSA_KEY
from tests.databases import database_url
from tests.e2e_support import process_env, spawn_bot, text_of
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import private_message
from tests.secret_watch import secret

pytestmark = pytest.mark.e2e
TOKEN = secret("4545:E2E-shutdown-token")
SLOW = 3.0  # seconds each WhatsApp send takes at the provider: the grace sees one round
GRACE = 5.0
# Exit within the grace plus the rest of the stop (tracker, database), with room for a busy
# machine; an unbounded drain would wait for the sixteen-recipient send's 24 s.
EXIT_WITHIN = GRACE + 6.0
SEND_TO = [f"62812000{n:04d}" for n in range(16)]
SCHEDULED_TO = [f"62813000{n:04d}" for n in range(4)]


class SlowProvider:
    """The NusaSMS fake behind a delay on sends; counts the sends that started."""

    def __init__(self, fake: FakeNusaSms) -> None:
        self.fake = fake
        self.started: list[str] = []
        self.busy = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/whatsapp/message"):
            self.started.append(json.loads(request.content)["destination"])
            # Both sends have calls in flight: the /send's and the scheduled run's.
            if {n[:5] for n in self.started} == {"62812", "62813"}:
                self.busy.set()
            await asyncio.sleep(SLOW)
        return self.fake(request)


@pytest.fixture
async def slow() -> AsyncIterator[tuple[BotApiServer, SlowProvider, str]]:
    provider = SlowProvider(FakeNusaSms(api_key=NUSA_KEY, retry_after="0"))
    async with BotApiServer(token=TOKEN) as server, serve(provider) as base:
        yield server, provider, base


async def add_due_schedule(url: str) -> None:
    """A one-off schedule of the user's chat, due now (the scheduler looks every 0.5 s)."""
    engine = create_engine(url)
    try:
        await ScheduleRepository(Database(engine)).add(
            Schedule(
                chat_id=1,
                route="nusasms:wa",
                recipients=json.dumps(SCHEDULED_TO),
                text="scheduled",
                next_run_at=utcnow(),
                created_by=1,
            )
        )
    finally:
        await engine.dispose()


async def stored(url: str) -> tuple[list[Message], list[Schedule]]:
    engine = create_engine(url)
    try:
        async with Database(engine).read() as s:
            messages = list(await s.exec(select(Message).order_by(col(Message.id))))
            schedules = list(await s.exec(select(Schedule)))
    finally:
        await engine.dispose()
    return messages, schedules


async def test_sigterm_during_slow_sends_exits_in_time_and_leaves_definite_states(
    tmp_path: Path, slow: tuple[BotApiServer, SlowProvider, str]
) -> None:
    server, provider, base = slow
    url = database_url(tmp_path, "e2e")
    env = process_env(
        tmp_path,
        server,
        base,
        SEND_CONCURRENCY="2",
        SHUTDOWN_GRACE_SECONDS=str(GRACE),
        SCHEDULE_CHECK_SECONDS="0.5",
        NUSASMS_MIN_INTERVAL="0",
        STATUS_POLL_SECONDS="600",
    )
    log_path = tmp_path / "bot.log"
    with log_path.open("wb") as log:
        process = await spawn_bot(tmp_path, env, log)
        try:
            await server.wait_for("setMyCommands", timeout=30)
            since = server.state.mark()
            server.push_update(private_message(f"/connect nusasms api_key={NUSA_KEY}"))
            await server.wait_for(
                "sendMessage", lambda c: "connected" in text_of(c), timeout=15, since=since
            )
            await add_due_schedule(url)
            server.push_update(private_message(f"/send nusasms:wa {','.join(SEND_TO)} Hello"))
            await asyncio.wait_for(provider.busy.wait(), timeout=20)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        code = await asyncio.wait_for(process.wait(), timeout=30)
        took = time.monotonic() - stopped_at
    output = log_path.read_text()
    assert code == 0, output
    assert took < EXIT_WITHIN, f"the stop took {took:.1f} s\n{output}"

    messages, schedules = await stored(url)
    assert sorted(m.recipient for m in messages) == sorted(SEND_TO + SCHEDULED_TO)
    received = {m.destination for m in provider.fake.sent}
    states = {m.recipient: DeliveryState(m.state) for m in messages}
    # Nothing is left queued: the stop resolved what it cut off.
    assert DeliveryState.QUEUED not in states.values(), states
    for message in messages:
        if message.state == DeliveryState.ACCEPTED:
            assert message.recipient in received  # the provider's answer said so
        if message.state == DeliveryState.FAILED:
            assert "not sent" in message.detail, message.detail
            assert message.recipient not in provider.started  # never requested at all
    assert any(s == DeliveryState.FAILED for s in states.values()), "nothing was cut off"
    assert any(s == DeliveryState.ACCEPTED for s in states.values()), "nothing finished"
    # No claim outlives the process: the run that had begun is ended, never to be resent.
    [schedule] = schedules
    assert schedule.state == ScheduleState.DONE, schedule
    assert schedule.claimed_by is None
    assert "stopped while this run was being sent" in schedule.note
