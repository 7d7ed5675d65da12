"""Prometheus metrics through the real Application: sends, provider calls, cards, backlog."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from bot.metrics import Metrics, status_class
from bot.ops import refresh
from providers.base import DeliveryState, StatusReport
from providers.registry import OTHER_PROVIDER, provider_environment, provider_of_url
from tests.conftest import USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.tracking_support import FakeClock, batch_of, start_tracked_bot, tracker_of

TO = "6281234567890"


def registry(bot: Bot) -> CollectorRegistry:
    metrics = bot.app.bot_data.metrics
    assert metrics is not None
    return metrics.registry


def value(bot: Bot, name: str, **labels: str) -> float:
    """A sample's value (0 when the series does not exist yet)."""
    return registry(bot).get_sample_value(name, labels) or 0.0


async def test_a_send_counts_its_message_by_route_and_outcome(bot: Bot) -> None:
    await bot.connect()
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted") == 0
    reply = await bot.private(f"/send nusasms:wa {TO} Hello")
    assert "accepted" in reply
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted") == 1
    await bot.private(f"/send nusasms:wa {TO},6281234567891 Again")
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted") == 3


async def test_a_refused_send_counts_as_failed_and_a_lost_answer_as_unknown(bot: Bot) -> None:
    await bot.connect()
    bot.nusa.fail_next(400, {"message": "bad number"}, path_contains="/whatsapp/")
    await bot.private(f"/send nusasms:wa {TO} One")
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="failed") == 1
    bot.nusa.raise_next(
        lambda r: httpx.ReadTimeout("timed out", request=r), path_contains="/whatsapp/"
    )
    await bot.private(f"/send nusasms:wa {TO} Two")
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="unknown") == 1
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted") == 0


async def test_a_replayed_update_is_not_counted_twice(bot: Bot) -> None:
    await bot.connect()
    # Telegram delivering one update twice: the same origin, so the second is a replay.
    await bot.private(f"/send nusasms:wa {TO} Hello", message_id=77)
    await bot.private(f"/send nusasms:wa {TO} Hello", message_id=77)
    assert len(bot.nusa.sent) == 1
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted") == 1


async def test_provider_calls_are_timed_and_counted_by_provider(bot: Bot) -> None:
    await bot.connect()  # the key is checked with one call
    before = value(bot, "chatops_provider_request_seconds_count", provider="nusasms")
    assert before >= 1
    await bot.private(f"/send nusasms:wa {TO} Hello")
    after = value(bot, "chatops_provider_request_seconds_count", provider="nusasms")
    assert after == before + 1
    assert value(bot, "chatops_provider_request_seconds_sum", provider="nusasms") > 0
    assert value(bot, "chatops_provider_responses_total", provider="nusasms", status="2xx") == (
        after
    )


