"""Start-up: ``python -m bot`` from spawn to "ready", empty and with 1,000,000 messages.

The bot runs against the fake Bot API (``tests.fakes.bot_api_server.BotApiServer``) and the fake
provider of :mod:`bench.servers`, both on 127.0.0.1, with its database a SQLite file in a
temporary folder or a fresh PostgreSQL database (``--database``; both by default, each in a
fresh process), and its working directory in that folder (so no developer ``.env`` is read).
"Ready" is the log line ``chatops-bridge ready as @…`` that ``bot.app.start_resources`` writes
once the database is open and migrated, interrupted sends are marked, the tracker has resumed
(poll hints, the outbox's pending entries), the scheduler started and the command menus are
published.

The large database is migrated by the project's own code, then filled with SQLAlchemy Core
``insert`` (not timed): ``--count`` messages (1,000,000) in sends of 100 over the last 30 days,
two history rows each, every send with an up-to-date status card, all final except
``--open`` (1,000) still open (sent 30 minutes ago, next poll in an hour).

Baselines in the same run: a bare interpreter (``python -c pass``), importing the bot
(``python -c "import bot.app"``) and, the one the budget is set against, start-up with an
empty database (created and migrated by the bot). Budget: the median start-up with the large
database within 0.3 s of the median with the empty one. The start-up queries are then timed
alone on the large database, so a miss shows which query costs what.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from bench.common import (
    BenchDatabase,
    FakeServer,
    Report,
    add_database_option,
    expect,
    header,
    on_each_database,
)
from bot.tracking.policy import PollPolicy
from providers.base import DeliveryState
from storage.crypto import CredentialCipher
from storage.db import Database, migrate
from storage.db import create_engine as create_async_engine
from storage.messages import Messages
from storage.models import Batch, Chat, Credential, Message, StatusEvent, utcnow
from storage.tracking_repo import TrackingRepository
from tests.fakes.bot_api_server import BotApiServer

REPO = Path(__file__).resolve().parent.parent
READY = b"chatops-bridge ready as @"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
CHAT = 777
PER_SEND = 100
DAYS = 30
CHUNK = 20_000  # rows per insert while seeding
BUDGET_SECONDS = 0.3
FINAL = (DeliveryState.DELIVERED, DeliveryState.READ, DeliveryState.FAILED)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _defaults(model: type[SQLModel]) -> dict[str, Any]:
    """Every field's default (factories called once), so rows need only what differs."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if name != "id" and not field.is_required()
    }


def _chunks(count: int, size: int) -> Iterator[range]:
    for first in range(0, count, size):
        yield range(first, min(first + size, count))


