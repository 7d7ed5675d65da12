"""Channels without per-message delivery reports (NusaSMS group campaigns) are not tracked."""

from __future__ import annotations

from datetime import timedelta

from providers.base import DeliveryState as S
from providers.registry import untracked_channels
from storage.messages import NewMessage, StateChange
from storage.models import Batch, utcnow
from storage.repo import Repository
from storage.tracking_repo import ReadWatch, TrackingRepository

NO_READ_WATCH = ReadWatch(channels=frozenset(), since=None)


async def test_campaigns_are_never_polled_or_expired(repo: Repository) -> None:
    assert ("nusasms", "smsgroup") in untracked_channels()
    await repo.ensure_chat(1, kind="private", title="a")
    rows = [
        NewMessage(
            provider="nusasms",
            channel=ch,
            recipient=to,
            text="hi",
            idempotency_key=f"o:{i}",
        )
        for i, (ch, to) in enumerate([("smsgroup", "Customers"), ("sms", "6281234567890")])
    ]
    stored = await repo.messages.store_send(
        Batch(chat_id=1, route="nusasms:sms", text="hi", origin="o", created_by=1), rows
    )
    batch, _ = stored.batch, stored.new
    campaign, single = await repo.messages.of_batch(batch.id or 0)
    await repo.messages.apply_changes(
        [
            StateChange(m.id or 0, S.ACCEPTED, "send", provider_ref=f"r{m.id}")
            for m in (campaign, single)
        ]
    )
    store = TrackingRepository(repo.messages, untracked=untracked_channels())
    now = utcnow()
    hints = await store.poll_hints(NO_READ_WATCH)
    assert [h.message_id for h in hints] == [single.id]  # only the single SMS is polled
    assert not store.tracks("nusasms", "smsgroup")
    assert store.tracks("nusasms", "sms")
    stale = await store.stale_open(now + timedelta(days=3), limit=10)
    assert [message_id for message_id, _chat in stale] == [single.id]
