"""/check: WhatsApp number checks, batching, the callback results and where they go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.callbacks import ProviderCallback, callback_url
from providers.base import PhoneCheckResult
from providers.number_checks import NUMBER_CHECKS, number_check_providers
from providers.nusasms_checks import parse_phone_check_callback
from providers.registry import REGISTRY
from tests.conftest import NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.nusasms_support import HookedFake, stored_checks

WEBHOOK = "https://bot.example.com"
OTHER_USER = 2


@pytest.fixture
async def hooked_webhook_bot(tmp_path: Path, tg: FakeTelegram) -> AsyncIterator[Bot]:
    """A bot in webhook mode whose NusaSMS fake can be told to fail one request."""
    settings = make_settings(tmp_path, webhook_url=WEBHOOK)
    started = await start_bot(settings, tg, HookedFake(retry_after="0"))
    try:
        yield started
    finally:
        await stop_bot(started)


async def callback(bot: Bot, body: Any, kind: str = "phone_check") -> None:
    """NusaSMS calling back, as the webhook server hands it to the application."""
    await bot.app.process_update(ProviderCallback(provider="nusasms", kind=kind, body=body))


async def test_without_webhook_the_check_is_submitted_and_the_reply_says_so(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private("/check 6281234567890, +62 812-3456-7891")
    assert "Sent 2 numbers to NusaSMS's WhatsApp check (1 request)" in reply, reply
    assert "without WEBHOOK_URL" in reply
    [request] = bot.nusa.phone_checks
    assert request.phone_numbers == ["6281234567890", "6281234567891"]
    assert request.callback_url is None
    [row] = await stored_checks(bot)
    assert (row.chat_id, row.numbers, row.completed_at) == (USER, request.phone_numbers, None)


async def test_results_arrive_in_the_chat_in_webhook_mode(hooked_webhook_bot: Bot) -> None:
    bot = hooked_webhook_bot
    await bot.connect()
    await bot.private("/country ID")
    reply = await bot.private("/check 081234567890 6281234567891")
    assert "results will be posted here" in reply, reply
    [request] = bot.nusa.phone_checks
    assert request.callback_url == callback_url(WEBHOOK, "123:ABC", "nusasms", "phone_check")
    assert "123:ABC" not in (request.callback_url or "")  # the token is never in a URL
    mark = bot.tg.mark()
    await callback(
        bot,
        [
            {"phone": "6281234567890", "status": "registered"},
            {"phone": "6281234567891", "status": "not registered"},
        ],
    )
    [text] = bot.replies_since(mark, USER)
    assert "✅ 6281234567890 on WhatsApp" in text, text
    assert "❌ 6281234567891 not on WhatsApp" in text
    [row] = await stored_checks(bot)
    assert row.completed_at is not None
    assert row.results["6281234567890"] == {"on_whatsapp": True, "status": "registered"}


async def test_partial_results_and_several_chats(hooked_webhook_bot: Bot) -> None:
    bot = hooked_webhook_bot
    await bot.connect()
    other = await bot.private(f"/connect nusasms api_key={NUSA_KEY}", user_id=OTHER_USER)
    assert "connected" in other
    await bot.private("/check 6281234567890,6281234567891")
    await bot.private("/check 6281234567890", user_id=OTHER_USER)
    mark = bot.tg.mark()
    await callback(bot, {"data": {"6281234567890": True}})
    [mine] = bot.replies_since(mark, USER)
    [theirs] = bot.replies_since(mark, OTHER_USER)
    assert "1 of 2 numbers answered so far" in mine, mine
    assert "6281234567890 on WhatsApp" in theirs
    assert "answered so far" not in theirs
    mark = bot.tg.mark()
    await callback(bot, {"data": {"6281234567891": "unknown-state"}})
    [later] = bot.replies_since(mark, USER)
    assert "❔ 6281234567891 unknown (unknown-state)" in later, later
    assert bot.replies_since(mark, OTHER_USER) == []
    assert all(row.completed_at is not None for row in await stored_checks(bot))


async def test_callbacks_arriving_together_keep_both_results(hooked_webhook_bot: Bot) -> None:
    bot = hooked_webhook_bot
    await bot.connect()
    await bot.private("/check 6281234567890,6281234567891")
    await asyncio.gather(
        callback(bot, [{"phone": "6281234567890", "status": True}]),
        callback(bot, [{"phone": "6281234567891", "status": False}]),
    )
    [row] = await stored_checks(bot)
    assert set(row.results) == {"6281234567890", "6281234567891"}
    assert row.completed_at is not None


async def test_unmatched_or_foreign_callbacks_post_nothing(hooked_webhook_bot: Bot) -> None:
    bot = hooked_webhook_bot
    await bot.connect()
    await bot.private("/check 6281234567890")
    mark = bot.tg.mark()
    await callback(bot, [{"phone": "6289999999999", "status": True}])  # nobody asked
    await callback(bot, {"unexpected": "shape"})
    await callback(bot, [{"phone": "6281234567890", "status": True}], kind="delivery")
    assert bot.tg.calls[mark:] == []
    [row] = await stored_checks(bot)
    assert row.results == {}


async def test_long_lists_are_split_into_batches_of_100(bot: Bot) -> None:
    await bot.connect()
    numbers = ",".join(f"62812{i:08d}" for i in range(250))
    reply = await bot.private(f"/check {numbers}")
    assert "Sent 250 numbers to NusaSMS's WhatsApp check (3 requests)" in reply, reply
    assert [len(c.phone_numbers) for c in bot.nusa.phone_checks] == [100, 100, 50]
    assert [len(r.numbers) for r in await stored_checks(bot)] == [100, 100, 50]


async def test_a_failed_batch_is_reported_and_not_stored(hooked_webhook_bot: Bot) -> None:
    bot = hooked_webhook_bot
    await bot.connect()
    fake = bot.nusa
    assert isinstance(fake, HookedFake)
    calls = 0

    def second_fails(request: httpx.Request) -> httpx.Response | None:
        nonlocal calls
        if request.url.path.endswith("/wa_phone_check"):
            calls += 1
            if calls == 2:
                return httpx.Response(500, json={"error": True, "message": "down"})
        return None

    fake.hook = second_fails
    numbers = ",".join(f"62812{i:08d}" for i in range(150))
    reply = await bot.private(f"/check {numbers}")
    assert "Sent 100 numbers" in reply, reply
    assert "50 more were not submitted" in reply
    assert "HTTP 500" in reply
    assert [len(r.numbers) for r in await stored_checks(bot)] == [100]


async def test_a_refused_first_batch_stores_nothing(bot: Bot) -> None:
    await bot.connect()
    bot.nusa.fail_next(503, {"error": True, "message": "maintenance"}, path_contains="phone")
    reply = await bot.private("/check 6281234567890")
    assert "temporarily unavailable" in reply, reply
    assert await stored_checks(bot) == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/check", "Usage: /check"),
        ("/check hello", "Nothing was checked"),
        ("/check 081234567890", "set the chat's country"),
        ("/check +683 4002", "has 7 digits; NusaSMS checks 8 to 14"),
        ("/check 6281234567890,12", "“12” is not a phone number"),
        ("/check " + ",".join(f"62812{i:08d}" for i in range(1001)), "At most 1000 numbers"),
    ],
)
async def test_bad_numbers_get_a_specific_reply(bot: Bot, command: str, expected: str) -> None:
    await bot.connect()
    reply = await bot.private(command)
    assert expected in reply, reply
    assert bot.nusa.phone_checks == []
    assert await stored_checks(bot) == []


async def test_check_needs_nusasms_connected_and_is_in_help(bot: Bot) -> None:
    reply = await bot.private("/check 6281234567890")
    assert "not connected" in reply, reply
    assert bot.nusa.phone_checks == []
    assert "/check" in await bot.private("/help")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            [{"phone": "6281", "status": "registered"}],  # too short to be a number: ignored
            [],
        ),
        (
            [{"phone_number": "+62 812-3456-7890", "exists": True}],
            [PhoneCheckResult("6281234567890", True, "on WhatsApp")],
        ),
        (
            {"error": False, "data": {"results": [{"number": 6281234567890, "is_wa": "no"}]}},
            [PhoneCheckResult("6281234567890", False, "no")],
        ),
        (
            '{"phone_numbers": [{"msisdn": "6281234567890", "registered": "false"}]}',
            [PhoneCheckResult("6281234567890", False, "false")],
        ),
        (
            {"6281234567890": "active", "6281234567891": "inactive"},
            [
                PhoneCheckResult("6281234567890", True, "active"),
                PhoneCheckResult("6281234567891", False, "inactive"),
            ],
        ),
        (
            {"phone": "6281234567890"},
            [PhoneCheckResult("6281234567890", None, "no answer")],
        ),
        (
            b'[{"nomor": "6281234567890", "status": "Terdaftar"}]',
            [PhoneCheckResult("6281234567890", True, "Terdaftar")],
        ),
        ("not json", []),
        (None, []),
    ],
)
def test_callback_shapes_are_read_defensively(body: Any, expected: list[PhoneCheckResult]) -> None:
    assert parse_phone_check_callback(body) == expected


def test_the_fake_enforces_the_documented_100_number_limit() -> None:
    # What makes the batching test meaningful: a batch of 101 would have been refused.
    fake = FakeNusaSms()
    with httpx.Client(transport=httpx.MockTransport(fake)) as http:
        answer = http.post(
            "http://nusasms.test/nusasms_api/1.0/wa_phone_check",
            headers={"APIKey": "test-api-key"},
            json={"phone_numbers": ["6281234567890"] * 101},
        )
    assert answer.status_code == 422  # so a batch of 101 would be refused


def test_number_checks_are_found_by_capability() -> None:
    offering = {n for n, spec in REGISTRY.items() if spec.capabilities.number_check}
    assert offering == set(NUMBER_CHECKS)  # a declared capability has its rules, and back
    [(spec, rules)] = number_check_providers()
    assert (spec.name, rules.batch_size, rules.min_digits, rules.max_digits) == (
        "nusasms",
        100,
        8,
        14,
    )
    assert rules.accepts("62812345678")
    assert not rules.accepts("6281234")
