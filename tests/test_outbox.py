"""The outbox: what a chat must be told is written with its cause and delivered exactly once.

Storage first (same transaction, coalescing, settling), then the bot: redelivery after a
restart, one card per batch whoever posts it, retries until Telegram accepts, schedules told
after a stop between a run's end and its post.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.services.sending import SendOutcome, SendRequest
from bot.tracking.updater import LATE_NOTE, POST_RETRY
from providers.base import DeliveryState as S
from providers.base import StatusReport
from providers.registry import parse_route
from storage.messages import NewMessage, StateChange
from storage.models import (
    Batch,
    Message,
    OutboxEntry,
    OutboxKind,
    OutboxState,
    ScheduleState,
    StatusEvent,
    utcnow,
)
from storage.outbox import Due, Want
from storage.repo import Repository
from tests.conftest import USER, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import SECRET_KEY, T0, at, manual_bot, runner_of, schedule
from tests.tracking_support import FakeClock, batch_of, card_text, start_tracked_bot, tracker_of

NUMBER = "6281234567890"


async def entries(repo: Repository) -> list[OutboxEntry]:
    async with repo.db.read() as s:
        return list(await s.exec(select(OutboxEntry).order_by(col(OutboxEntry.id))))


async def stored_send(repo: Repository, origin: str = "tg:1:10", n: int = 2) -> list[Message]:
    """A send stored as ``/send`` stores it (held for its sender), without provider calls."""
    await repo.ensure_chat(USER, kind="private", title="alice")
    rows = [
        NewMessage(
            provider="nusasms",
            channel="wa",
            recipient=f"62812345678{i}",
            text="hi",
            idempotency_key=f"{origin}:{i}",
        )
        for i in range(n)
    ]
    batch = Batch(chat_id=USER, route="nusasms:wa", text="hi", origin=origin, created_by=USER)
    stored = await repo.messages.store_send(batch, rows, hold=timedelta(seconds=60), note="")
    return stored.messages


# -- storage -----------------------------------------------------------------------------------


async def test_a_stored_send_owes_its_card_in_the_same_transaction(repo: Repository) -> None:
    told: list[Due] = []
    repo.messages.outbox.listener = told.extend
    await stored_send(repo)
    (entry,) = await entries(repo)
    assert (entry.kind, entry.state, entry.batch_id, entry.chat_id) == ("card", "pending", 1, 1)
    assert entry.hold_until is not None
    assert entry.hold_until > utcnow()
    async with repo.db.read() as s:
        newest = max(e.id or 0 for e in await s.exec(select(StatusEvent)))
    assert entry.event_id == newest
    assert [(d.kind, d.batch_id) for d in told] == [(OutboxKind.CARD, 1)]


async def test_a_rolled_back_change_leaves_no_notice(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = await stored_send(repo)
    outbox = repo.messages.outbox
    async with repo.db.write() as s:  # the card was posted: nothing owed any more
        await outbox.settle(s, OutboxKind.CARD, 1, shown_event_id=10**6, now=utcnow())
    before = await entries(repo)
    told: list[Due] = []
    outbox.listener = told.extend
    original = outbox.want

    async def fail_on_failures(s, kind, wants, **kwargs):  # type: ignore[no-untyped-def]
        if kind is OutboxKind.FAILURES:
            raise RuntimeError("the database went away mid-transaction")
        return await original(s, kind, wants, **kwargs)

    monkeypatch.setattr(outbox, "want", fail_on_failures)
    assert messages[0].id is not None
    with pytest.raises(RuntimeError):
        await repo.messages.apply_changes(
            [StateChange(messages[0].id, S.FAILED, "webhook", detail="rejected")]
        )
    # Neither the change nor what the chat would be told about it: one transaction.
    assert [(e.state, e.event_id) for e in await entries(repo)] == [
        (e.state, e.event_id) for e in before
    ]
    assert (await repo.messages.by_ids([messages[0].id]))[0].state == "queued"
    assert told == [], "nobody hears of an entry that was never committed"

    async def text_then_error() -> None:
        async with repo.db.write() as s:
            await outbox.add_text(s, USER, "a text", now=utcnow())
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await text_then_error()
    assert len(await entries(repo)) == 1


async def test_changes_of_one_batch_coalesce_into_one_entry(repo: Repository) -> None:
    messages = await stored_send(repo, n=3)
    ids = [m.id for m in messages if m.id is not None]
    for message_id, state in zip(ids, (S.ACCEPTED, S.SENT, S.DELIVERED), strict=True):
        await repo.messages.apply_changes([StateChange(message_id, state, "send")])
    failed = await repo.messages.apply_changes(
        [StateChange(ids[0], S.UNDELIVERED, "webhook", detail="gone")]
    )
    rows = await entries(repo)
    assert [(e.kind, e.state) for e in rows] == [("card", "pending"), ("failures", "pending")]
    card, failures = rows
    assert card.event_id == failed.last_event_id, "the card must show the newest change"
    assert failures.event_id == failed.last_event_id
    # A failure of the send itself is shown by the card; it owes no mention.
    other = await stored_send(repo, origin="tg:1:11", n=1)
    assert other[0].id is not None
    await repo.messages.apply_changes([StateChange(other[0].id, S.FAILED, "send")])
    assert [e.kind for e in await entries(repo)] == ["card", "failures", "card"]


async def test_an_entry_is_delivered_by_a_post_showing_what_it_asks_for(
    repo: Repository,
) -> None:
    from storage.tracking_repo import TrackingRepository

    messages = await stored_send(repo)
    store = TrackingRepository(repo.messages)
    (entry,) = await entries(repo)
    assert not await store.set_card(1, 777, entry.event_id - 1), "older than what is owed"
    (entry,) = await entries(repo)
    assert (entry.state, entry.message_id, entry.hold_until) == ("pending", 777, None)
    assert await store.card_synced(1, entry.event_id)
    (entry,) = await entries(repo)
    assert entry.state == OutboxState.DELIVERED.value
    assert entry.delivered_at is not None
    assert messages[0].id is not None
    await repo.messages.apply_changes([StateChange(messages[0].id, S.ACCEPTED, "send")])
    (entry,) = await entries(repo)
    assert entry.state == "pending", "the same row, owed again"


async def test_a_new_process_ends_every_hold(repo: Repository) -> None:
    await stored_send(repo)
    assert await repo.messages.outbox.release_holds() == 1
    assert [e.hold_until for e in await entries(repo)] == [None]
    assert await repo.messages.outbox.pending() != []
    async with repo.db.write() as s:
        await repo.messages.outbox.want(s, OutboxKind.CARD, [Want(1, USER, 0)], now=utcnow())
    assert len(await entries(repo)) == 1


# -- the bot -----------------------------------------------------------------------------------


def cards_of(tg: FakeTelegram, batch_id: int) -> list[str]:
    """Texts of every card of ``batch_id`` Telegram accepted as a new message."""
    return [t for t in tg.sent_texts(USER) if f"Send {batch_id} via" in t]


async def send_without_card(bot: Bot, origin: str, recipients: list[str]) -> SendOutcome:
    """A send that went through the provider, whose caller stopped before posting its card."""
    return await bot.services.sender.send(
        SendRequest(
            chat_id=USER,
            actor_id=USER,
            actor_name="@alice",
            route=parse_route("nusasms:wa"),
            recipients=recipients,
            text="Hi",
            origin=origin,
        )
    )


async def restart(bot: Bot, tmp_path: Path, clock: FakeClock) -> Bot:
    await stop_bot(bot)
    settings = make_settings(tmp_path, secret_key=SECRET_KEY)
    return await start_tracked_bot(settings, bot.tg, bot.nusa, clock)


async def first_bot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock) -> Bot:
    bot = await start_tracked_bot(make_settings(tmp_path, secret_key=SECRET_KEY), tg, nusa, clock)
    await bot.connect()
    return bot


async def test_a_card_cut_off_by_a_stop_is_posted_once_after_the_restart(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    await send_without_card(bot, "tg:1:500", [NUMBER, "6281234567891"])
    assert cards_of(tg, 1) == []
    bot = await restart(bot, tmp_path, clock)
    try:
        await tracker_of(bot).tick()
        (card,) = cards_of(tg, 1)
        assert LATE_NOTE in card
        assert "accepted 2" in card
        batch = await batch_of(bot)
        assert batch.card_message_id is not None
        assert [(e.state, e.message_id) for e in await entries(bot.services.repo)] == [
            ("delivered", batch.card_message_id)
        ]
        bot = await restart(bot, tmp_path, clock)
        await tracker_of(bot).tick()
        assert len(cards_of(tg, 1)) == 1, "delivered: never posted again"
    finally:
        await stop_bot(bot)


async def test_a_send_killed_before_its_provider_call_is_reported_unknown(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    await stored_send(bot.services.repo, origin="tg:1:600", n=2)  # then the process died
    bot = await restart(bot, tmp_path, clock)
    try:
        await tracker_of(bot).tick()
        (card,) = cards_of(tg, 1)
        assert "❓ unknown 2" in card
        assert "the bot stopped while sending; check before resending" in card
        assert not nusa.sent
    finally:
        await stop_bot(bot)


async def test_a_card_owed_to_a_batch_that_has_one_becomes_an_edit(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    assert "accepted" in await bot.private(f"/send nusasms:wa {NUMBER} Hello")
    ref = nusa.sent[-1].ref_no
    # A receipt lands; the bot stops before the card's edit ran.
    await tracker_of(bot).receive("nusasms", [StatusReport(ref, S.DELIVERED, "D")])
    bot = await restart(bot, tmp_path, clock)
    try:
        mark = tg.mark()
        clock.advance(5)
        await tracker_of(bot).tick()
        assert [c.method for c in tg.calls[mark:]] == ["editMessageText"]
        assert "delivered" in card_text(bot, USER, (await batch_of(bot)).card_message_id)
        assert len(cards_of(tg, 1)) == 1
        assert [e.state for e in await entries(bot.services.repo)] == ["delivered"]
    finally:
        await stop_bot(bot)


async def test_the_sender_and_the_loop_racing_post_one_card(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    try:
        outcome = await send_without_card(bot, "tg:1:700", [NUMBER])
        await bot.services.repo.messages.outbox.release(1)  # as if its hold had run out
        tracker = tracker_of(bot)
        tracker.updater.due(
            [Due.of(e) for e in await entries(bot.services.repo)], clock().timestamp()
        )
        posted, _ = await asyncio.gather(tracker.post_card(outcome), tracker.tick())
        assert len(cards_of(tg, 1)) == 1
        assert posted == (await batch_of(bot)).card_message_id
    finally:
        await stop_bot(bot)


async def test_a_card_telegram_could_not_take_is_posted_by_the_loop(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    try:
        tg.fail_next("sendMessage", 502, "Bad Gateway")
        await bot.private(f"/send nusasms:wa {NUMBER} Hello")
        assert cards_of(tg, 1) == []
        (entry,) = await entries(bot.services.repo)
        assert (entry.state, entry.hold_until) == ("pending", None), "handed to the loop"
        clock.advance(POST_RETRY)
        await tracker_of(bot).tick()
        (card,) = cards_of(tg, 1)
        assert "accepted" in card
        clock.advance(60)
        await tracker_of(bot).tick()
        assert len(cards_of(tg, 1)) == 1
    finally:
        await stop_bot(bot)


async def test_a_card_telegram_refuses_for_good_is_dropped(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    await send_without_card(bot, "tg:1:800", [NUMBER])
    bot = await restart(bot, tmp_path, clock)
    try:
        tg.fail_next("sendMessage", 400, "Bad Request: can't parse entities")
        await tracker_of(bot).tick()
        assert [e.state for e in await entries(bot.services.repo)] == ["dropped"]
    finally:
        await stop_bot(bot)


async def test_a_blocked_chat_is_owed_nothing_more(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await first_bot(tmp_path, tg, nusa, clock)
    await send_without_card(bot, "tg:1:900", [NUMBER])
    await send_without_card(bot, "tg:1:901", [NUMBER])
    tg.blocked_chats.add(USER)
    bot = await restart(bot, tmp_path, clock)
    try:
        await tracker_of(bot).tick()
        assert [e.state for e in await entries(bot.services.repo)] == ["dropped", "dropped"]
        assert sum(c.status == 403 for c in tg.calls) == 1
    finally:
        await stop_bot(bot)


async def test_a_fired_schedule_cut_off_before_its_card_gets_it_after_the_restart(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    await bot.private(f"/schedule in 10m {NUMBER} Once")
    runner = runner_of(bot)

    async def killed(*_args: object) -> None:  # the process dies right after the run's end
        return None

    runner._notifier.deliver = killed  # type: ignore[method-assign]
    assert await runner.run_due(T0 + timedelta(minutes=10)) == 1
    assert (await schedule(bot, 1)).state == ScheduleState.DONE
    mark = tg.mark()
    await stop_bot(bot)
    assert bot.replies_since(mark, USER) == []

    bot = await manual_bot(tmp_path, tg, nusa)  # its tracker's loops run
    try:
        await tg.wait_for("sendMessage", lambda c: "Send 1 via" in str(c.result["text"]))
        (card,) = cards_of(tg, 1)
        assert "⏰ Scheduled send #1 fired." in card, "the line written with the run's end"
        assert len(nusa.sent) == 1
    finally:
        await stop_bot(bot)


async def test_a_missed_run_told_before_a_stop_is_posted_after_the_restart(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    await bot.private(f"/schedule in 10m {NUMBER} Late")
    runner = runner_of(bot)

    async def killed(*_args: object) -> None:
        return None

    runner._notifier.deliver = killed  # type: ignore[method-assign]
    await runner.run_due(T0 + timedelta(hours=2))
    assert (await schedule(bot, 1)).state == ScheduleState.MISSED
    await stop_bot(bot)

    bot = await manual_bot(tmp_path, tg, nusa)
    try:
        told = await tg.wait_for("sendMessage", lambda c: "#1 was due" in str(c.params["text"]))
        assert "so it was not sent" in told.result["text"]
        (entry,) = await entries(bot.services.repo)
        assert (entry.kind, entry.state, entry.message_id) == (
            "text",
            "delivered",
            told.result["message_id"],
        )
        assert not nusa.sent
    finally:
        await stop_bot(bot)


async def test_recording_an_accepted_post_goes_before_the_writers_waiting() -> None:
    from storage.db import Turns

    turns, order = Turns(), []
    await turns.acquire()

    async def writer(name: str, *, urgent: bool = False) -> None:
        await turns.acquire(urgent=urgent)
        order.append(name)
        turns.release()

    waiting = [asyncio.create_task(writer(f"w{n}")) for n in range(3)]
    cancelled = asyncio.create_task(writer("gone", urgent=True))
    await asyncio.sleep(0)
    cancelled.cancel()
    waiting.append(asyncio.create_task(writer("card", urgent=True)))
    await asyncio.sleep(0)
    turns.release()
    await asyncio.gather(*waiting)
    assert order == ["card", "w0", "w1", "w2"]
    await turns.acquire()  # free again
    turns.release()
