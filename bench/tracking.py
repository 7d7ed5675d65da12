"""Tracking at scale: 10,000 live messages followed to a final state by the delivery tracker.

The bot is built as the tracking tests build it (``start_resources(app, clock=…,
background=False)``): the real Application with the offline Telegram layer, the real provider
client (aiohttp transport) talking to the fake of :mod:`bench.servers` on 127.0.0.1, whose
``whatsapp/status`` moves a message one step (Q → S → D → R) on every poll, and no pacing
(``NUSASMS_MIN_INTERVAL=0``). 100 sends of 100 recipients each are sent and their cards posted;
then the clock jumps from one due poll to the next and ``Tracker.tick`` runs until every message
is final (``read``), bounded in ticks and wall time. The database is a SQLite file or a fresh
PostgreSQL database (``--database``; both by default, each in a fresh process, so the RSS of
one run is not the other's).

Measured while tracking (after the sends): peak RSS (the kernel's high-water mark, reset just
before), provider status calls per message, and every row the database writes, from
SQLAlchemy's cursor hooks, set against the state changes (new ``StatusEvent`` rows). Every
message-row write counts (an UPDATE that sets ``state`` and any other, e.g. poll bookkeeping);
the budget is one per state change. Every SQL statement, reads included, is counted too.
Budgets: peak RSS while tracking ≤ 150 MB (150,000,000 bytes, 143.1 MiB) and one message-row
write per state change. A driver that reports no row count for an executemany (asyncpg:
``dialect.supports_sane_multi_rowcount`` is False) is counted one row per parameter set, the
most it can have written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import resource
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bench.common import (
    BenchDatabase,
    FakeServer,
    add_database_option,
    expect,
    header,
    on_each_database,
)
from bench.stack import TEXT, recipients
from bot.app import build_application, close_resources, start_resources
from bot.cards import post_card
from bot.services.sending import SendRequest
from bot.tracking.tracker import Tracker
from providers.registry import parse_route
from storage.models import Message, StatusEvent
from tests.conftest import USER, make_settings
from tests.fakes.telegram import FakeTelegram, OfflineRequest, feed, private_message

MAX_TICKS = 5_000
BUDGET_BYTES = 150_000_000
TRACK_SECONDS = 300.0
WRITE = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)
SET_CLAUSE = re.compile(r"\bSET\b(.*?)(\bWHERE\b|$)", re.IGNORECASE | re.DOTALL)
# The production loop wakes at the next due poll, at least MIN_SLEEP later and polls everything
# due by then; jumping at least this far per tick keeps the tick count bounded.
TICK = timedelta(seconds=1)


class Clock:
    """The tracker's clock, moved by the benchmark (so nothing sleeps)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        """The benchmark's now."""
        return self.now


def rss_kib(field: str = "VmRSS") -> int:
    """Resident memory of this process (``VmRSS``) or its high-water mark (``VmHWM``), KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux ``clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


