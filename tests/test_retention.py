"""RETENTION_DAYS: texts and numbers of long-finished messages go, their counts stay.

Times are explicit (a fixed ``NOW`` and rows written with their own timestamps), so nothing
depends on the wall clock; on SQLite and on PostgreSQL (``TEST_DATABASE_URL``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from bot.app import RETENTION_EVERY, apply_retention
from providers.base import DeliveryState as S
from storage.db import Database, create_engine, migrate
from storage.messages import REMOVED
from storage.models import Batch, Message, StatusEvent, utcnow
from storage.repo import Repository
from tests.conftest import make_settings, start_bot, stop_bot
from tests.databases import database_url
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def add_send(
    db: Database,
    *,
    origin: str,
    at: datetime,
    states: list[tuple[S, datetime]],
    route: tuple[str, str] = ("nusasms", "wa"),
) -> int:
    """A send created at ``at`` with one message per (state, last change); its batch id."""
    async with db.write() as s:
        batch = Batch(
            chat_id=1,
            route=":".join(route),
            text="secret plans",
            origin=origin,
            created_by=1,
            created_at=at,
        )
        s.add(batch)
        await s.flush()
        assert batch.id is not None
        for index, (state, changed) in enumerate(states):
            message = Message(
                batch_id=batch.id,
                chat_id=1,
                provider=route[0],
                channel=route[1],
                recipient=f"62812345{index:04d}",
                text="secret plans",
                media_name="plan.pdf",
                idempotency_key=f"{origin}:{index}",
                state=state.value,
                provider_ref=f"ref-{origin}-{index}",
                created_at=at,
                updated_at=changed,
            )
            s.add(message)
            await s.flush()
            s.add(StatusEvent(message_id=message.id or 0, state=state.value, at=changed))
        return batch.id


async def rows(db: Database) -> dict[str, Message]:
    async with db.read() as s:
        return {m.idempotency_key: m for m in await s.exec(select(Message))}


async def counts(db: Database) -> list[tuple[object, ...]]:
    """What /stats counts: messages per day, state and route."""
    day = func.date(Message.created_at)
    async with db.read() as s:
        result = await s.exec(
            select(day, Message.state, Message.provider, Message.channel, func.count())
            .group_by(day, Message.state, Message.provider, Message.channel)
            .order_by(day, Message.state, Message.provider, Message.channel)
        )
        return [tuple(row) for row in result]


async def test_finished_messages_lose_texts_and_numbers_and_keep_their_counts(
    repo: Repository,
) -> None:
    db = repo.db
    await repo.ensure_chat(1, kind="private", title="alice")
    old = NOW - 40 * DAY
    finished = await add_send(
        db,
        origin="old-finished",
        at=old,
        states=[(S.DELIVERED, old + DAY), (S.FAILED, old), (S.READ, old + 2 * DAY)],
    )
    mixed = await add_send(
        db,
        origin="old-mixed",
        at=old,
        states=[(S.DELIVERED, old), (S.ACCEPTED, old), (S.UNKNOWN, old)],
        route=("parrotica", "sms"),
    )
    await add_send(db, origin="late-final", at=old, states=[(S.DELIVERED, NOW - 5 * DAY)])
    await add_send(db, origin="recent", at=NOW - 2 * DAY, states=[(S.EXPIRED, NOW - DAY)])
    before = await counts(db)
    stored_before = await rows(db)

    changed = await repo.messages.forget_contents(NOW - 30 * DAY)

    assert changed == 4
    after = await rows(db)
    gone = {"old-finished:0", "old-finished:1", "old-finished:2", "old-mixed:0"}
    for key, message in after.items():
        was = stored_before[key]
        if key in gone:
            removed = (message.recipient, message.text, message.media_name)
            assert removed == (REMOVED, REMOVED, None), key
        else:  # open, unknown or finished recently: untouched
            assert (message.recipient, message.text) == (was.recipient, was.text), key
        # What statistics and tracking read is kept as it was.
        assert (message.state, message.provider, message.channel, message.provider_ref) == (
            was.state,
            was.provider,
            was.channel,
            was.provider_ref,
        )
        assert (message.created_at, message.updated_at) == (was.created_at, was.updated_at)
    assert await counts(db) == before
    async with db.read() as s:
        texts = {b.id: b.text for b in await s.exec(select(Batch))}
        events = (await s.exec(select(func.count()).select_from(StatusEvent))).one()
    assert texts[finished] == REMOVED  # its last message's contents went
    assert texts[mixed] == "secret plans"  # some of its messages are still open
    assert events == 8  # history rows stay
    assert await repo.messages.forget_contents(NOW - 30 * DAY) == 0  # nothing twice


async def test_a_later_run_removes_what_has_aged_since(repo: Repository) -> None:
    await repo.ensure_chat(1, kind="private", title="alice")
    await add_send(repo.db, origin="s", at=NOW - 20 * DAY, states=[(S.DELIVERED, NOW - 20 * DAY)])
    assert await repo.messages.forget_contents(NOW - 30 * DAY) == 0
    assert await repo.messages.forget_contents(NOW + 11 * DAY - 30 * DAY) == 1
    [message] = (await rows(repo.db)).values()
    assert message.recipient == REMOVED


async def test_the_bot_applies_retention_at_start_and_schedules_it_daily(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    url = database_url(tmp_path)
    engine = create_engine(url)
    await migrate(engine)
    db = Database(engine)
    await Repository(db).ensure_chat(1, kind="private", title="alice")
    now = utcnow()
    await add_send(db, origin="old", at=now - 40 * DAY, states=[(S.DELIVERED, now - 39 * DAY)])
    await add_send(db, origin="young", at=now - 3 * DAY, states=[(S.FAILED, now - 3 * DAY)])

    bot = await start_bot(make_settings(tmp_path, retention_days=30), tg, nusa)
    try:
        stored = await rows(db)
        assert stored["old:0"].recipient == REMOVED  # at start
        assert stored["young:0"].recipient == "628123450000"
        assert bot.app.job_queue is not None
        [job] = bot.app.job_queue.get_jobs_by_name("retention")
        assert job.trigger.interval == RETENTION_EVERY  # type: ignore[attr-defined]
        # The daily run, with a clock 28 days on: the young message has aged past 30 days.
        assert await apply_retention(bot.services, 30, now=now + 28 * DAY) == 1
        assert (await rows(db))["young:0"].recipient == REMOVED
        await job.run(bot.app)  # the job itself runs (today: nothing more is old enough)
    finally:
        await stop_bot(bot)
        await engine.dispose()


async def test_without_retention_days_everything_is_kept(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    url = database_url(tmp_path)
    engine = create_engine(url)
    await migrate(engine)
    db = Database(engine)
    await Repository(db).ensure_chat(1, kind="private", title="alice")
    long_ago = utcnow() - 4000 * DAY
    await add_send(db, origin="ancient", at=long_ago, states=[(S.READ, long_ago)])

    bot = await start_bot(make_settings(tmp_path), tg, nusa)
    try:
        assert (await rows(db))["ancient:0"].recipient == "628123450000"
        assert bot.app.job_queue is not None
        assert bot.app.job_queue.get_jobs_by_name("retention") == ()
        assert await apply_retention(bot.services, None) == 0
    finally:
        await stop_bot(bot)
        await engine.dispose()
