"""After a crash, the chat hears about every message without asking (SIGKILL, real process).

More than 1,000 messages go out through ``python -m bot`` against the fake Bot API and a fake
NusaSMS on 127.0.0.1: single-recipient ``/send``s, multi-recipient ``/send``s and scheduled
sends, with a few provider faults (HTTP 503: failed, HTTP 500: unknown). Meanwhile the process
is SIGKILLed more than 20 times at random points (``tests/crash_support.py``: before or after
the provider acts, before Telegram sees a card, or a random moment after one of those) and
restarted each time; ``/send``s keep arriving while it is down, as they would at Telegram.

Then, from what the fakes recorded and the database holds:

- no message reached the provider twice;
- every send has exactly one status card (one accepted ``sendMessage``), and the database
  knows its message id;
- every message is on its card with its final state, so each one that was not sent exactly
  once (unknown after a kill, failed) was reported in the chat by the bot itself;
- every schedule ended and told its chat; nothing is left owed in the outbox;
- no ``/send`` was lost: every one pushed has its batch, even when the killed process had
  taken its update from Telegram (its next ``getUpdates`` confirmed it) before storing the
  batch, because the update was in the inbox (``bot/inbox.py``) before that ``getUpdates``
  and the next start replayed it; the inbox is empty at the end.

Sends keep coming until the database holds at least 1,000 messages, so the checks above
always cover that many.

Fixed seeds; bounded: the load runs for about 30–50 s and the whole test takes ~55–70 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, func, select

from bot.render import icon
from providers.base import DeliveryState
from storage.db import Database, create_engine
from storage.models import (
    Batch,
    InboxUpdate,
    Message,
    OutboxEntry,
    Schedule,
    ScheduleState,
    utcnow,
)
from tests.conftest import NUSA_KEY
from tests.crash_support import BotProcess, Killer
from tests.databases import database_url
from tests.e2e_support import process_env, text_of
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import private_message

pytestmark = pytest.mark.e2e

TOKEN = "4242:E2E-crash-token"
SEED = 20261212
KILLS = 22
# The load goes on until the last kill's life ended; a loaded machine restarts slowly, so the
# cap is generous (an idle machine ends in about LOAD_SECONDS).
LOAD_CAP_SECONDS = 240
MESSAGES = 1000
CHATS = (101, 102, 103, 104, 105)
LOAD_SECONDS = 30.0
SEND_PATH = "/whatsapp/message"
CARD = re.compile(r"(?m)^Send (\d+) via ")


@dataclass(frozen=True, slots=True)
class Planned:
    """One send of the load: pushed as a ``/send`` at ``at`` s, or scheduled for then."""

    kind: str  # "now", "multi", "scheduled"
    chat: int
    numbers: tuple[str, ...]
    text: str
    at: float


def plan(rng: random.Random) -> list[Planned]:
    """Sends until they hold ``MESSAGES`` messages: 45% single, 25% multi, 30% scheduled."""
    numbers = (f"62813{n:08d}" for n in itertools.count(1))
    sends: list[Planned] = []
    while sum(len(p.numbers) for p in sends) < MESSAGES:
        draw = rng.random()
        kind = "now" if draw < 0.45 else "multi" if draw < 0.7 else "scheduled"
        if kind == "now":
            count = 1
        elif kind == "multi":
            count = rng.randint(3, 5)
        else:
            count = 1 if rng.random() < 0.8 else rng.randint(2, 3)
        start = 2.0 if kind == "scheduled" else 0.0
        sends.append(
            Planned(
                kind,
                rng.choice(CHATS),
                tuple(next(numbers) for _ in range(count)),
                f"m{len(sends) + 1}",
                rng.uniform(start, LOAD_SECONDS),
            )
        )
    return sends


def send_update(send: Planned, message_id: int) -> dict[str, object]:
    return private_message(
        f"/send nusasms:wa {','.join(send.numbers)} {send.text}",
        user_id=send.chat,
        username=f"user{send.chat}",
        message_id=message_id,
    )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(database_url(tmp_path, "e2e"))
    try:
        yield Database(engine)
    finally:
        await engine.dispose()


async def test_every_message_is_told_once_through_random_kills(
    tmp_path: Path, db: Database
) -> None:
    rng = random.Random(SEED)
    faults = random.Random(SEED + 1)
    nusa = FakeNusaSms(api_key=NUSA_KEY, retry_after="0")
    async with BotApiServer(token=TOKEN) as server:
        killer: Killer | None = None

        async def provider(request: httpx.Request) -> httpx.Response:
            sending = request.method == "POST" and request.url.path.endswith(SEND_PATH)
            if not sending or killer is None:
                return nusa(request)
            if await killer.provider_send(acted=False):
                raise httpx.ConnectError("the bot was killed", request=request)
            draw = faults.random()
            if draw < 0.03:
                nusa.fail_next(503, {"error": True, "message": "busy"}, path_contains=SEND_PATH)
            elif draw < 0.05:
                nusa.fail_next(500, {"error": True, "message": "oops"}, path_contains=SEND_PATH)
            response = nusa(request)
            if await killer.provider_send(acted=True):
                raise httpx.ConnectError("the bot was killed", request=request)
            return response

        async with serve(provider) as nusasms_base:
            env = process_env(
                tmp_path,
                server,
                nusasms_base,
                NUSASMS_MIN_INTERVAL="0",
                SCHEDULE_CHECK_SECONDS="1",
                LOG_LEVEL="WARNING",
            )
            bot = BotProcess(server, env, tmp_path, tmp_path / "bot.log")
            started = time.monotonic()
            try:
                await bot.start()
                for chat in CHATS:
                    mark = server.state.mark()
                    server.push_update(
                        private_message(
                            f"/connect nusasms api_key={NUSA_KEY}",
                            user_id=chat,
                            username=f"user{chat}",
                        )
                    )
                    await server.wait_for(
                        "sendMessage", lambda c: "connected" in text_of(c), timeout=20, since=mark
                    )
                sends = plan(rng)
                t0, load_start = utcnow(), time.monotonic()
                async with db.write() as s:
                    s.add_all(
                        Schedule(
                            chat_id=p.chat,
                            route="nusasms:wa",
                            recipients=json.dumps(list(p.numbers)),
                            text=p.text,
                            next_run_at=t0 + timedelta(seconds=p.at),
                            created_by=p.chat,
                            created_by_name=f"@user{p.chat}",
                        )
                        for p in sends
                        if p.kind == "scheduled"
                    )
                killer = Killer(bot, db, seed=SEED + 2, kills=KILLS)
                server.before_call = killer.before_call
                killer.arm()

                pushed: dict[str, Planned] = {}
                ids = itertools.count(10_000)
                for send in sorted(
                    (p for p in sends if p.kind != "scheduled"), key=lambda p: p.at
                ):
                    await asyncio.sleep(max(0.0, load_start + send.at - time.monotonic()))
                    message_id = next(ids)
                    pushed[f"tg:{send.chat}:{message_id}"] = send
                    server.push_update(send_update(send, message_id))
                extra = itertools.count(1)
                while time.monotonic() - load_start < LOAD_CAP_SECONDS and (
                    not killer.done or await stored(db) < MESSAGES
                ):
                    # Kills are counted in events: keep sends coming until the last life ended
                    # and the database holds at least MESSAGES messages.
                    n = next(extra)
                    send = Planned("now", rng.choice(CHATS), (f"62814{n:08d}",), f"x{n}", 0)
                    message_id = next(ids)
                    pushed[f"tg:{send.chat}:{message_id}"] = send
                    sends.append(send)
                    server.push_update(send_update(send, message_id))
                    await asyncio.sleep(0.1)
                await killer.settle()
                assert len(killer.kills) >= 20, killer.kills
                load_seconds = time.monotonic() - load_start

                await quiet(server, db)
                assert await bot.stop() == 0, bot.tail()
            finally:  # a failed check must not leave a process behind
                if killer is not None:
                    with contextlib.suppress(Exception):
                        await killer.settle()
                if bot.alive:
                    await bot.kill()
                bot.close_log()
    assert killer is not None
    assert not [k for k in killer.kills if not k.placed], "a kill landed in the documented window"
    await check(server, nusa, db, sends, pushed)
    print(  # shown with -s: what the run did
        f"\n{sum(len(p.numbers) for p in sends)} messages in {len(sends)} sends, "
        f"{len(killer.kills)} kills ({sum(k.waited > 0.003 for k in killer.kills)} waited for "
        f"a card to be recorded, longest {max(k.waited for k in killer.kills) * 1000:.0f} ms; "
        f"{sum(not k.placed for k in killer.kills)} gave up waiting), "
        f"{bot.starts} starts; load {load_seconds:.1f} s, whole run "
        f"{time.monotonic() - started:.1f} s\n"
        + "\n".join(f"  {k.trigger}, waited {k.waited * 1000:.0f} ms" for k in killer.kills)
    )


async def stored(db: Database) -> int:
    async with db.read() as s:
        return int((await s.exec(select(func.count()).select_from(Message))).one())


async def quiet(server: BotApiServer, db: Database, timeout: float = 180.0) -> None:  # noqa: ASYNC109
    """Wait until every update is taken, every schedule ended and nothing is owed."""
    deadline = time.monotonic() + timeout
    calm_since, calls = time.monotonic(), -1
    while time.monotonic() < deadline:
        busy = bool(server.state.updates) or not await settled(db)
        if busy or len(server.state.calls) != calls:
            calm_since, calls = time.monotonic(), len(server.state.calls)
        elif time.monotonic() - calm_since > 1.5:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the bot did not settle within the time allowed")


async def settled(db: Database) -> bool:
    async with db.read() as s:
        queued = await s.exec(
            select(func.count()).where(Message.state == DeliveryState.QUEUED.value)
        )
        owed = await s.exec(select(func.count()).where(OutboxEntry.state == "pending"))
        open_ = await s.exec(
            select(func.count()).where(
                col(Schedule.state).in_([ScheduleState.PENDING.value, ScheduleState.CLAIMED.value])
            )
        )
        return queued.one() == 0 and owed.one() == 0 and open_.one() == 0


async def check(
    server: BotApiServer,
    nusa: FakeNusaSms,
    db: Database,
    sends: list[Planned],
    pushed: dict[str, Planned],
) -> None:
    # 0 duplicates at the provider.
    at_provider = Counter((m.destination, m.message) for m in nusa.sent)
    assert [k for k, n in at_provider.items() if n > 1] == []

    async with db.read() as s:
        batches = {b.id: b for b in await s.exec(select(Batch))}
        messages = list(await s.exec(select(Message).order_by(col(Message.id))))
        schedules = list(await s.exec(select(Schedule)))
        entries = list(await s.exec(select(OutboxEntry)))
        unhandled = list(await s.exec(select(InboxUpdate)))
    assert unhandled == [], "every update taken was handled and left the inbox"
    assert {e.state for e in entries} <= {"delivered"}, Counter(e.state for e in entries)

    # 0 duplicate cards: one accepted sendMessage per batch, the one the database knows.
    cards: dict[int, list[tuple[int, int]]] = {}
    for call in server.state.calls_to("sendMessage"):
        match = CARD.search(str(call.result["text"])) if call.ok else None
        if call.ok and match:
            chat = call.result["chat"]["id"]
            cards.setdefault(int(match.group(1)), []).append((chat, call.result["message_id"]))
    assert {b: c for b, c in cards.items() if len(c) > 1} == {}, "duplicate cards"
    assert sorted(cards) == sorted(batches), "every send has its card"
    for batch_id, [(chat, card_id)] in cards.items():
        batch = batches[batch_id]
        assert (batch.chat_id, batch.card_message_id, batch.card_dead) == (chat, card_id, False)

    # Every message is on its card with its state: the ones not sent exactly once included.
    not_once = 0
    for message in messages:
        state = DeliveryState(message.state)
        sent = at_provider[(message.recipient, message.text)]
        assert state is not DeliveryState.QUEUED
        if sent == 0:
            assert state in (DeliveryState.FAILED, DeliveryState.UNKNOWN), message
        if state is DeliveryState.ACCEPTED:
            assert sent == 1, message
        if sent != 1 or state in (DeliveryState.FAILED, DeliveryState.UNKNOWN):
            not_once += 1
        batch = batches[message.batch_id]
        shown = str(server.state.messages[(batch.chat_id, batch.card_message_id)]["text"])
        line = f"#{message.id} {icon(message.state)} {message.state} → {message.recipient}"
        assert line in shown, f"message {message.id} is not on its card as {state}:\n{shown}"
    assert not_once > 0, "the kills never cut a send off: the test did not test anything"

    # At least MESSAGES messages were checked, and no /send a kill interrupted was lost.
    assert len(messages) >= MESSAGES
    origins = {b.origin for b in batches.values()}
    lost = [o for o in pushed if o not in origins]
    assert lost == [], f"{len(lost)} of {len(pushed)} /sends were lost"

    # Every schedule ran once and its card says so.
    by_schedule = {b.schedule_id: b for b in batches.values() if b.schedule_id is not None}
    for row in schedules:
        assert row.state == ScheduleState.DONE.value, (row.id, row.state, row.note)
        batch = by_schedule[row.id]
        card = str(server.state.messages[(batch.chat_id, batch.card_message_id)]["text"])
        assert f"scheduled send #{row.id}" in card
    print(
        f"\n{len(messages)} messages checked; not sent exactly once, each on its card: "
        f"{not_once}; /sends lost: {len(lost)} of {len(pushed)}"
    )