class Writes:
    """Rows written per table (statement kind) from SQLAlchemy's cursor hook, and commits.

    On the bot's one engine (``engine.sync_engine``, where SQLAlchemy's events are).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.rows: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.all_statements = 0
        self.commits = 0
        self._engines = [engine.sync_engine]

    def _after(
        self,
        _conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        self.all_statements += 1
        match = WRITE.match(statement)
        if match is None:
            return
        kind, table = match.group(1).split()[0].upper(), match.group(2).lower()
        if kind == "UPDATE" and table == "message":
            clause = SET_CLAUSE.search(statement)
            sets_state = clause is not None and re.search(r"\bstate\s*=", clause.group(1))
            table += " (state)" if sets_state else " (poll bookkeeping)"
        key = f"{kind} {table}"
        self.statements[key] += 1
        multi = executemany and kind != "INSERT"  # an INSERT's batches report their rows
        if multi and not context.dialect.supports_sane_multi_rowcount:
            self.rows[key] += len(parameters)  # at most one row per parameter set (by id)
        else:
            self.rows[key] += max(int(cursor.rowcount), 0)

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def __enter__(self) -> Writes:
        for engine in self._engines:
            event.listen(engine, "after_cursor_execute", self._after)
            event.listen(engine, "commit", self._commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        for engine in self._engines:
            event.remove(engine, "after_cursor_execute", self._after)
            event.remove(engine, "commit", self._commit)


async def count_rows(engine: AsyncEngine) -> tuple[int, int]:
    """Status events so far, and messages still open (not final)."""
    from storage.tracking_repo import OPEN_STATES

    async with engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(StatusEvent))).scalar()
        open_ = (
            await conn.execute(
                select(func.count())
                .select_from(Message)
                .where(col(Message.state).in_(OPEN_STATES) | (Message.state == "delivered"))
            )
        ).scalar()
    return int(events or 0), int(open_ or 0)


async def track(tracker: Tracker, clock: Clock) -> tuple[int, float]:
    """Jump to each due poll (then each due card edit) and tick until nothing is left.

    Returns the ticks and the wall seconds.
    """
    start = time.perf_counter()
    ticks = 0
    while ticks < MAX_TICKS and time.perf_counter() - start < TRACK_SECONDS:
        due = tracker.poller.schedule.next_due()  # the tracker's own (in-memory) schedule
        if due is None:
            # Polls are over; card edits are paced per chat and may still be waiting.
            wake = tracker.updater.scheduler.next_wake(clock.now.timestamp())
            if wake is None:
                break
            due = datetime.fromtimestamp(wake, UTC)
        clock.now = max(clock.now + TICK, due)
        await tracker.tick(clock.now)
        ticks += 1
    return ticks, time.perf_counter() - start


async def run(count: int, per_send: int, database: str) -> int:
    """Send, post cards, track to the end; print memory, calls and writes."""
    report = header("tracking", f"{count:,} live messages tracked to a final state, {database}")
    report.figure("RSS after imports (baseline)", f"{rss_kib() / 1024:.1f} MiB")
    clock = Clock()
    tg = FakeTelegram()
    async with FakeServer() as server:
        with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
            db = BenchDatabase(database, Path(tmp))
            await db.create()
            report.figure("database", db.describe())
            settings = make_settings(
                Path(tmp),
                database_url=db.url,
                nusasms_base_url=server.base_url,
                nusasms_min_interval=0.0,
            )
            app = build_application(settings, request=OfflineRequest(tg), rate_limit=False)
            await app.initialize()
            await start_resources(app, clock=clock, background=False)
            try:
                resources, services = app.bot_data.resources, app.bot_data.services
                assert resources is not None
                assert services is not None
                assert resources.tracker is not None
                assert resources.engine is not None
                engine, tracker = resources.engine, resources.tracker
                await feed(app, private_message("/connect nusasms api_key=bench-api-key"))
                for b in range(count // per_send):
                    outcome = await services.sender.send(
                        SendRequest(
                            chat_id=USER,
                            actor_id=USER,
                            actor_name="bench",
                            route=parse_route("nusasms:wa"),
                            recipients=recipients(per_send, b * per_send),
                            text=TEXT,
                            origin=f"bench:track:{b}",
                        )
                    )
                    await post_card(services, outcome)
                events_before, open_before = await count_rows(engine)
                expect(open_before == count, f"{open_before} open messages after the sends")
                await server.reset()
                rss_before = rss_kib()
                report.figure(
                    "RSS after the sends, before tracking", f"{rss_before / 1024:.1f} MiB"
                )
                edits_before = len(tg.calls_to("editMessageText"))
                peak_reset = reset_peak_rss()
                started = clock.now
                with Writes(engine) as writes:
                    ticks, seconds = await track(tracker, clock)
                peak = rss_kib("VmHWM") if peak_reset else 0
                events_after, open_after = await count_rows(engine)
                stats = await server.stats()
                edits = len(tg.calls_to("editMessageText")) - edits_before
            finally:
                await close_resources(app)
                await app.shutdown()
                await db.drop()
    changes = events_after - events_before
    simulated = (clock.now - started).total_seconds()
    report.figure(
        "ticks / simulated time / wall time", f"{ticks} / {simulated:.0f} s / {seconds:.1f} s"
    )
    report.figure("messages still open at the end", str(open_after))
    report.figure("state changes (new StatusEvent rows)", f"{changes:,}")
    report.figure("provider status calls", f"{stats['status_calls']:,}")
    report.figure("  per message", f"{stats['status_calls'] / count:.2f}")
    for key, rows in sorted(writes.rows.items()):
        # sqlite3 reports no row count for INSERT … RETURNING (the history rows): see above.
        written = f"{rows:,}" if rows or not key.startswith("INSERT") else "(not reported)"
        report.figure(
            f"rows written: {key}", f"{written} in {writes.statements[key]:,} statements"
        )
    state_rows = writes.rows["UPDATE message (state)"]
    bookkeeping = writes.rows["UPDATE message (poll bookkeeping)"]
    per_change = (state_rows + bookkeeping) / max(changes, 1)
    report.figure("commits while tracking", f"{writes.commits:,}")
    report.figure("SQL statements while tracking (reads too)", f"{writes.all_statements:,}")
    report.figure("message-row writes per state change", f"{per_change:.2f}")
    report.figure("  of which the state itself", f"{state_rows / max(changes, 1):.2f}")
    report.figure(f"card edits, {count // per_send} cards in one chat", f"{edits:,}")
    report.figure("peak RSS while tracking (VmHWM)", f"{peak / 1024:.1f} MiB")
    report.figure("peak RSS of the whole run (ru_maxrss)", f"{maxrss_mib():.1f} MiB")
    expect(open_after == 0, f"{open_after} messages did not reach a final state")
    report.figure("every message reached a final state", "yes")
    report.budget(
        0 < peak * 1024 <= BUDGET_BYTES,
        f"≤ 150 MB RSS while tracking {count:,} live messages (got {peak * 1024 / 1e6:.1f} MB "
        f"= {peak / 1024:.1f} MiB, "
        f"{rss_before / 1024:.1f} MiB before tracking)",
    )
    report.budget(
        per_change <= 1.0, f"one message-row write per state change (got {per_change:.2f})"
    )
    return report.exit_code()


def maxrss_mib() -> float:
    """The process's peak RSS since it started (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    """``python -m bench tracking [--count N] [--per-send K]``."""
    parser = argparse.ArgumentParser(prog="python -m bench tracking", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--per-send", type=int, default=100)
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.database is None:
        return on_each_database("tracking", argv, timeout=600)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args.count, args.per_send, args.database))
    return 130
