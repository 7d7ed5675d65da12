"""Command overhead: ``/send`` processed by the real Application, per update.

The bot is built as the tests build it (``tests.conftest.start_bot``): the real
Application with the offline Telegram layer (``OfflineRequest`` + ``FakeTelegram``) and the
fake NusaSMS behind ``httpx.MockTransport``, so every cost is the bot's own: parsing, role
check, storage (a SQLite file), the provider adapter, the status card. Telegram's own pacing
(``AIORateLimiter``) is off, as in the tests: it throttles Telegram, not the bot's work. The
delivery tracker runs its background loops as in production (a posted card wakes it);
``--no-tracker-loop`` leaves them off to show what they cost.
SQL statements and aiosqlite thread round trips per update are counted during the sequential
run (on both engines: the pool and the units of work, storage/units.py).

Three runs, each update a one-recipient ``/send`` from a connected private chat:

* sequential: one update at a time;
* steady: updates arriving at a fixed rate (``--rate``, at most half the sequential
  throughput so the queue stays bounded), several in flight, through PTB's concurrent update
  processor (the app is built with ``concurrent_updates(True)``);
* burst: a fixed number always in flight, for updates/s. Here an update's latency is mostly
  waiting for the others (Little's law: in flight ÷ throughput), so it is shown, not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update

from bench.common import Deadline, Report, expect, header, percentile, profiled
from bot.app import build_application, freeze_long_lived_objects, start_resources
from storage.units import Units, sync_engines
from tests.conftest import NUSA_KEY, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, OfflineRequest, feed, private_message

RUN_SECONDS = 120.0


class DatabaseCalls:
    """Counts SQL statements (SQLAlchemy hook) and aiosqlite thread round trips while active.

    Every aiosqlite call is one hop to the connection's thread and back; on a busy 2-core
    machine each costs 0.1–0.4 ms of latency, which is where a /send's time goes.
    """

    def __init__(self, engine: AsyncEngine, units: Units | None = None) -> None:
        self.statements = 0
        self.round_trips = 0
        self._engines = sync_engines(engine, units)
        self._original: Any = aiosqlite.core.Connection._execute

    def _on_statement(self, *_args: object) -> None:
        self.statements += 1

    def __enter__(self) -> DatabaseCalls:
        original, counter = self._original, self

        async def counted(conn: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
            counter.round_trips += 1
            return await original(conn, fn, *args, **kwargs)

        setattr(aiosqlite.core.Connection, "_execute", counted)  # noqa: B010 - a test probe
        for engine in self._engines:
            event.listen(engine, "before_cursor_execute", self._on_statement)
        return self

    def __exit__(self, *_exc: object) -> None:
        setattr(aiosqlite.core.Connection, "_execute", self._original)  # noqa: B010
        for engine in self._engines:
            event.remove(engine, "before_cursor_execute", self._on_statement)


def updates(bot: Bot, count: int, start: int, *, command: str = "/send") -> list[Update]:
    """``count`` ready updates (built before timing, as Telegram would deliver).

    ``/send`` by default; ``/help`` for the baseline (a reply with no storage or provider).
    """
    result = []
    for i in range(start, start + count):
        text = f"/send nusasms:wa 62812{i:08d} Order {i} is ready for pickup"
        raw = private_message(text if command == "/send" else command)
        bot.tg.register_update(raw)
        result.append(Update.de_json(copy.deepcopy(raw), bot.app.bot))
    return result


def processor(bot: Bot) -> Callable[[Update], Awaitable[None]]:
    """Process one update the way a running Application does (PTB's update processor)."""
    app = bot.app

    async def process(update: Update) -> None:
        await app.update_processor.process_update(update, app.process_update(update))

    return process


async def sequential(bot: Bot, batch: list[Update]) -> tuple[list[float], float]:
    """One at a time; latencies (s) and updates/s."""
    process = processor(bot)
    deadline = Deadline(RUN_SECONDS)
    latencies = []
    start = time.perf_counter()
    for update in batch:
        begin = time.perf_counter()
        await process(update)
        latencies.append(time.perf_counter() - begin)
        deadline.check("sequential updates")
    return latencies, len(batch) / (time.perf_counter() - start)


async def steady(
    bot: Bot, batch: list[Update], rate: float, lateness: list[float] | None = None
) -> tuple[list[float], float]:
    """Arrivals every ``1/rate`` s whatever is still running; latency from hand-over to done.

    An update is handed over when its task starts, which asyncio's timers make up to a few
    ms later than its planned arrival; that lateness is the harness's, not the bot's, and is
    collected into ``lateness`` to be printed apart.
    """
    process = processor(bot)
    latencies: list[float] = []

    async def one(update: Update, due: float) -> None:
        begin = time.perf_counter()
        if lateness is not None:
            lateness.append(begin - due)
        await process(update)
        latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    tasks = []
    for index, update in enumerate(batch):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(update, due)))
    await asyncio.wait_for(asyncio.gather(*tasks), RUN_SECONDS)
    return latencies, len(batch) / (time.perf_counter() - start)


