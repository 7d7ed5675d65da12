"""Replicas in storage: who is dead, who adopts, and that only a dead replica's rows move.

Run on SQLite and (``make test-pg``) on PostgreSQL. SQLite is one process, so the tests of
several replicas switch its single-process rule off on the :class:`Replicas` object: the
queries are the same on both databases.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from datetime import timedelta

import pytest
from redis.exceptions import RedisError
from sqlmodel import col, select

from bot.config import Settings
from bot.replicas import ReplicaLoop, adopt_gone
from providers.base import DeliveryState
from providers.ratelimit import SlotPacer
from storage.db import Database
from storage.messages import NewMessage
from storage.models import (
    Batch,
    InboxUpdate,
    Message,
    OutboxEntry,
    OutboxKind,
    Replica,
    Schedule,
    ScheduleState,
    utcnow,
)
from storage.outbox import Want
from storage.pace import DatabasePace, RedisPace
from storage.replicas import Gone, Replicas
from storage.repo import Repository
from storage.schedules import ScheduleRepository
from tests.conftest import USER

DEAD_AFTER = timedelta(seconds=30)
A, B, C = "host-a:1:aaaa", "host-b:2:bbbb", "host-c:3:cccc"


def replicas_of(db: Database, me: str, *, host: str) -> Replicas:
    """A replica of a multi-process deployment, on any database."""
    replicas = Replicas(db, me=me, dead_after=DEAD_AFTER, host=host, pid=os.getpid())
    replicas.single_process = False
    return replicas


async def seen(db: Database, replica_id: str, ago: float) -> None:
    async with db.write() as s:
        row = await s.get(Replica, replica_id)
        assert row is not None
        row.seen_at = utcnow() - timedelta(seconds=ago)


async def test_dead_means_stopped_expired_or_a_gone_process_of_this_host(db: Database) -> None:
    a, b, c = (replicas_of(db, r, host=r.split(":")[0]) for r in (A, B, C))
    for replica in (a, b, c):
        await replica.register()
    assert [r.id for r in await a.live()] == [A, B, C]

    await seen(db, B, 31)  # past REPLICA_DEAD_SECONDS
    await c.stop()  # a clean stop is dead at once
    assert [r.id for r in await a.live()] == [A]
    assert (await a.gone()).ids == {B, C}

    # Same host, a process that no longer runs: dead without waiting for the expiry.
    gone_pid = Replicas(db, me="host-a:999999:dead", dead_after=DEAD_AFTER, host="host-a")
    gone_pid.pid = 999_999_999
    await gone_pid.register()
    assert "host-a:999999:dead" not in [r.id for r in await a.live()]
    listed = [r.id for r in await Replicas(db, me=A, dead_after=DEAD_AFTER).live()]
    assert A in listed
    assert B not in listed
    assert C not in listed


async def test_one_replica_adopts_each_dead_one_and_a_dead_adopter_is_replaced(
    db: Database,
) -> None:
    a, b, c = (replicas_of(db, r, host=r.split(":")[0]) for r in (A, B, C))
    for replica in (a, b, c):
        await replica.register()
    await c.stop()
    won = await asyncio.gather(adopt_gone(a), adopt_gone(b))
    assert sorted(len(g.ids) for g in won) == [0, 1], "exactly one adopter"
    adopter = a if won[0].ids else b
    other = b if adopter is a else a
    assert (await other.gone()).empty  # adopted by a live replica: not gone any more

    await adopter.stop()  # the adopter dies too: C is up for adoption again
    again = await adopt_gone(other)
    assert again.ids == {C, adopter.me}


async def test_sqlite_is_one_process_everyone_else_is_gone(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite's rule")
    replicas = Replicas(db, me=A, dead_after=DEAD_AFTER)
    gone = await replicas.gone()
    assert gone.anyone_else
    assert gone.covers(B)
    assert gone.covers(None)
    assert not gone.covers(A)


def test_gone_covers_only_dead_owners() -> None:
    gone = Gone(A, frozenset({B}))
    assert gone.covers(B)
    assert not gone.covers(A)
    assert not gone.covers(C)
    assert not gone.covers(None)
    assert Gone(A, ownerless=True).covers(None)
    assert Gone(A).empty
    assert not gone.empty


async def queued_send(repo: Repository, origin: str, owner: str) -> list[Message]:
    await repo.ensure_chat(USER, kind="private", title="alice")
    repo.db.replica = owner
    rows = [
        NewMessage(
            provider="nusasms",
            channel="wa",
            recipient=f"62812345678{i}",
            text="hi",
            idempotency_key=f"{origin}:{i}",
        )
        for i in range(2)
    ]
    batch = Batch(chat_id=USER, route="nusasms:wa", text="hi", origin=origin, created_by=USER)
    stored = await repo.messages.store_send(batch, rows, hold=timedelta(seconds=60))
    return stored.messages


async def test_only_a_dead_replicas_queued_messages_become_unknown(repo: Repository) -> None:
    live = await queued_send(repo, "tg:1:1", A)
    dead = await queued_send(repo, "tg:1:2", B)
    assert {m.replica for m in live} == {A}
    assert {m.replica for m in dead} == {B}
    assert await repo.messages.mark_interrupted_sends(Gone(C, frozenset({B}))) == 2
    async with repo.db.read() as s:
        states = dict((await s.exec(select(Message.idempotency_key, Message.state))).all())
    assert states == {
        "tg:1:1:0": DeliveryState.QUEUED.value,
        "tg:1:1:1": DeliveryState.QUEUED.value,
        "tg:1:2:0": DeliveryState.UNKNOWN.value,
        "tg:1:2:1": DeliveryState.UNKNOWN.value,
    }


async def test_a_dead_replicas_owed_cards_are_adopted_holds_ended(repo: Repository) -> None:
    await queued_send(repo, "tg:1:1", A)
    await queued_send(repo, "tg:1:2", B)
    repo.db.replica = C
    outbox = repo.messages.outbox
    taken = await outbox.adopt(Gone(C, frozenset({B})))
    assert [(d.kind, d.replica, d.hold_until) for d in taken] == [(OutboxKind.CARD, C, None)]
    async with repo.db.read() as s:
        owners = list(await s.exec(select(OutboxEntry.replica).order_by(col(OutboxEntry.id))))
    assert owners == [A, C]


async def test_a_change_of_a_told_entry_moves_it_to_the_changer(repo: Repository) -> None:
    [message, *_] = await queued_send(repo, "tg:1:1", A)
    outbox = repo.messages.outbox
    async with repo.db.write() as s:
        await outbox.settle(
            s, OutboxKind.CARD, message.batch_id, shown_event_id=10**6, now=utcnow()
        )
    repo.db.replica = B  # a receipt that reached B
    async with repo.db.write() as s:
        [due] = await outbox.want(
            s, OutboxKind.CARD, [Want(message.batch_id, USER, 10**6 + 1)], now=utcnow()
        )
    assert due.replica == B  # told already: B edits it
    repo.db.replica = C
    async with repo.db.write() as s:
        [due] = await outbox.want(
            s, OutboxKind.CARD, [Want(message.batch_id, USER, 10**6 + 2)], now=utcnow()
        )
    assert due.replica == B  # still pending with B: B delivers, C only tells its own process
    repo.db.replica = B
    found = await outbox.owned_since(utcnow() - timedelta(seconds=5))
    assert [d.batch_id for d in found] == [message.batch_id]


async def test_an_update_stored_twice_is_taken_once_and_only_the_dead_ones_replayed(
    repo: Repository,
) -> None:
    repo.db.replica = A
    assert await repo.inbox.add([(1, "{}"), (2, "{}")]) == [1, 2]
    repo.db.replica = B  # Telegram sent update 2 again, to B
    assert await repo.inbox.add([(2, "{}"), (3, "{}")]) == [3]
    taken = await repo.inbox.adopt(Gone(C, frozenset({A})))
    assert [row.update_id for row in taken] == [1, 2]
    async with repo.db.read() as s:
        owners = dict((await s.exec(select(InboxUpdate.update_id, InboxUpdate.replica))).all())
    assert owners == {1: C, 2: C, 3: B}


async def test_workers_claiming_at_once_take_different_schedules(repo: Repository) -> None:
    await repo.ensure_chat(USER, kind="private", title="alice")
    store = ScheduleRepository(repo.db)
    due = utcnow() - timedelta(seconds=1)
    for n in range(4):
        await store.add(
            Schedule(
                chat_id=USER,
                route="nusasms:wa",
                recipients='["6281234567890"]',
                text=f"s{n}",
                next_run_at=due,
                created_by=USER,
            )
        )
    claims = await asyncio.gather(
        *(store.claim_next(worker=w, now=utcnow()) for w in (A, B, C, A, B))
    )
    taken = [c for c in claims if c is not None]
    assert len(taken) == 4
    assert len({c.id for c in taken}) == 4
    assert {c.state for c in taken} == {ScheduleState.CLAIMED.value}
    assert [c.id for c in await store.claimed(Gone(C, frozenset({A})))] == sorted(
        c.id for c in taken if c.claimed_by == A and c.id is not None
    )


async def test_the_loop_takes_over_a_dead_replica_and_stops_when_adopted_itself(
    db: Database,
) -> None:
    a, b = replicas_of(db, A, host="host-a"), replicas_of(db, B, host="host-b")
    await a.register()
    await b.register()
    taken: list[Gone] = []
    fenced: list[bool] = []

    async def take_over(gone: Gone) -> None:
        taken.append(gone)

    live: list[int] = []
    loop = ReplicaLoop(
        a, every=5, take_over=take_over, fenced=lambda: fenced.append(True), on_live=live.append
    )
    assert await loop.once() is None
    assert taken == []
    assert live == [2]  # B runs too: the provider pace is shared (bot/app.py: share_pace)
    await b.stop()
    assert (await loop.once()) == Gone(A, frozenset({B}))
    assert live[-1] == 1
    assert [g.ids for g in taken] == [{B}]
    assert await loop.once() is None, "adopted once"

    await seen(db, A, 31)  # A stalled; B restarted as D and adopted it
    d = replicas_of(db, "host-d:4:dddd", host="host-d")
    await d.register()
    assert A in (await adopt_gone(d)).ids
    assert await loop.once() is None
    assert fenced == [True]


def test_dead_seconds_must_allow_two_heartbeats() -> None:
    with pytest.raises(ValueError, match="at least twice REPLICA_HEARTBEAT_SECONDS"):
        Settings(
            telegram_bot_token="1:a",  # type: ignore[arg-type]
            replica_heartbeat_seconds=10,
            replica_dead_seconds=15,
        )


class SchedulePace:
    """A shared schedule in memory, as Redis or the database keep it (a fake backend)."""

    def __init__(self) -> None:
        self.active = True
        self.last = 0.0
        self.asked: list[tuple[float, float]] = []

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        loop = asyncio.get_running_loop()
        at = max(loop.time() + earliest, self.last + interval)
        self.last = at
        self.asked.append((interval, earliest))
        return at - loop.time()


async def test_pacers_of_two_replicas_keep_to_one_shared_schedule() -> None:
    shared = SchedulePace()
    one, two = (SlotPacer(0.02, floor=0.02, shared=shared, key="k") for _ in range(2))
    loop = asyncio.get_running_loop()
    left: list[float] = []

    async def send(pacer: SlotPacer) -> None:
        async with pacer.slot() as slot:
            left.append(slot.not_before)
            await asyncio.sleep(0)

    await asyncio.gather(*(send(p) for p in (one, two, one, two, one, two)))
    left.sort()
    gaps = [b - a for a, b in itertools.pairwise(left)]
    assert min(gaps) >= 0.02 * 1.1 - 0.001, gaps  # SHARED_SPACING × floor, across both
    assert all(interval >= 0.022 - 1e-9 for interval, _ in shared.asked)
    assert loop.time() >= left[-1]


async def test_the_database_and_redis_hand_out_one_schedule(db: Database) -> None:
    backends: list[DatabasePace | RedisPace] = []
    if db.dialect == "postgresql":
        backends.append(DatabasePace(db))
    redis = RedisPace.from_url("redis://127.0.0.1:6379/15")
    try:
        await redis.client.ping()
        backends.append(redis)
    except (OSError, RedisError):
        pass  # no Redis on this machine: the database's schedule is tested on PostgreSQL
    if not backends:
        await redis.close()
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL) or Redis on 127.0.0.1:6379")
    for backend in backends:
        key = f"test-{os.getpid()}-{id(backend)}"
        waits = [await backend.reserve(key, 0.05, 0.0) for _ in range(4)]
        # Each reservation is 50 ms after the one before, on the server's clock.
        steps = [b - a for a, b in itertools.pairwise(waits)]
        assert all(0.03 < step < 0.07 for step in steps), (type(backend).__name__, waits)
        later = await backend.reserve(key, 0.05, 1.0)  # no earlier than asked
        assert later >= 0.99
    await redis.close()
