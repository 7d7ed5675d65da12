"""A large send survives a SIGKILL of the real process: resumed, exactly once per recipient.

``python -m bot`` runs against the fake Bot API and a fake NusaSMS on 127.0.0.1. A ``/send``
to 240 numbers is killed (SIGKILL, no cleanup) while the provider holds the 80th request: the
provider has acted on it, the bot never hears the answer. The restarted process goes on with
the send by itself. Then:

- no number reached the provider twice;
- no recipient was lost: every row was either sent once (``accepted``) or is ``unknown``
  (handed over when the kill came: the provider may have it, so it is never resent);
- the send ended (``done``) and its one card, posted before the kill, was edited to the
  summary by the new process (no second card).

A second life is killed the same way in the resumed send, so a resume is resumed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from providers.base import DeliveryState
from storage.db import Database, create_engine
from storage.models import Batch, Message, Progress
from tests.conftest import NUSA_KEY
from tests.crash_support import BotProcess
from tests.databases import database_url
from tests.e2e_support import process_env, text_of
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import callback_query, private_message

pytestmark = pytest.mark.e2e

TOKEN = "4243:E2E-large-send-token"
SEND_PATH = "/whatsapp/message"
CHAT = 201
NUMBERS = [f"62815{n:08d}" for n in range(240)]
KILL_AT = (80, 160)  # the provider's n-th send request triggers a kill (acted, unanswered)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(database_url(tmp_path, "e2e"))
    try:
        yield Database(engine)
    finally:
        await engine.dispose()


async def wait(condition: object, what: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_killed_large_send_resumes_exactly_once(tmp_path: Path, db: Database) -> None:
    nusa = FakeNusaSms(api_key=NUSA_KEY, retry_after="0")
    requests = 0
    released = asyncio.Event()
    kills: list[asyncio.Task[None]] = []
    bot: BotProcess | None = None

    async def card_recorded() -> bool:
        async with db.read() as s:
            batch = await s.get(Batch, 1)
        return batch is not None and batch.card_message_id is not None

    async def kill() -> None:
        assert bot is not None
        await wait(card_recorded, "the card's message id to be stored")  # see crash_support
        await bot.kill()
        await bot.start()

    async def provider(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        if not (request.method == "POST" and request.url.path.endswith(SEND_PATH)):
            return nusa(request)
        if kills and not kills[-1].done():  # a request during a kill waits for the new life
            await asyncio.wait([kills[-1]])
        requests += 1
        number = requests
        await asyncio.sleep(0.002)  # a provider that takes a moment: requests overlap
        response = nusa(request)
        if number in KILL_AT:
            kills.append(asyncio.create_task(kill()))
            await released.wait()  # acted on, never answered: the kill cuts it off
        return response

    async with BotApiServer(token=TOKEN) as server, serve(provider) as nusasms_base:
        env = process_env(
            tmp_path, server, nusasms_base, NUSASMS_MIN_INTERVAL="0", SEND_CONCURRENCY="4"
        )
        bot = BotProcess(server, env, tmp_path, tmp_path / "bot.log")
        try:
            await bot.start()
            mark = server.state.mark()
            server.push_update(
                private_message(f"/connect nusasms api_key={NUSA_KEY}", user_id=CHAT)
            )
            await server.wait_for(
                "sendMessage", lambda c: "connected" in text_of(c), timeout=20, since=mark
            )
            mark = server.state.mark()
            server.push_update(
                private_message(f"/send nusasms:wa {','.join(NUMBERS)} Hello", user_id=CHAT)
            )
            asked = await server.wait_for(  # a large send: Send is pressed first
                "sendMessage", lambda c: "Send to" in text_of(c), timeout=20, since=mark
            )
            send = asked.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            server.push_update(
                callback_query(
                    send,
                    message_chat_id=CHAT,
                    message_id=asked.result["message_id"],
                    user_id=CHAT,
                )
            )

            async def ended() -> bool:
                async with db.read() as s:
                    batch = await s.get(Batch, 1)
                    queued = await s.exec(
                        select(Message.id).where(Message.state == DeliveryState.QUEUED.value)
                    )
                    return (
                        len(kills) == len(KILL_AT)
                        and all(k.done() for k in kills)
                        and batch is not None
                        and batch.progress == Progress.DONE.value
                        and not list(queued)
                    )

            await wait(ended, "the resumed send to end", timeout=90)
            for task in kills:
                task.result()  # a failed restart raises here

            async def summary_shown() -> bool:
                async with db.read() as s:
                    batch = await s.get(Batch, 1)
                assert batch is not None
                assert batch.card_message_id is not None
                text = str(server.state.messages[(CHAT, batch.card_message_id)]["text"])
                return "🏁 Finished" in text

            await wait(summary_shown, "the card's summary")
            assert await bot.stop() == 0, bot.tail()
        finally:
            released.set()
            for task in kills:
                task.cancel()
            with contextlib.suppress(Exception):
                if bot.alive:
                    await bot.kill()

    at_provider = Counter(m.destination for m in nusa.sent)
    assert [n for n, times in at_provider.items() if times > 1] == [], "sent twice"
    async with db.read() as s:
        rows = list(await s.exec(select(Message).order_by(col(Message.id))))
    assert [m.recipient for m in rows] == NUMBERS
    states = Counter(m.state for m in rows)
    for m in rows:
        if at_provider[m.recipient] == 0:  # handed over when a kill came, never acted on
            assert m.state == DeliveryState.UNKNOWN.value, m
        else:
            assert m.state in (DeliveryState.ACCEPTED.value, DeliveryState.UNKNOWN.value), m
        assert m.handed_at is not None
    # A kill leaves unknown the requests in flight (4 workers) and the answers not committed
    # yet (at most PROGRESS_FLUSH, 0.25 s, old: up to ~60 at this fake's pace); everything
    # after them went out from the new life.
    assert len(KILL_AT) <= states[DeliveryState.UNKNOWN.value] <= 120, states
    assert states[DeliveryState.ACCEPTED.value] + states[DeliveryState.UNKNOWN.value] == 240
    cards = [
        c
        for c in server.state.calls_to("sendMessage")
        if c.ok and str(c.result["text"]).startswith("Send 1 via")
    ]
    assert len(cards) == 1, "the card continues: no second card after a restart"
    print(f"\n240 recipients, {len(KILL_AT)} kills: {dict(states)}; {len(nusa.sent)} at provider")
