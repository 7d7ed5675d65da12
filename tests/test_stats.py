"""/stats: the PNG chart (messages per day by final state and route) and the summary figures."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.render_stats import chart_png
from bot.services.stats import Stats
from tests.conftest import GROUP, USER, Bot
from tests.history_support import Row, seed

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def last_photo(bot: Bot) -> tuple[bytes, str]:
    (call,) = bot.tg.calls_to("sendPhoto")[-1:]
    return call.params["photo"].content, str(call.result["caption"])


async def test_stats_sends_a_png_chart_and_the_summary(bot: Bot) -> None:
    bot.services.reports.clock = lambda: NOW
    await bot.private("/start")
    minute = timedelta(minutes=1)
    await seed(
        bot,
        [
            Row(NOW - timedelta(days=1), "delivered", delivered_after=minute),
            Row(NOW - timedelta(days=1), "read", delivered_after=2 * minute),
            Row(NOW - timedelta(days=2), "delivered", delivered_after=10 * minute),
        ],
    )
    await seed(bot, [Row(NOW - timedelta(days=2), "failed", "nusasms:sms")])
    await seed(bot, [Row(NOW - timedelta(hours=1), "accepted", "parrotica:sms")])
    await seed(bot, [Row(NOW - timedelta(days=30), "delivered", delivered_after=minute)])
    await bot.private("/stats")
    data, caption = last_photo(bot)
    assert data.startswith(PNG)
    assert 10_000 < len(data) < 500_000
    assert png_size(data) == (800, 600)
    assert caption.splitlines() == [
        "Last 7 day(s) (2026-12-04 – 2026-12-10, UTC)",
        "Sent: 5",
        "Delivered: 3",
        "Failed: 1",
        "Still open: 1 · unknown: 0",
        "Delivery rate: 60.0% of sent",
        "Median time to delivered: 2m 0s",
    ]
    await bot.private("/stats 31")  # the month-old message counts now
    _, caption = last_photo(bot)
    assert "Sent: 6" in caption
    assert "Last 31 day(s) (2026-11-10 – 2026-12-10, UTC)" in caption


async def test_days_are_the_chats_own(bot: Bot) -> None:
    bot.services.reports.clock = lambda: NOW  # 19:00 in Jakarta
    await bot.private("/timezone Asia/Jakarta")
    await seed(bot, [Row(datetime(2026, 12, 9, 18, 0, tzinfo=UTC), "delivered")])  # the 10th
    await bot.private("/stats 1")
    _, caption = last_photo(bot)
    assert caption.startswith("Last 1 day(s) (2026-12-10 – 2026-12-10, Asia/Jakarta)\nSent: 1")
    assert "Median time to delivered: no deliveries" in caption  # no receipt row seeded


async def test_an_empty_chat_gets_a_sentence_not_an_empty_chart(bot: Bot) -> None:
    reply = await bot.private("/stats")
    assert reply == (
        "This chat sent no messages in the last 7 days, so there is nothing to chart. "
        "/send sends one."
    )
    assert "sent no messages today" in await bot.private("/stats 1")
    assert bot.tg.calls_to("sendPhoto") == []


@pytest.mark.parametrize("command", ["/stats 0", "/stats 91", "/stats week", "/stats 7 8"])
async def test_bad_periods_are_refused(bot: Bot, command: str) -> None:
    assert "/stats takes a number of days from 1 to 90" in await bot.private(command)
    assert bot.tg.calls_to("sendPhoto") == []


async def test_viewers_may_see_the_statistics(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role 7 viewer")
    reply = await bot.group("/stats", user_id=7)
    assert "nothing to chart" in reply


def test_a_chart_of_ninety_days_and_many_routes_still_renders() -> None:
    days = [date(2026, 9, 1) + timedelta(days=i) for i in range(90)]
    stats = Stats(days, "UTC")
    for index, day in enumerate(days):
        stats.by_outcome[(day, "delivered")] += index
        stats.by_outcome[(day, "failed")] += 1
        stats.by_route[(day, f"provider{index % 12}:sms")] += index + 1
        stats.outcomes["delivered"] += index
    data = chart_png(stats)
    assert data.startswith(PNG)
    assert png_size(data) == (800, 600)