async def burst(bot: Bot, batch: list[Update], in_flight: int) -> tuple[list[float], float]:
    """``in_flight`` updates always being processed; latencies and updates/s."""
    process = processor(bot)
    queue = iter(batch)
    latencies: list[float] = []

    async def worker() -> None:
        for update in queue:
            begin = time.perf_counter()
            await process(update)
            latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(in_flight))), RUN_SECONDS)
    return latencies, len(batch) / (time.perf_counter() - start)


def show(report: Report, name: str, latencies: list[float], rate: float) -> tuple[float, float]:
    """Print p50/p99/max and the rate; return p50 and p99 in ms."""
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    worst = max(latencies) * 1000
    report.figure(
        f"{name}", f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {worst:.1f} ms  {rate:,.0f} updates/s"
    )
    return p50, p99


async def start(tmp: Path, nusa: FakeNusaSms, *, tracker_loop: bool) -> Bot:
    """``tests.conftest.start_bot``, with the tracker's background loops on or off."""
    tg = FakeTelegram()
    app = build_application(
        make_settings(tmp),
        request=OfflineRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
    )
    await app.initialize()
    await start_resources(app, background=tracker_loop)
    freeze_long_lived_objects()  # as python -m bot does
    return Bot(app, tg, nusa)


async def run(
    count: int, rate: float, in_flight: int, profile: str | None, tracker_loop: bool
) -> int:
    """Start the bot offline, connect NusaSMS, and time /send updates three ways."""
    report = header("overhead", f"/send through the real Application, {count:,} updates a run")
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        nusa = FakeNusaSms()
        nusa.credit.wa_balance = None  # unlimited: every /send must reach the provider
        bot = await start(Path(tmp), nusa, tracker_loop=tracker_loop)
        try:
            await feed(bot.app, private_message(f"/connect nusasms api_key={NUSA_KEY}"))
            await sequential(bot, updates(bot, 100, 0))  # warm caches and the database
            batch = updates(bot, count, 1_000_000)
            resources = bot.app.bot_data.resources
            assert resources is not None
            assert resources.engine is not None
            baseline, baseline_rate = await sequential(
                bot, updates(bot, count, 500_000, command="/help")
            )
            cpu = time.process_time()
            with profiled(profile), DatabaseCalls(resources.engine, resources.units) as db:
                results = {"sequential": await sequential(bot, batch)}
            cpu = (time.process_time() - cpu) / count * 1000
            # Arrivals faster than the bot can serve only measure a growing queue: stay at
            # most at half the sequential throughput.
            rate = min(rate, results["sequential"][1] / 2)
            lateness: list[float] = []
            results[f"steady {rate:.0f}/s, concurrent"] = await steady(
                bot, updates(bot, count, 2_000_000), rate, lateness
            )
            results[f"burst, {in_flight} in flight"] = await burst(
                bot, updates(bot, count, 3_000_000), in_flight
            )
            cards = len(bot.tg.calls_to("sendMessage"))
            sent = len(bot.nusa.sent)
        finally:
            await stop_bot(bot)
    expect(sent == 100 + 3 * count, f"{sent} provider sends")
    show(report, "baseline: /help, sequential (PTB + offline Telegram)", baseline, baseline_rate)
    measured: dict[str, tuple[float, float]] = {}
    for name, (latencies, per_second) in results.items():
        measured[name] = show(report, name, latencies, per_second)
    late50, late99 = (percentile(lateness, q) * 1000 for q in (50, 99))
    report.figure(
        "steady: hand-over later than planned (harness timers)",
        f"p50 {late50:.2f} ms  p99 {late99:.2f} ms",
    )
    report.figure("CPU per update (sequential)", f"{cpu:.2f} ms")
    report.figure("SQL statements per /send", f"{db.statements / count:.1f}")
    report.figure("aiosqlite thread round trips per /send", f"{db.round_trips / count:.1f}")
    report.figure("provider sends / status cards posted", f"{sent:,} / {cards:,}")
    for name, (p50, p99) in measured.items():
        if name.startswith("burst"):
            continue
        report.target(p50 <= 5 and p99 <= 20, f"{name}: p50 ≤ 5 ms, p99 ≤ 20 ms")
    return report.exit_code()


def main(argv: list[str]) -> int:
    """``python -m bench overhead [--count N] [--rate R] [--in-flight K]``."""
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=50.0, help="steady arrivals per second")
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--profile", help="pyinstrument profile of the sequential run")
    parser.add_argument("--no-tracker-loop", action="store_true", help="tracker loops off")
    args = parser.parse_args(argv)
    return asyncio.run(
        run(args.count, args.rate, args.in_flight, args.profile, not args.no_tracker_loop)
    )
