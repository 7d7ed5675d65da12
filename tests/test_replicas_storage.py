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
from bot.services.sending import SendRequest
from bot.tracking.limiter import ChatPacer
from bot.tracking.scheduler import CardScheduler
from bot.tracking.updater import CardUpdater
from providers.base import DeliveryState
from providers.ratelimit import SHARED_SPACING, Slot, SlotPacer
from providers.registry import parse_route, untracked_channels
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
from storage.tracking_repo import TrackingRepository
from tests.conftest import USER, Bot
from tests.tracking_support import FakeClock, tracker_of

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


async def test_a_replica_adopted_while_it_stalled_leaves_the_card_to_its_adopter(
    tbot: Bot, clock: FakeClock
) -> None:
    """A stalls past its expiry right before posting its send's card; B adopts and posts it.

    A's card is still held for it (the send path posts it without reading the database), so
    only the claim of the outbox entry, made right before posting, tells A it lost the card.
    """
    await tbot.connect()
    services = tbot.services
    services.repo.db.replica = A  # the bot is replica A; its send's card entry is A's
    tracker_of(tbot).share(A)
    outcome = await services.sender.send(
        SendRequest(
            chat_id=USER,
            actor_id=USER,
            actor_name="@alice",
            route=parse_route("nusasms:wa"),
            recipients=["6281234567890"],
            text="Hi",
            origin="tg:1:800",
        )
    )
    assert outcome.card_hold_until is not None
    assert outcome.card_hold_until.timestamp() > clock().timestamp() + 10  # the fast path

    # A is seen dead: B adopts its owed card and posts it.
    b = CardUpdater(
        tbot.app.bot,
        TrackingRepository(services.repo.messages, untracked=untracked_channels()),
        CardScheduler(ChatPacer()),
    )
    b.me = B
    owed = await services.repo.messages.outbox.adopt(Gone(B, frozenset({A})))
    assert [d.batch_id for d in owed] == [outcome.batch.id]
    b.due(owed, clock().timestamp())
    assert await b.flush(clock().timestamp()) == 1

    # A wakes up and goes on with its send: the card is B's now.
    assert await tracker_of(tbot).post_card(outcome) is None
    cards = [t for t in tbot.tg.sent_texts(USER) if f"Send {outcome.batch.id} via" in t]
    assert len(cards) == 1
    async with services.repo.db.read() as s:
        entry = (await s.exec(select(OutboxEntry))).one()
    assert (entry.state, entry.replica) == ("delivered", B)


async def test_only_the_owner_claims_a_pending_card(repo: Repository) -> None:
    [message, *_] = await queued_send(repo, "tg:1:1", A)
    outbox = repo.messages.outbox
    assert not await outbox.claim(message.batch_id, OutboxKind.CARD, B)
    assert await outbox.claim(message.batch_id, OutboxKind.CARD, A)
    await outbox.adopt(Gone(B, frozenset({A})))
    assert not await outbox.claim(message.batch_id, OutboxKind.CARD, A), "adopted: B's now"
    assert await outbox.claim(message.batch_id, OutboxKind.CARD, B)
    async with repo.db.write() as s:
        await outbox.settle(
            s, OutboxKind.CARD, message.batch_id, shown_event_id=10**6, now=utcnow()
        )
    assert not await outbox.claim(message.batch_id, OutboxKind.CARD, B), "posted already"


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
    """A shared schedule in memory, as Redis or the database keep it (a fake backend).

    ``delay``: how long the request takes to reach the backend, which then reads its clock
    (as the real ones do, last): the answer comes back at once.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.active = True
        self.last = 0.0
        self.delay = delay
        self.asked: list[tuple[float, float]] = []
        self.slots: list[float] = []  # handed out, on the loop's clock

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        if self.delay:
            await asyncio.sleep(self.delay)
        at = max(asked + earliest, self.last + interval)
        self.last = at
        self.asked.append((interval, earliest))
        self.slots.append(at)
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
    spacing = 0.02 * SHARED_SPACING
    assert min(gaps) >= spacing - 1e-6, gaps  # SHARED_SPACING × floor, across both
    assert all(interval >= spacing - 1e-9 for interval, _ in shared.asked)
    assert loop.time() >= left[-1]


async def test_a_reserved_moment_is_counted_from_the_answer_never_early() -> None:
    """The backend reads its clock at the end of a slow round trip: the slot is not earlier.

    Counted from the middle of the round trip, the request would go half of it (here 15 ms)
    before its moment, and reach the provider too close to another replica's.
    """
    shared = SchedulePace(delay=0.03)
    pacer = SlotPacer(0.02, floor=0.02, shared=shared, key="k")
    for _ in range(3):
        async with pacer.slot() as slot:
            assert slot.not_before >= shared.slots[-1] - 1e-6
            assert slot.left >= shared.slots[-1] - 1e-6
    # So slow a backend widens the schedule by its round trip: the margin must hold it.
    assert pacer.spacing >= 0.02 + 0.03
    assert shared.asked[-1][0] >= 0.05 - 1e-9


class BrokenPace:
    """A shared schedule that cannot be reached (Redis down, a connection closed)."""

    active = True

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        raise ConnectionError("connection refused")


async def test_a_shared_pace_that_fails_paces_the_request_locally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pacer = SlotPacer(0.02, floor=0.02, shared=BrokenPace(), key="k")
    left = []
    for _ in range(3):
        async with pacer.slot() as slot:  # never raises: the send goes on
            left.append(slot.left)
    assert min(b - a for a, b in itertools.pairwise(left)) >= 0.02 - 1e-6
    assert "the shared provider pace failed (connection refused): pacing locally" in caplog.text


async def test_a_request_too_late_for_its_slot_takes_a_new_one() -> None:
    """A request that reaches its write past its slot's margin gives the slot up.

    Written late, it would come too close to the next replica's request, already on its
    way; within the margin it keeps its slot.
    """
    shared = SchedulePace()
    pacer = SlotPacer(0.05, floor=0.04, shared=shared, key="k")  # a 10 ms margin
    loop = asyncio.get_running_loop()
    spacing = pacer.spacing
    assert spacing == pytest.approx(0.05)
    on_time = Slot(pacer, not_before=loop.time(), left=loop.time(), deadline=loop.time() + 1)
    await pacer.keep_slot(on_time)
    assert shared.asked == []
    assert pacer.reslotted == 0

    other = shared.last = loop.time()  # another replica's slot, the latest on the schedule
    late = Slot(pacer, not_before=loop.time() - 0.01, left=loop.time(), deadline=loop.time())
    await asyncio.sleep(0.002)  # a starved process: past the slot's margin
    await pacer.keep_slot(late)
    assert pacer.reslotted == 1
    assert late.not_before >= shared.slots[-1] - 1e-6, "the new slot, never before it"
    assert shared.slots == [pytest.approx(other + spacing)], "after the other replica's"
    assert late.deadline == pytest.approx(late.not_before + spacing - 0.04)
    assert late.left >= late.not_before


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
        await backend.close()
    await redis.close()
