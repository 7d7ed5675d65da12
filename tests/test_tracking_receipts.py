"""Receipts that beat their send's commit, disconnected providers, and the job scheduler."""

from __future__ import annotations

from bot.tracking.limiter import ChatPacer
from bot.tracking.scheduler import CardScheduler, JobKind
from providers.base import DeliveryState, StatusReport
from storage.messages import NewMessage, StateChange
from storage.models import Batch
from tests.conftest import USER, Bot
from tests.tracking_support import FakeClock, message_row, tracker_of


async def queued_message(bot: Bot, origin: str) -> int:
    """A message stored as the send path stores it before the provider answered."""
    await bot.private("/start")
    batch = Batch(chat_id=USER, route="nusasms:wa", text="hi", origin=origin, created_by=USER)
    message = NewMessage(
        provider="nusasms",
        channel="wa",
        recipient="6281234567890",
        text="hi",
        idempotency_key=f"{origin}:0",
    )
    stored = await bot.services.repo.messages.store_send(batch, [message])
    assert stored.messages[0].id is not None
    return stored.messages[0].id


async def test_a_receipt_that_beats_the_send_is_applied_once_the_ref_is_stored(
    tbot: Bot, clock: FakeClock
) -> None:
    message_id = await queued_message(tbot, "t:1")
    tracker = tracker_of(tbot)
    outcome = await tracker.receive(
        "nusasms", [StatusReport("early-ref", DeliveryState.DELIVERED, "D")]
    )
    assert outcome.unknown_refs == ["early-ref"]
    assert outcome.moved == []
    await tbot.services.repo.messages.apply_changes(
        [StateChange(message_id, DeliveryState.ACCEPTED, "send", provider_ref="early-ref")]
    )
    clock.advance(1)
    await tracker.tick()
    assert (await message_row(tbot, message_id)).state == "delivered"


async def test_unmatched_receipts_are_dropped_after_a_while(tbot: Bot, clock: FakeClock) -> None:
    message_id = await queued_message(tbot, "t:2")
    tracker = tracker_of(tbot)
    await tracker.receive("nusasms", [StatusReport("stray", DeliveryState.DELIVERED, "D")])
    clock.advance(11 * 60)
    await tracker.tick()
    await tbot.services.repo.messages.apply_changes(
        [StateChange(message_id, DeliveryState.ACCEPTED, "send", provider_ref="stray")]
    )
    clock.advance(1)
    await tracker.tick()
    assert (await message_row(tbot, message_id)).state == "accepted"


async def test_a_disconnected_provider_backs_off_quietly(tbot: Bot, clock: FakeClock) -> None:
    await tbot.connect()
    await tbot.private("/send nusasms:wa 6281234567890 Hello")
    await tbot.private("/disconnect nusasms")
    mark = tbot.tg.mark()
    requests = len(tbot.nusa.requests)
    clock.advance(16)
    await tracker_of(tbot).tick()
    row = await message_row(tbot, 1)
    assert row.state == "accepted"
    assert tracker_of(tbot).poller.schedule.attempts(1) == 1
    due = tracker_of(tbot).poller.schedule.when(1)
    assert due is not None
    assert due > clock()
    assert len(tbot.nusa.requests) == requests, "no credentials: the provider is not called"
    assert tbot.tg.calls[mark:] == []


def test_scheduler_coalesces_per_card_and_paces_per_chat() -> None:
    scheduler = CardScheduler(ChatPacer(), edit_interval=3.0)
    for _ in range(5):
        scheduler.want(JobKind.EDIT, 1, 100, 0.0)
    scheduler.want(JobKind.NOTICE, 1, 100, 0.0)
    scheduler.want(JobKind.EDIT, 2, 200, 0.0)
    assert scheduler.pending == 3

    first = scheduler.take_due(0.0)
    assert [(j.kind, j.batch_id) for j in first] == [(JobKind.EDIT, 1), (JobKind.EDIT, 2)]
    assert scheduler.take_due(0.5) == [], "chat 100 waits a second for the notice"
    scheduler.want(JobKind.EDIT, 1, 100, 0.6)  # a new change while the edit still runs
    (notice,) = scheduler.take_due(1.0)
    assert notice.kind is JobKind.NOTICE
    assert scheduler.next_wake(1.0) is None, "the same card's edit is still running"
    for job in first:
        scheduler.done(job)
    assert scheduler.next_wake(1.0) == 3.0, "the card's next edit waits for its window"
    assert scheduler.take_due(2.9) == []
    assert [j.batch_id for j in scheduler.take_due(3.0)] == [1]


def test_scheduler_forgets_a_gone_chat_until_it_is_back() -> None:
    scheduler = CardScheduler(ChatPacer())
    scheduler.want(JobKind.EDIT, 1, 100, 0.0)
    scheduler.chat_gone(100)
    assert scheduler.pending == 0
    scheduler.want(JobKind.NOTICE, 1, 100, 1.0)
    assert scheduler.pending == 0
    scheduler.chat_back(100)
    scheduler.want(JobKind.NOTICE, 1, 100, 1.0)
    assert scheduler.pending == 1
