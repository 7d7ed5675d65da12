"""One request per 50 ms per NusaSMS account, through the real /send path.

The bot and the fake both use the documented 0.05 s. The fake answers 429 to any request that
comes sooner than that after the previous accepted one of the same account (API key or SMS
user), with no tolerance, so ``rate_limited == 0`` proves the pacing held. The fake answers at
once, so the pacer waits for each answer and sends the next request 50 ms after it (see
providers/ratelimit.py): the 200-recipient test takes a little over 10 s. The pacer itself is
tested on a virtual clock in tests/test_ratelimit.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.confirm_support import confirm
from tests.conftest import NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, feed, private_message
from tests.nusasms_support import connect_sms, stored_messages

INTERVAL = 0.05


class TimedFake(FakeNusaSms):
    """The fake, remembering when each accepted request of each account arrived."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accepted_at: dict[str, list[float]] = {}

    def _throttle(self, account: str, body: Mapping[str, Any]) -> httpx.Response | None:
        answer = super()._throttle(account, body)
        if answer is None:
            self.accepted_at.setdefault(account, []).append(time.monotonic())
        return answer

    def min_gap(self, account: str) -> float:
        times = self.accepted_at[account]
        return min(b - a for a, b in itertools.pairwise(times))


@pytest.fixture
async def paced(tmp_path: Path, tg: FakeTelegram) -> AsyncIterator[Bot]:
    """The bot and the fake both at the documented one request per 50 ms."""
    fake = TimedFake(min_interval=INTERVAL, retry_after="0")
    settings = make_settings(tmp_path, nusasms_min_interval=INTERVAL)
    started = await start_bot(settings, tg, fake)
    try:
        yield started
    finally:
        await stop_bot(started)


def numbers(count: int, start: int = 0) -> str:
    return ",".join(f"62812{start + i:08d}" for i in range(count))


async def test_a_bulk_send_of_200_never_trips_the_limit(paced: Bot) -> None:
    fake = paced.nusa
    assert isinstance(fake, TimedFake)
    await paced.connect()
    reply = await paced.private(f"/send nusasms:wa {numbers(200)} Pengumuman")
    assert "Send to 200 recipients?" in reply, reply
    mark = paced.tg.mark()
    await confirm(paced)
    # A large send: its one progress card is edited to the summary (within the card pacing).
    summary = await paced.tg.wait_for(
        "editMessageText", lambda c: "Finished" in str(c.params.get("text")), since=mark
    )
    assert "accepted 200" in str(summary.params["text"])
    assert fake.rate_limited == 0
    assert len(fake.sent) == 200
    assert fake.min_gap(f"wa:{NUSA_KEY}") >= INTERVAL


async def test_sms_bulk_is_paced_by_the_sms_login(paced: Bot) -> None:
    fake = paced.nusa
    assert isinstance(fake, TimedFake)
    await connect_sms(paced)
    reply = await paced.private(f"/send nusasms:sms {numbers(30)} Halo")
    assert "accepted 30" in reply, reply
    assert fake.rate_limited == 0
    assert fake.min_gap("sms:sms-user") >= INTERVAL


async def test_chats_sharing_an_account_share_its_pace(paced: Bot) -> None:
    fake = paced.nusa
    assert isinstance(fake, TimedFake)
    await paced.connect()
    other = 2
    reply = await paced.private(f"/connect nusasms api_key={NUSA_KEY}", user_id=other)
    assert "connected" in reply, reply
    await asyncio.gather(
        feed(paced.app, private_message(f"/send nusasms:wa {numbers(12)} A", user_id=USER)),
        feed(paced.app, private_message(f"/send nusasms:wa {numbers(12, 50)} B", user_id=other)),
    )
    assert len(fake.sent) == 24
    assert fake.rate_limited == 0
    assert fake.min_gap(f"wa:{NUSA_KEY}") >= INTERVAL


async def test_a_429_is_retried_not_reported(bot: Bot) -> None:
    await connect_sms(bot)
    for path in ("/whatsapp/message", "/sendsms/plain"):
        bot.nusa.fail_next(
            429, {"error": True, "message": "Too Many Requests"}, path_contains=path
        )
    assert "accepted" in await bot.private("/send nusasms:wa 6281234567890 Halo")
    assert "accepted" in await bot.private("/send nusasms:sms 6281234567890 Halo")
    assert [m.state for m in await stored_messages(bot)] == ["accepted", "accepted"]
    assert len(bot.nusa.sent) == 1
    assert len(bot.nusa.sms_sent) == 1
