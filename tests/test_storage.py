"""The repository: idempotent batches, forward-only states, restart recovery, tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.messages as messages_module
from providers.base import DeliveryState as S
from storage.db import MIGRATIONS_DIR
from storage.messages import NewMessage, StateChange
from storage.models import Batch, ConnectToken, Message, utcnow
from storage.repo import Repository


async def _batch(repo: Repository, origin: str = "tg:1:10", n: int = 2) -> list[Message]:
    await repo.ensure_chat(1, kind="private", title="alice")
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
    stored = await repo.messages.store_send(
        Batch(chat_id=1, route="nusasms:wa", text="hi", origin=origin, created_by=1), rows
    )
    batch, new = stored.batch, stored.new
    assert new
    assert batch.id is not None
    return await repo.messages.of_batch(batch.id)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def test_pragmas_and_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        applied = set(
            (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        )
    heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
    assert applied == heads  # every feature branch is at its head


async def test_batch_is_written_queued_and_replay_is_detected(repo: Repository) -> None:
    messages = await _batch(repo)
    assert [m.state for m in messages] == ["queued", "queued"]
    for m in messages:
        assert len(await repo.messages.history(m.id or 0)) == 1
    stored = await repo.messages.store_send(
        Batch(chat_id=1, route="nusasms:wa", text="hi", origin="tg:1:10", created_by=1),
        [
            NewMessage(
                provider="nusasms",
                channel="wa",
                recipient="x",
                text="hi",
                idempotency_key="tg:1:10:0",
            )
        ],
    )
    again, new = stored.batch, stored.new
    assert not new
    assert again.id == messages[0].batch_id
    assert len(await repo.messages.of_batch(again.id or 0)) == 2


async def test_states_move_forward_once_each(repo: Repository) -> None:
    (m, _) = await _batch(repo)
    mid = m.id or 0
    applied = await repo.messages.apply_changes(
        [
            StateChange(mid, S.ACCEPTED, "send", provider_ref="r1"),
            StateChange(mid, S.DELIVERED, "poll", provider_status="D"),
            StateChange(mid, S.SENT, "webhook", provider_status="S"),  # late
            StateChange(mid, S.DELIVERED, "webhook", provider_status="D"),  # duplicate
        ]
    )
    assert [x.state for x in applied.moved] == ["delivered"]
    states = [e.state for e in await repo.messages.history(mid)]
    assert states == ["queued", "accepted", "delivered"]
    stored = await repo.messages.get_message(1, mid)
    assert stored is not None
    assert stored.provider_ref == "r1"
    assert stored.next_poll_at is None  # final: no more polling


async def test_a_store_keeps_the_recipients_order_and_a_change_is_written_as_returned(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messages_module, "READ_SLICE", 2)  # three reads of the same change
    messages = await _batch(repo, n=5)
    assert [m.recipient for m in messages] == [f"62812345678{i}" for i in range(5)]
    ids = [m.id or 0 for m in messages]
    applied = await repo.messages.apply_changes(
        [StateChange(i, S.ACCEPTED, "send", provider_ref=f"r{i}") for i in reversed(ids)]
        + [StateChange(ids[0], S.QUEUED, "poll", poll_attempts=3)]  # no move, a hint kept
    )
    assert [m.id for m in applied.current] == ids
    assert [m.id for m in applied.moved] == ids
    assert [(m.state, m.provider_ref) for m in applied.current] == [
        ("accepted", f"r{i}") for i in ids
    ]
    stored = await repo.messages.by_ids(ids)
    assert [(m.state, m.provider_ref) for m in stored] == [("accepted", f"r{i}") for i in ids]
    assert [m.poll_attempts for m in stored] == [3, 0, 0, 0, 0]
    assert applied.current[0].poll_attempts == 3
    history = [e.id for i in ids for e in await repo.messages.history(i)]
    assert applied.last_event_id == max(history)
    assert len(history) == 10  # queued and accepted, each once


async def test_other_chats_cannot_read_a_message(repo: Repository) -> None:
    (m, _) = await _batch(repo)
    assert await repo.messages.get_message(2, m.id or 0) is None


async def test_interrupted_sends_become_unknown(repo: Repository) -> None:
    (m, m2) = await _batch(repo)
    await repo.messages.apply_changes(
        [StateChange(m2.id or 0, S.ACCEPTED, "send", provider_ref="r")]
    )
    assert await repo.messages.mark_interrupted_sends() == 1
    stored = await repo.messages.get_message(1, m.id or 0)
    assert stored is not None
    assert stored.state == "unknown"
    assert "stopped while sending" in stored.detail


async def test_connect_token_is_single_use_and_expires(repo: Repository) -> None:
    await repo.ensure_chat(-100, kind="supergroup", title="Team")
    await repo.add_connect_token(
        ConnectToken(
            token="t1",
            chat_id=-100,
            provider="nusasms",
            created_by=1,
            expires_at=utcnow() + timedelta(minutes=5),
        )
    )
    await repo.add_connect_token(
        ConnectToken(
            token="t2",
            chat_id=-100,
            provider="nusasms",
            created_by=1,
            expires_at=utcnow() - timedelta(seconds=1),
        )
    )
    taken = await repo.take_connect_token("t1")
    assert taken is not None
    assert taken.chat_id == -100
    assert await repo.take_connect_token("t1") is None
    assert await repo.take_connect_token("t2") is None
    assert await repo.take_connect_token("nope") is None


async def test_racing_receipts_never_move_a_state_backwards(repo: Repository) -> None:
    import asyncio

    for _ in range(20):
        (m, _) = await _batch(repo, origin=f"tg:1:{_rand()}")
        mid = m.id or 0
        await repo.messages.apply_changes([StateChange(mid, S.ACCEPTED, "send", provider_ref="r")])
        await asyncio.gather(
            repo.messages.apply_changes([StateChange(mid, S.DELIVERED, "webhook")]),
            repo.messages.apply_changes([StateChange(mid, S.SENT, "poll")]),
            repo.messages.apply_changes([StateChange(mid, S.DELIVERED, "webhook")]),
        )
        states = [e.state for e in await repo.messages.history(mid)]
        assert states in (
            ["queued", "accepted", "delivered"],
            ["queued", "accepted", "sent", "delivered"],
        ), states


_counter = iter(range(1000, 10_000))


def _rand() -> int:
    return next(_counter)


async def test_expiry_counts_from_when_a_handed_over_message_goes_out(repo: Repository) -> None:
    from storage.tracking_repo import TrackingRepository

    await repo.ensure_chat(1, kind="private", title="alice")
    now = utcnow()
    later = now + timedelta(days=3)
    rows = [
        NewMessage(
            provider="parrotica",
            channel="sms",
            recipient=f"62812345678{i}",
            text="hi",
            idempotency_key=f"tg:1:77:{i}",
            send_at=send_at,
        )
        for i, send_at in enumerate([None, later])
    ]
    stored = await repo.messages.store_send(
        Batch(chat_id=1, route="parrotica:sms", text="hi", origin="tg:1:77", created_by=1), rows
    )
    now_sent, handed_over = (m.id for m in stored.messages)
    store = TrackingRepository(repo.messages)
    assert await store.stale_open(now + timedelta(hours=1), limit=10) == [(now_sent, 1)]
    assert await store.stale_open(later + timedelta(hours=1), limit=10) == [
        (now_sent, 1),
        (handed_over, 1),
    ]


async def test_sent_since_finds_the_chats_recent_recipients_and_texts(repo: Repository) -> None:
    await _batch(repo, origin="tg:1:20", n=2)
    since = utcnow() - timedelta(hours=1)
    assert await repo.messages.sent_since(1, since) == {
        ("628123456780", "hi"),
        ("628123456781", "hi"),
    }
    assert await repo.messages.sent_since(1, utcnow() + timedelta(seconds=1)) == set()
    assert await repo.messages.sent_since(2, since) == set()