async def seed(db_url: str, count: int, secret_key: str, open_count: int) -> None:
    """Migrate with the project's code, then insert ``count`` messages in bulk.

    SQLAlchemy Core ``insert`` with a list of rows (the driver's executemany, or SQLAlchemy's
    "insertmanyvalues" batches on PostgreSQL), in chunks so memory stays bounded. Rows get
    explicit ids; on PostgreSQL the id sequences are moved past them (``setval``) and the
    planner statistics gathered (``ANALYZE``, as autovacuum would after a bulk load).
    """
    engine = create_async_engine(db_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await _seed_rows(conn, count, secret_key, open_count)
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                for table, last in (
                    ("batch", (count + PER_SEND - 1) // PER_SEND),
                    ("message", count),
                    ("statusevent", 2 * count),
                ):
                    sequence = func.pg_get_serial_sequence(table, "id")
                    await conn.execute(select(func.setval(sequence, max(last, 1))))
            async with engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _seed_rows(conn: AsyncConnection, count: int, secret_key: str, open_count: int) -> None:
    """Insert the chat, its credential, the sends, their messages and two history rows each.

    ``count`` messages in sends of ``PER_SEND`` over the last ``DAYS`` days (newest last), in
    final states except ``open_count`` of them spread evenly (sent 30 minutes ago, next poll
    in an hour). Every send has a status card that shows everything (``card_event_id`` is its
    newest history row): nothing is owed at start, but the bot has to find that out.
    """
    now = utcnow()
    cipher = CredentialCipher([secret_key])
    await conn.execute(insert(_table(Chat)), [{**_defaults(Chat), "id": CHAT, "kind": "private"}])
    await conn.execute(
        insert(_table(Credential)),
        [
            {
                **_defaults(Credential),
                "chat_id": CHAT,
                "provider": "nusasms",
                "secret": cipher.encrypt({"api_key": "bench-api-key"}),
                "account": "bench",
                "created_by": 1,
            }
        ],
    )
    sends = (count + PER_SEND - 1) // PER_SEND
    open_every = max(count // open_count, 1) if open_count else 0

    def created(b: int) -> datetime:
        return now - timedelta(days=DAYS) * (1 - (b + 1) / sends)

    batch_defaults = _defaults(Batch)
    for chunk in _chunks(sends, CHUNK):
        await conn.execute(
            insert(_table(Batch)),
            [
                {
                    **batch_defaults,
                    "id": b + 1,
                    "chat_id": CHAT,
                    "route": "nusasms:wa",
                    "text": f"Campaign {b}",
                    "origin": f"seed:{b}",
                    "created_by": 1,
                    "created_at": created(b),
                    "card_message_id": 1_000 + b,
                    # the newest history row of the send: its last message's second row
                    "card_event_id": 2 * min((b + 1) * PER_SEND, count),
                    "notice_event_id": 2 * min((b + 1) * PER_SEND, count),
                }
                for b in chunk
            ],
        )
    message_defaults = _defaults(Message)
    for chunk in _chunks(count, CHUNK):
        rows, events = [], []
        for i in chunk:
            b = i // PER_SEND
            is_open = bool(open_every) and i % open_every == 0
            state = DeliveryState.SENT if is_open else FINAL[i % len(FINAL)]
            at = now - timedelta(minutes=30) if is_open else created(b)
            rows.append(
                {
                    **message_defaults,
                    "id": i + 1,
                    "batch_id": b + 1,
                    "chat_id": CHAT,
                    "provider": "nusasms",
                    "channel": "wa",
                    "recipient": f"62812{i:08d}",
                    "text": f"Campaign {b}",
                    "idempotency_key": f"seed:{b}:{i}",
                    "state": state.value,
                    "provider_ref": f"SEED{i:010d}",
                    "created_at": at,
                    "updated_at": at,
                    "next_poll_at": now + timedelta(hours=1) if is_open else None,
                }
            )
            for step, (kind, source) in enumerate(
                ((DeliveryState.QUEUED, "send"), (state, "poll"))
            ):
                events.append(
                    {
                        "id": 2 * i + step + 1,
                        "message_id": i + 1,
                        "state": kind.value,
                        "source": source,
                        "at": at,
                        "provider_status": "",
                        "detail": "",
                    }
                )
        await conn.execute(insert(_table(Message)), rows)
        await conn.execute(insert(_table(StatusEvent)), events)


async def spawn_time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds a short command takes from spawn to exit (the baselines)."""
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd)
    code = await asyncio.wait_for(proc.wait(), READY_TIMEOUT)
    expect(code == 0, f"{argv} exited {code}")
    return time.perf_counter() - start


async def time_to_ready(env: dict[str, str], cwd: Path) -> float:
    """Spawn ``python -m bot``, wait for the ready line, stop it; seconds to ready."""
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[bytes] = []
    try:
        while True:
            line = await asyncio.wait_for(proc.stderr.readline(), READY_TIMEOUT)
            if not line:
                raise RuntimeError("the bot exited before ready:\n" + b"".join(log).decode())
            log.append(line)
            if READY in line:
                return time.perf_counter() - start
    finally:
        if proc.returncode is None:
            proc.terminate()  # PTB stops polling and closes resources on SIGTERM
            try:
                await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def bot_env(
    tmp: Path, api: BotApiServer, provider: FakeServer, secret: str, url: str
) -> dict[str, str]:
    """The child's environment: every outside URL on 127.0.0.1, the database at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NUSASMS_"))}
    env.update(api.env())
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": url,
            "SECRET_KEY": secret,
            "NUSASMS_BASE_URL": provider.base_url,
            "NUSASMS_SMS_BASE_URL": f"{provider.origin}/api",
            "PARROTICA_BASE_URL": provider.origin,
            "COURIER_BASE_URL": provider.origin,
            "COURIER_IDENTITY_URL": provider.origin,
            "LOG_LEVEL": "INFO",
        }
    )
    for name in ("WEBHOOK_URL", "WEBHOOK_LISTEN", "WEBHOOK_PORT"):
        env.pop(name, None)
    return env


async def query_times(url: str) -> dict[str, float]:
    """Each start-up query on the stored messages, timed alone (best of three), seconds."""
    engine = create_async_engine(url)
    store = TrackingRepository(Messages(Database(engine)))
    policy = PollPolicy()
    now = utcnow()
    queries: dict[str, Callable[[], Awaitable[object]]] = {
        "mark_interrupted_sends (finds queued messages)": store.messages.mark_interrupted_sends,
        "poll_hints (open and read-watched messages)": lambda: store.poll_hints(policy.watch(now)),
        "outbox pending (what the chats are still owed)": store.outbox.pending,
    }
    times: dict[str, float] = {}
    try:
        for label, query in queries.items():
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                await query()
                best = min(best, time.perf_counter() - start)
            times[label] = best
    finally:
        await engine.dispose()
    return times


async def run(count: int, repeats: int, open_count: int, database: str) -> int:
    """Time the baselines, then ready with an empty database and with ``count`` messages."""
    report = header("startup", f"python -m bot to ready, empty and {count:,} messages, {database}")
    secret = Fernet.generate_key().decode()
    async with BotApiServer() as api, FakeServer() as provider:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as raw:
            work = Path(raw)
            db = BenchDatabase(database, work)
            await db.create()
            try:
                report.figure("database", db.describe())
                env = bot_env(work, api, provider, secret, db.url)
                bare = [
                    await spawn_time([sys.executable, "-c", "pass"], env, work) for _ in range(3)
                ]
                report.figure("baseline: python -c pass", f"{min(bare):.3f} s")
                imports = [
                    await spawn_time([sys.executable, "-c", "import bot.app"], env, work)
                    for _ in range(3)
                ]
                report.figure("baseline: python -c 'import bot.app'", f"{min(imports):.3f} s")
                empty = []
                for _ in range(repeats):
                    await db.create()
                    empty.append(await time_to_ready(env, work))
                    expect(db.exists(), "the bot created no database")
                show(report, "baseline: empty database (created and migrated)", empty)
                await db.create()
                start = time.perf_counter()
                await seed(db.url, count, secret, open_count)
                seconds = time.perf_counter() - start
                report.figure(f"seeding {count:,} messages (not timed below)", f"{seconds:.1f} s")
                full = [await time_to_ready(env, work) for _ in range(repeats)]
                show(report, f"{count:,} stored messages", full)
                for label, took in (await query_times(db.url)).items():
                    report.figure(f"  alone: {label}", f"{took * 1000:.1f} ms")
            finally:
                await db.drop()
    extra = statistics.median(full) - statistics.median(empty)
    report.figure("difference of the medians", f"{extra:+.3f} s")
    report.budget(
        extra <= BUDGET_SECONDS,
        f"{count:,} messages within {BUDGET_SECONDS} s of an empty database (got {extra:+.3f} s)",
    )
    return report.exit_code()


def show(report: Report, label: str, times: list[float]) -> None:
    """Print the median and every run."""
    shown = "  ".join(f"{t:.3f}" for t in times)
    report.figure(label, f"median {statistics.median(times):.3f} s   ({shown})")


def main(argv: list[str]) -> int:
    """``python -m bench startup [--count N] [--open K] [--repeats R] [--database D]``."""
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=1_000, help="messages still open")
    parser.add_argument("--repeats", type=int, default=3)
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.database is None:
        return on_each_database("startup", argv, timeout=1_200)
    return asyncio.run(run(args.count, args.repeats, args.open, args.database))
