"""Sweeps on one replica at a time: each lost send is looked up once, not once per replica.

Two trackers on one database stand for two replicas (the bot's own, started first, and a
second one): both run a full round at the same moment, past ``RECONCILE_AFTER``. Only the
oldest live replica sweeps (``Replicas.sweeps``); when it stops, the other takes over. Run on
SQLite and (``make test-pg``) on PostgreSQL; on SQLite the second replica's single-process
rule is switched off, as in tests/test_replicas_storage.py.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import col, select

from bot.app import retention_job
from bot.context import BotContext
from bot.tracking.reconcile import RECONCILE_AFTER
from bot.tracking.tracker import build_tracker
from providers.base import DeliveryState
from storage.messages import REMOVED
from storage.models import Message, Replica, StatusEvent, utcnow
from storage.replicas import Replicas
from tests.conftest import Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import FakeTelegram
from tests.test_retention import add_send, rows
from tests.tracking_support import FakeClock, tracker_of

LOST = 3


def _timeout(request: httpx.Request) -> Exception:
    return httpx.ReadTimeout("slow", request=request)


async def test_two_replicas_look_up_each_lost_send_once(tbot: Bot, clock: FakeClock) -> None:
    reply = await tbot.private(f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}")
    assert "connected" in reply, reply
    for n in range(LOST):  # the answer is lost after Parrotica took the message: unknown
        tbot.parrotica.raise_next(_timeout, after=True, path_contains="message", method="POST")
        assert "unknown" in await tbot.private(f"/send parrotica 62812345678{n} Promo {n}")

    resources = tbot.app.bot_data.resources
    assert resources is not None
    assert resources.replicas is not None
    first = resources.replicas  # the bot's own replica, registered at its start
    second = Replicas(
        tbot.services.repo.db,
        me="host-b:2:bbbb",
        dead_after=timedelta(seconds=30),
        host="host-b",
        pid=os.getpid(),
    )
    second.single_process = False
    await second.register()
    mine = tracker_of(tbot)
    other = build_tracker(tbot.app.bot, tbot.services, tbot.app.bot_data.settings, clock=clock)
    other.sweeper = second.sweeps
    assert mine.sweeper is not None, "the application gives its tracker the sweeper rule"
    assert await mine.sweeper()
    assert not await second.sweeps()

    later = datetime.now(UTC) + RECONCILE_AFTER + timedelta(seconds=5)
    await asyncio.gather(mine.tick(later), other.tick(later))
    assert len(tbot.parrotica.requests_to("messages", "GET")) == LOST, "one lookup per send"
    async with tbot.services.repo.db.read() as s:
        looked_up = list(
            await s.exec(
                select(StatusEvent.message_id)
                .where(StatusEvent.source == "reconcile")
                .order_by(col(StatusEvent.message_id))
            )
        )
        states = list(await s.exec(select(Message.state)))
    assert looked_up == [1, 2, 3], "one history row per lost send"
    assert states == ["accepted"] * LOST

    await first.stop()  # the sweeper stops: the next oldest live replica sweeps
    assert await second.sweeps()


async def test_retention_runs_on_the_sweeping_replica_only(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await start_bot(make_settings(tmp_path, retention_days=30), tg, nusa)
    try:
        resources = bot.app.bot_data.resources
        assert resources is not None
        assert resources.replicas is not None
        replicas = resources.replicas
        replicas.single_process = False  # on SQLite too: the rule of several replicas
        db = bot.services.repo.db
        await bot.services.repo.ensure_chat(1, kind="private", title="alice")
        long_ago = utcnow() - timedelta(days=90)
        await add_send(
            db, origin="tg:1:1", at=long_ago, states=[(DeliveryState.DELIVERED, long_ago)]
        )
        async with db.write() as s:  # a replica started before this one: it sweeps
            s.add(
                Replica(
                    id="host-z:9:zzzz",
                    host="host-z",
                    pid=9,
                    started_at=utcnow() - timedelta(hours=1),
                    seen_at=utcnow(),
                )
            )
        context = BotContext(bot.app)
        await retention_job(context)
        assert (await rows(db))["tg:1:1:0"].text == "secret plans", "not this replica's job"
        await Replicas(db, me="host-z:9:zzzz", dead_after=timedelta(seconds=30)).stop()
        await retention_job(context)  # the sweeper stopped: this replica sweeps now
        assert (await rows(db))["tg:1:1:0"].text == REMOVED
    finally:
        await stop_bot(bot)
