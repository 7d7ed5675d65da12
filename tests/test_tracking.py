"""Delivery tracking through polls: progressions, backoff, failures, expiry, restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.tracking.policy import PollPolicy
from providers.base import DeliveryState, StatusReport
from storage.models import Message
from tests.conftest import USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.tracking_support import (
    FakeClock,
    batch_of,
    card_text,
    edits_since,
    history_states,
    message_row,
    next_poll,
    send_one,
    start_tracked_bot,
    statements,
    status_polls,
    tracker_of,
)


async def test_polls_move_the_card_in_place_until_read(tbot: Bot, clock: FakeClock) -> None:
    ref = await send_one(tbot)
    batch = await batch_of(tbot)
    tracker = tracker_of(tbot)
    mark = tbot.tg.mark()

    clock.advance(5)
    await tracker.tick()
    assert status_polls(tbot.nusa) == 0, "the first poll waits STATUS_POLL_SECONDS"

    tbot.nusa.set_status(ref, "S")
    clock.advance(11)
    await tracker.tick()
    assert "sent" in card_text(tbot, USER, batch.card_message_id)

    tbot.nusa.set_status(ref, "D")
    clock.advance(30)  # second poll after 15 s * 2
    await tracker.tick()
    assert "delivered" in card_text(tbot, USER, batch.card_message_id)
    assert next_poll(tbot, 1) is not None, "a delivered WhatsApp message waits for its read"

    tbot.nusa.set_status(ref, "R")
    clock.advance(60)
    await tracker.tick()
    assert "read" in card_text(tbot, USER, batch.card_message_id)
    row = await message_row(tbot, 1)
    assert row.state == "read"
    assert next_poll(tbot, 1) is None, "read is the end: no more polls"
    assert row.next_poll_at is None
    assert await history_states(tbot, 1) == ["queued", "accepted", "sent", "delivered", "read"]
    edits = edits_since(tbot, mark)
    assert len(edits) == 3
    assert all(int(e.params["message_id"]) == batch.card_message_id for e in edits)
    assert all("ended without delivery" not in t for t in tbot.tg.sent_texts(USER))


async def test_unchanged_polls_back_off_up_to_the_cap(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await start_tracked_bot(
        make_settings(tmp_path, status_poll_max_seconds=100), tg, nusa, clock
    )
    try:
        await send_one(bot)
        tracker = tracker_of(bot)
        stored = await message_row(bot, 1)
        waits = []
        clock.advance(16)
        with statements(bot) as sql:
            for _ in range(5):
                await tracker.tick()
                due = next_poll(bot, 1)
                assert due is not None
                waits.append((due - clock()).total_seconds())
                clock.now = due
        assert [round(w) for w in waits] == [30, 60, 100, 100, 100]
        assert status_polls(nusa) == 5
        assert tracker.poller.schedule.attempts(1) == 5
        assert sql.message_updates() == [], "the backoff lives in memory"
        row = await message_row(bot, 1)
        assert (row.poll_attempts, row.next_poll_at) == (0, stored.next_poll_at)
        assert len(bot.tg.calls_to("editMessageText")) == 0, "nothing moved: no edits"
    finally:
        await stop_bot(bot)


async def test_poll_failure_only_delays_the_next_poll(tbot: Bot, clock: FakeClock) -> None:
    await send_one(tbot)
    tbot.nusa.fail_next(503, {"error": True, "message": "down"}, path_contains="/status/")
    mark = tbot.tg.mark()
    clock.advance(16)
    await tracker_of(tbot).tick()
    row = await message_row(tbot, 1)
    assert row.state == "accepted"
    assert tracker_of(tbot).poller.schedule.attempts(1) == 1
    due = next_poll(tbot, 1)
    assert due is not None
    assert due > clock()
    assert tbot.tg.calls[mark:] == [], "a failed poll says nothing in the chat"


async def test_final_failure_edits_the_card_and_mentions_the_sender(
    tbot: Bot, clock: FakeClock
) -> None:
    ref = await send_one(tbot)
    batch = await batch_of(tbot)
    tbot.nusa.set_status(ref, "F")
    clock.advance(16)
    await tracker_of(tbot).tick()
    card = card_text(tbot, USER, batch.card_message_id)
    assert "failed" in card
    assert "credit is refunded" in card, "the provider's reason is on the card"
    clock.advance(1)
    await tracker_of(tbot).tick()  # the mention waits for the chat's next second
    notices = [t for t in tbot.tg.sent_texts(USER) if "ended without delivery" in t]
    assert len(notices) == 1
    sent = tbot.tg.calls_to("sendMessage")[-1]
    links = [e for e in sent.result.get("entities", []) if e["type"] == "text_link"]
    assert links
    assert links[0]["url"] == f"tg://user?id={USER}"
    assert sent.result["reply_to_message"]["message_id"] == batch.card_message_id
    row = await message_row(tbot, 1)
    assert row.next_poll_at is None, "failed is final"
    assert next_poll(tbot, 1) is None

    clock.advance(3600)
    await tracker_of(tbot).tick()
    assert len([t for t in tbot.tg.sent_texts(USER) if "ended without delivery" in t]) == 1


async def test_stuck_message_expires_and_the_chat_is_told(tbot: Bot, clock: FakeClock) -> None:
    await send_one(tbot)
    batch = await batch_of(tbot)
    clock.advance(47 * 3600)
    await tracker_of(tbot).tick()
    assert (await message_row(tbot, 1)).state == "accepted"
    clock.advance(2 * 3600)
    await tracker_of(tbot).tick()
    clock.advance(1)
    await tracker_of(tbot).tick()
    row = await message_row(tbot, 1)
    assert row.state == "expired"
    assert row.next_poll_at is None
    assert next_poll(tbot, 1) is None
    assert "expired" in card_text(tbot, USER, batch.card_message_id)
    notice = [t for t in tbot.tg.sent_texts(USER) if "ended without delivery" in t]
    assert notice
    assert "no final status within 48 h" in notice[0]
    assert (await history_states(tbot, 1))[-1] == "expired"


async def test_expiry_age_is_configurable(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await start_tracked_bot(make_settings(tmp_path, status_expire_hours=1), tg, nusa, clock)
    try:
        await send_one(bot)
        clock.advance(3601)
        await tracker_of(bot).tick()
        assert (await message_row(bot, 1)).state == "expired"
    finally:
        await stop_bot(bot)


async def test_delivered_whatsapp_stops_waiting_for_read_after_the_watch(
    tbot: Bot, clock: FakeClock
) -> None:
    ref = await send_one(tbot)
    tbot.nusa.set_status(ref, "D")
    clock.advance(16)
    await tracker_of(tbot).tick()
    assert next_poll(tbot, 1) is not None
    clock.advance(7 * 3600)  # past STATUS_READ_WATCH_HOURS (6)
    polls = status_polls(tbot.nusa)
    await tracker_of(tbot).tick()
    assert status_polls(tbot.nusa) == polls, "no read-receipt polls after the watch"
    row = await message_row(tbot, 1)
    assert row.state == "delivered"
    assert row.next_poll_at is None
    assert next_poll(tbot, 1) is None


async def test_restart_resumes_tracking_of_pending_messages(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    settings = make_settings(tmp_path)
    first = await start_tracked_bot(settings, tg, nusa, clock)
    await send_one(first)
    await first.private("/send nusasms:wa 6281234567891 Again")
    refs = [m.ref_no for m in nusa.sent]
    await stop_bot(first)

    nusa.set_status(refs[0], "D")
    nusa.set_status(refs[1], "F")
    clock.advance(3600)  # the bot was down for an hour
    second = await start_tracked_bot(settings, tg, nusa, clock)
    try:
        # Re-armed from the stored hint: each continues its backoff (15 s, 30 s, … capped
        # at 900 s) as if it had been polled all along, so nothing is due at once.
        dues = [next_poll(second, 1), next_poll(second, 2)]
        assert all(d is not None and clock() < d <= clock() + timedelta(seconds=900) for d in dues)
        clock.now = max(d for d in dues if d is not None)
        await tracker_of(second).tick()
        assert (await message_row(second, 1)).state == "delivered"
        assert (await message_row(second, 2)).state == "failed"
        for _ in range(3):  # two cards and a notice in one chat: one message per second
            clock.advance(1)
            await tracker_of(second).tick()
        for batch_id in (1, 2):
            batch = await batch_of(second, batch_id)
            text = card_text(second, USER, batch.card_message_id)
            assert ("delivered" if batch_id == 1 else "failed") in text
        assert any("ended without delivery" in t for t in tg.sent_texts(USER))
    finally:
        await stop_bot(second)


async def test_restart_finishes_card_edits_a_stop_cut_off(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    settings = make_settings(tmp_path)
    first = await start_tracked_bot(settings, tg, nusa, clock)
    ref = await send_one(first)
    batch = await batch_of(first)
    # A receipt lands and the bot stops before the card's edit ran.
    await tracker_of(first).receive(
        "nusasms", [StatusReport(ref, DeliveryState.FAILED, "F", "no WhatsApp account")]
    )
    await stop_bot(first)
    assert "failed" not in card_text(first, USER, batch.card_message_id)

    second = await start_tracked_bot(settings, tg, nusa, clock)
    try:
        await tracker_of(second).tick()
        clock.advance(1)
        await tracker_of(second).tick()
        assert "failed" in card_text(second, USER, batch.card_message_id)
        notices = [t for t in tg.sent_texts(USER) if "ended without delivery" in t]
        assert len(notices) == 1
        assert "no WhatsApp account" in notices[0]
    finally:
        await stop_bot(second)


async def test_interrupted_sends_are_not_polled(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    settings = make_settings(tmp_path)
    first = await start_tracked_bot(settings, tg, nusa, clock)
    await send_one(first)
    async with first.services.repo.db.write() as s:
        row = await s.get(Message, 1)
        assert row is not None
        row.state, row.provider_ref, row.next_poll_at = "queued", None, None
        s.add(row)
    await stop_bot(first)
    second = await start_tracked_bot(settings, tg, nusa, clock)
    try:
        polls = status_polls(nusa)
        clock.advance(60)
        await tracker_of(second).tick()
        assert status_polls(nusa) == polls
        assert (await message_row(second, 1)).state == "unknown"
    finally:
        await stop_bot(second)


async def test_background_loops_poll_without_ticks(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    # Real time, tiny first poll: the loop must find and poll the message on its own.
    bot = await start_bot(make_settings(tmp_path, status_poll_seconds=0.05), tg, nusa)
    try:
        ref = await send_one(bot)
        nusa.set_status(ref, "S")
        for _ in range(200):
            if (await message_row(bot, 1)).state == "sent":
                break
            await _pause()
        assert (await message_row(bot, 1)).state == "sent"
    finally:
        await stop_bot(bot)


async def _pause() -> None:
    await asyncio.sleep(0.02)


def test_backoff_policy_values() -> None:
    policy = PollPolicy(first=15, cap=900)
    assert [policy.delay(n).total_seconds() for n in (0, 1, 2, 6, 7, 100)] == [
        15,
        30,
        60,
        900,
        900,
        900,
    ]
    assert policy.delay(-3) == timedelta(seconds=15)


async def test_the_expiry_note_is_in_each_chats_language(tbot: Bot, clock: FakeClock) -> None:
    await send_one(tbot)
    assert "Bahasa Indonesia" in await tbot.private("/lang id")
    clock.advance(49 * 3600)
    await tracker_of(tbot).tick()
    clock.advance(1)
    await tracker_of(tbot).tick()
    row = await message_row(tbot, 1)
    assert row.state == "expired"
    assert row.detail == "tidak ada status akhir dalam 48 jam"
    notice = [t for t in tbot.tg.sent_texts(USER) if "tidak ada status akhir dalam 48 jam" in t]
    assert notice
