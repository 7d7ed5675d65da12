"""A burst of 500 status changes across 50 chats stays within Telegram's limits.

Every Telegram call is tied to the fake time of the tick that made it; the checks are the
limits the tracker promises: one message per chat per second, one edit per card per three
seconds, at most 25 calls in any second overall, and every card ends on the last state.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

from sqlmodel import select

from bot.tracking.limiter import ChatPacer, PacerLimits
from providers.base import DeliveryState, StatusReport
from storage.models import Batch
from tests.conftest import NUSA_KEY, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.tracking_support import (
    FakeClock,
    Recorder,
    history_states,
    start_tracked_bot,
    tracker_of,
)

CHATS = 50
PER_CHAT = 5


async def test_500_changes_across_50_chats_stay_within_limits(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    clock = FakeClock()
    bot = await start_tracked_bot(make_settings(tmp_path), tg, nusa, clock)
    try:
        users = [5000 + n for n in range(CHATS)]
        for n, user in enumerate(users):
            await bot.private(f"/connect nusasms api_key={NUSA_KEY}", user_id=user)
            numbers = ",".join(f"62812{n:03d}{i:05d}" for i in range(PER_CHAT))
            reply = await bot.private(f"/send nusasms:wa {numbers} Hi", user_id=user)
            assert "accepted 5" in reply, reply
        refs = [m.ref_no for m in nusa.sent]
        assert len(refs) == CHATS * PER_CHAT
        clock.advance(5)

        # 500 receipts (sent, then delivered, for 250 messages) in ten waves of 50 over 5 s,
        # some of them late duplicates, while the tracker ticks every 250 ms.
        changes = [(ref, DeliveryState.SENT) for ref in refs]
        changes += [(ref, DeliveryState.DELIVERED) for ref in refs]
        recorder = Recorder(bot, clock)
        tracker = tracker_of(bot)
        moved = 0
        for wave in range(10):
            chunk = changes[wave * 50 : (wave + 1) * 50]
            outcome = await tracker.receive(
                "nusasms", [StatusReport(r, s, s.value) for r, s in chunk]
            )
            moved += len(outcome.moved)
            await recorder.run(0.5)
        await tracker.receive("nusasms", [StatusReport(refs[0], DeliveryState.SENT, "S")])
        await recorder.run(12)
        assert moved == 500

        calls = recorder.calls
        assert calls
        assert all(c.call.method == "editMessageText" for c in calls)
        assert all(c.call.ok for c in calls)
        by_chat: dict[int, list[float]] = defaultdict(list)
        by_card: dict[tuple[int, int], list[float]] = defaultdict(list)
        for c in calls:
            by_chat[c.chat_id].append(c.at)
            by_card[(c.chat_id, int(c.call.params["message_id"]))].append(c.at)
        for chat_id, times in by_chat.items():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(g >= 1.0 for g in gaps), f"chat {chat_id} got two calls within 1 s"
        for card, times in by_card.items():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(g >= 3.0 for g in gaps), f"card {card} edited twice within 3 s"
        stamps = sorted(c.at for c in calls)
        busiest = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
        assert busiest <= 25, f"{busiest} calls in one second"
        assert len(calls) < 500 / 2, "coalescing: far fewer edits than changes"

        async with bot.services.repo.db.read() as s:
            batches = list(await s.exec(select(Batch)))
        assert len(batches) == CHATS
        for row in batches:
            text = str(tg.messages[(row.chat_id, row.card_message_id)]["text"])
            assert "✅ delivered 5" in text, text
        assert await history_states(bot, 1) == ["queued", "accepted", "sent", "delivered"]
    finally:
        await stop_bot(bot)


def test_pacer_limits_groups_per_minute_and_the_whole_bot_per_second() -> None:
    pacer = ChatPacer(PacerLimits(chat_interval=1.0, per_second=25, group_per_minute=20))
    group = -100777
    sent = []
    now = 0.0
    while now < 120:
        if pacer.ready(group, now):
            pacer.take(group, now)
            sent.append(now)
        now += 0.5
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= 20
    assert len(sent) == 40

    busy = ChatPacer()
    taken = 0
    for chat in range(1, 100):
        if busy.ready(chat, 10.0):
            busy.take(chat, 10.0)
            taken += 1
    assert taken == 25
    assert busy.free_at(99, 10.0) == 11.0
    assert busy.ready(99, 11.0)

    blocked = ChatPacer()
    blocked.block(7, 15.0)
    assert not blocked.ready(7, 14.9)
    assert blocked.ready(7, 15.0)