async def test_a_429_is_counted_and_the_send_still_goes_out(bot: Bot) -> None:
    await bot.connect()
    bot.nusa.fail_next(429, {"message": "Too Many Requests"}, path_contains="/whatsapp/")
    reply = await bot.private(f"/send nusasms:wa {TO} Hello")
    assert "accepted" in reply, "the 429 was waited out and sent again"
    assert value(bot, "chatops_provider_rate_limited_total", provider="nusasms") == 1
    assert value(bot, "chatops_provider_responses_total", provider="nusasms", status="429") == 1
    assert value(bot, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted") == 1


async def test_card_edits_are_counted_by_result(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    clock = FakeClock()
    bot = await start_tracked_bot(make_settings(tmp_path), tg, nusa, clock)
    try:
        await bot.connect()
        await bot.private(f"/send nusasms:wa {TO} Hello")
        ref = nusa.sent[-1].ref_no
        tracker = tracker_of(bot)

        async def receive(state: DeliveryState) -> None:
            clock.advance(5)  # past the card's edit interval
            await tracker.receive("nusasms", [StatusReport(ref, state, state.value)])
            await tracker.tick()

        await receive(DeliveryState.SENT)
        assert value(bot, "chatops_card_edits_total", result="edited") == 1
        tg.fail_next("editMessageText", retry_after=2)
        await receive(DeliveryState.DELIVERED)
        assert value(bot, "chatops_card_edits_total", result="retry_after") == 1
        clock.advance(5)
        await tracker.tick()  # the chat's pause is over: the edit goes through
        assert value(bot, "chatops_card_edits_total", result="edited") == 2
        batch = await batch_of(bot)
        tg.delete_message_by_user(USER, batch.card_message_id or 0)
        await receive(DeliveryState.READ)
        assert value(bot, "chatops_card_edits_total", result="gone") == 1
        assert value(bot, "chatops_card_edits_total", result="edited") == 2
    finally:
        await stop_bot(bot)


async def test_poll_lag_is_how_late_the_most_overdue_poll_is(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    clock = FakeClock()
    bot = await start_tracked_bot(make_settings(tmp_path), tg, nusa, clock)
    try:
        await bot.connect()
        await bot.private(f"/send nusasms:wa {TO} Hello")
        await refresh(bot.app)
        assert value(bot, "chatops_poll_lag_seconds") == 0, "the first poll is 15 s away"
        assert value(bot, "chatops_polls_tracked") == 1
        due = tracker_of(bot).poller.schedule.next_due()
        assert due is not None
        clock.now = due + timedelta(seconds=40)  # the poll loop did not run: 40 s late
        await refresh(bot.app)
        assert value(bot, "chatops_poll_lag_seconds") == pytest.approx(40)
        await tracker_of(bot).tick()  # polled: nothing is late any more
        await refresh(bot.app)
        assert value(bot, "chatops_poll_lag_seconds") == 0
    finally:
        await stop_bot(bot)


async def test_schedule_backlog_counts_due_runs_nobody_fired(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    # SCHEDULE_CHECK_SECONDS=0: this process fires none, as when the scheduler is stuck.
    bot = await start_bot(make_settings(tmp_path, schedule_check_seconds=0), tg, nusa)
    try:
        await bot.connect()
        reply = await bot.private(f"/schedule in 1h nusasms:wa {TO} Later")
        assert "Scheduled" in reply, reply
        await refresh(bot.app)
        assert value(bot, "chatops_schedule_backlog") == 0, "not due yet"
        row = await bot.services.schedules.store.get(1)
        assert row is not None
        later = row.next_run_at + timedelta(minutes=5)
        bot.services.schedules.clock = lambda: later
        await refresh(bot.app)
        assert value(bot, "chatops_schedule_backlog") == 1
        assert value(bot, "chatops_schedule_backlog_oldest_seconds") == pytest.approx(300)
        assert nusa.sent == [], "counted, not fired"
    finally:
        await stop_bot(bot)


async def test_replicas_alive_comes_from_a_callable(bot: Bot) -> None:
    await refresh(bot.app)
    assert value(bot, "chatops_replicas_alive") == 1, "this process by default"

    async def three() -> int:
        return 3

    metrics = bot.app.bot_data.metrics
    assert metrics is not None
    metrics.replicas = three
    await refresh(bot.app)
    assert value(bot, "chatops_replicas_alive") == 3
    metrics.replicas = lambda: 2  # a plain function works too
    await refresh(bot.app)
    assert value(bot, "chatops_replicas_alive") == 2


async def test_each_application_counts_in_its_own_registry(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    first = await start_bot(make_settings(tmp_path / "a"), tg, nusa)
    second = await start_bot(make_settings(tmp_path / "b"), FakeTelegram(), FakeNusaSms())
    try:
        await first.connect()
        await first.private(f"/send nusasms:wa {TO} Hello")
        assert registry(first) is not registry(second)
        assert value(first, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted")
        assert not value(
            second, "chatops_messages_sent_total", route="nusasms:wa", outcome="accepted"
        )
    finally:
        await stop_bot(first)
        await stop_bot(second)


def test_provider_labels_come_from_the_configured_base_urls(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = provider_environment(httpx.AsyncClient(), settings.model_dump())
    provider_of = provider_of_url(env)
    assert provider_of(httpx.URL(f"{settings.nusasms_base_url}/whatsapp/message")) == "nusasms"
    assert provider_of(httpx.URL(f"{settings.nusasms_sms_base_url}/v3/sendsms/plain")) == (
        "nusasms"
    )
    assert provider_of(httpx.URL(f"{settings.parrotica_base_url}/api/v1/x")) == "parrotica"
    assert provider_of(httpx.URL(f"{settings.courier_identity_url}/v1/login/")) == "courier"
    assert provider_of(httpx.URL("http://elsewhere.test/x?key=1")) == OTHER_PROVIDER


def test_status_classes_keep_the_label_set_small() -> None:
    assert [status_class(c) for c in (200, 201, 400, 404, 429, 500, 503)] == [
        "2xx",
        "2xx",
        "4xx",
        "4xx",
        "429",
        "5xx",
        "5xx",
    ]


def test_the_exposition_names_every_metric() -> None:
    text = Metrics().exposition().decode()
    for name in (
        "chatops_messages_sent_total",
        "chatops_provider_request_seconds",
        "chatops_provider_responses_total",
        "chatops_provider_rate_limited_total",
        "chatops_card_edits_total",
        "chatops_schedule_backlog",
        "chatops_schedule_backlog_oldest_seconds",
        "chatops_poll_lag_seconds",
        "chatops_polls_tracked",
        "chatops_replicas_alive",
        "chatops_scrape_errors_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
