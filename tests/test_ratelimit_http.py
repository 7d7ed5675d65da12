"""The pacer's trace callback in the shared HTTP client, over real sockets on 127.0.0.1.

:func:`providers.ratelimit.paced_request` passes each paced request a ``trace`` extension;
httpcore reports the write of its headers and the arrival of the answer's headers through it.
"""

from __future__ import annotations

import asyncio
import itertools

from providers.base import OutgoingMessage
from providers.http import make_http_client
from providers.nusasms import NusaSmsClient, NusaSmsSettings, pacing_interval
from providers.ratelimit import AccountLimiters, SlotPacer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms

KEY = "test-api-key"
INTERVAL = 0.05


async def test_writes_and_answers_reach_the_pacer_and_the_floor_holds() -> None:
    fake = FakeNusaSms(min_interval=INTERVAL, retry_after="0")
    fake.api_keys.add("other-key")
    limiters = AccountLimiters()
    async with serve(fake) as base_url, make_http_client(timeout=5.0) as http:
        settings = NusaSmsSettings(base_url=f"{base_url}/nusasms_api/1.0")

        def client(api_key: str) -> NusaSmsClient:
            pacer = limiters.get(
                "nusasms", api_key, interval=pacing_interval(INTERVAL), floor=INTERVAL
            )
            return NusaSmsClient(http, api_key=api_key, limiter=pacer, settings=settings)

        posting, getting = client(KEY), client("other-key")
        await asyncio.gather(
            *(
                posting.send(OutgoingMessage(channel="wa", to=f"62812{n:08d}", text="hi"))
                for n in range(6)
            )
        )
        await asyncio.gather(*(getting.verify() for _ in range(3)))

    # POSTs and GETs alike report their writes; both pacers saw the local fake answer fast.
    for account in (KEY, "other-key"):
        pacer = limiters.get("nusasms", account, interval=pacing_interval(INTERVAL))
        assert pacer.reports_writes, account
        assert pacer.near, account
    assert fake.rate_limited == 0
    assert len(fake.sent) == 6


async def test_an_unpaced_request_is_left_alone_by_the_trace() -> None:
    fake = FakeNusaSms()
    async with serve(fake) as base_url, make_http_client(timeout=5.0) as http:
        settings = NusaSmsSettings(base_url=f"{base_url}/nusasms_api/1.0", min_interval=0)
        pacer = AccountLimiters().get("nusasms", KEY, interval=0)
        client = NusaSmsClient(http, api_key=KEY, limiter=pacer, settings=settings)
        await client.verify()
        direct = await http.get(f"{base_url}/nusasms_api/1.0/auth/api_key")

    assert not pacer.reports_writes
    assert direct.status_code == 401  # no key: the request went out untouched


async def test_a_request_let_go_early_is_held_until_its_moment() -> None:
    """Once writes are reported, a slot opens ``WRITE_LEAD`` early and the trace holds it."""
    fake = FakeNusaSms()
    pacer = SlotPacer(pacing_interval(INTERVAL), floor=INTERVAL)
    slots = []
    async with serve(fake) as base_url, make_http_client(timeout=5.0) as http:
        for _ in range(4):
            async with pacer.slot() as slot:
                await http.get(
                    f"{base_url}/nusasms_api/1.0/auth/api_key", extensions=slot.extensions
                )
            slots.append(slot)
    assert pacer.reports_writes
    for slot in slots[2:]:
        assert slot.written is not None
        assert slot.written >= slot.not_before  # written on time, however early it was let go
    # Let go ``WRITE_LEAD`` early; a loaded machine may wake a sleeper late, so one of the
    # paced slots is enough to show the lead.
    assert any(slot.left < slot.not_before for slot in slots[1:])
    for previous, current in itertools.pairwise(slots):
        assert current.written is not None
        assert previous.answered is not None
        assert current.written >= previous.answered + INTERVAL  # near: a floor after the answer
