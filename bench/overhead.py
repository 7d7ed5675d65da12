"""Command overhead: ``/send`` processed by the real Application, on SQLite and PostgreSQL.

The bot is built as the tests build it (``tests.conftest.start_bot``): the real Application
with the offline Telegram layer (``OfflineRequest`` + ``FakeTelegram``, which answers at once)
and the fake NusaSMS behind ``httpx.MockTransport`` (a zero-latency provider), so every cost
is the bot's own: parsing, role check, storage, the provider adapter, the status card.
Telegram's own pacing (``AIORateLimiter``) is off: it throttles Telegram, not the bot's work.
The delivery tracker runs its background loops as in production (``--no-tracker-loop``
leaves them off). The database is a SQLite file or a fresh PostgreSQL database
(``--database``; both by default, each in a fresh process).

A ``/send``'s latency ends when its status card (the bot's answer) is handed to the request
layer: :class:`StampedRequest` notes the time of the first ``sendMessage`` an update makes.
Two runs, each update a one-recipient ``/send`` from a connected private chat:

* sequential: one update at a time; p50/p99 and sends a second. Baseline in the same run:
  ``/help`` through the same Application (a reply with no storage and no provider).
  Budget: p99 ≤ 20 ms and ≥ 100 sends a second.
* concurrent: ``--chats`` chats (100) send ``--per-chat`` ``/send``s each (20) at a combined
  ``--rate`` (100 commands a second), open loop: each update is started at its planned
  arrival whatever is still running, through PTB's concurrent update processor. Latency is
  measured from the planned arrival (so a busy event loop that starts an update late counts
  against the bot). Budget: p99 ≤ 50 ms and no error (an exception, an error handler call,
  or a command without its card or provider send).

SQL statements per ``/send`` are counted during the sequential run with SQLAlchemy's
``before_cursor_execute`` event on the bot's one engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import copy
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from telegram.request import RequestData

from bench.common import (
    BenchDatabase,
    Deadline,
    Report,
    add_database_option,
    expect,
    header,
    on_each_database,
    percentile,
    profiled,
)
from bot.app import build_application, freeze_long_lived_objects, start_resources
from bot.context import BotContext
from tests.conftest import NUSA_KEY, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, OfflineRequest, feed, private_message

RUN_SECONDS = 120.0
SEQUENTIAL_P99_MS = 20.0
SEQUENTIAL_RATE = 100.0
CONCURRENT_P99_MS = 50.0
FIRST_CHAT = 10_000  # the concurrent run's chats (private chats of users 10,000…)

# The time the current update's answer reached the request layer (one slot per update).
_handed_off: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "handed_off", default=None
)


class StampedRequest(OfflineRequest):
    """The offline request layer, noting when an update's first ``sendMessage`` arrives."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = OfflineRequest.DEFAULT_NONE,
        write_timeout: object = OfflineRequest.DEFAULT_NONE,
        connect_timeout: object = OfflineRequest.DEFAULT_NONE,
        pool_timeout: object = OfflineRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Stamp the hand-off, then answer as :class:`OfflineRequest` does."""
        slot = _handed_off.get()
        if slot is not None and not slot and url.endswith("/sendMessage"):
            slot.append(time.perf_counter())
        return await super().do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )


class Statements:
    """Counts SQL statements on the engine (SQLAlchemy's ``before_cursor_execute``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self._engine = engine.sync_engine

    def _on_statement(self, *_args: object) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        event.listen(self._engine, "before_cursor_execute", self._on_statement)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._on_statement)


def updates(
    bot: Bot, count: int, start: int, *, command: str = "/send", users: int = 1
) -> list[Update]:
    """``count`` ready updates (built before timing, as Telegram would deliver).

    ``/send`` by default; ``/help`` for the baseline. With ``users`` > 1 the updates come
    from the private chats of users ``FIRST_CHAT…`` in turn.
    """
    result = []
    for i in range(start, start + count):
        text = f"/send nusasms:wa 62812{i:08d} Order {i} is ready for pickup"
        user = 1 if users == 1 else FIRST_CHAT + (i - start) % users
        raw = private_message(text if command == "/send" else command, user_id=user)
        bot.tg.register_update(raw)
        result.append(Update.de_json(copy.deepcopy(raw), bot.app.bot))
    return result


def processor(bot: Bot) -> Callable[[Update], Awaitable[float]]:
    """Process one update as a running Application does; returns when its answer left."""
    app = bot.app

    async def process(update: Update) -> float:
        slot: list[float] = []
        _handed_off.set(slot)  # this task's context only
        await app.update_processor.process_update(update, app.process_update(update))
        return slot[0] if slot else time.perf_counter()

    return process


async def sequential(bot: Bot, batch: list[Update]) -> tuple[list[float], float]:
    """One at a time; latencies to the hand-off (s) and updates a second."""
    process = processor(bot)
    deadline = Deadline(RUN_SECONDS)
    latencies = []
    start = time.perf_counter()
    for update in batch:
        begin = time.perf_counter()
        latencies.append(await process(update) - begin)
        deadline.check("sequential updates")
    return latencies, len(batch) / (time.perf_counter() - start)


async def open_loop(
    bot: Bot, batch: list[Update], rate: float
) -> tuple[list[float], list[float], int, float]:
    """Start update ``k`` at ``start + k / rate`` whatever is still running.

    Returns the latencies from the planned arrival, the harness's lateness in starting them,
    the exceptions raised, and the achieved arrival rate.
    """
    process = processor(bot)
    latencies: list[float] = []
    lateness: list[float] = []
    errors = 0

    async def one(update: Update, due: float) -> None:
        nonlocal errors
        lateness.append(time.perf_counter() - due)
        try:
            latencies.append(await process(update) - due)
        except Exception:  # counted, not hidden
            errors += 1

    start = time.perf_counter()
    tasks = []
    for index, update in enumerate(batch):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(update, due)))
    arrivals = len(batch) / max(time.perf_counter() - start, 1e-9) if len(batch) > 1 else 0.0
    await asyncio.wait_for(asyncio.gather(*tasks), RUN_SECONDS)
    return latencies, lateness, errors, arrivals


def show(report: Report, name: str, latencies: list[float], rate: float | None = None) -> float:
    """Print p50/p99/max (and the rate); return p99 in ms."""
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    worst = max(latencies) * 1000
    tail = f"  {rate:,.0f} updates/s" if rate is not None else ""
    report.figure(name, f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {worst:.1f} ms{tail}")
    return p99


async def start(tmp: Path, url: str, nusa: FakeNusaSms, *, tracker_loop: bool) -> Bot:
    """``tests.conftest.start_bot`` on ``url``, with the tracker's loops on or off."""
    tg = FakeTelegram()
    app = build_application(
        make_settings(tmp, database_url=url),
        request=StampedRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
    )
    await app.initialize()
    await start_resources(app, background=tracker_loop)
    freeze_long_lived_objects()  # as python -m bot does
    return Bot(app, tg, nusa)


async def run(args: argparse.Namespace) -> int:
    """Start the bot offline, connect NusaSMS, time /help, then /send two ways."""
    count, chats, per_chat, rate = args.count, args.chats, args.per_chat, args.rate
    report = header("overhead", f"/send through the real Application, {args.database}")
    handler_errors: list[object] = []

    async def count_error(_update: object, context: BotContext) -> None:
        handler_errors.append(context.error)

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        async with BenchDatabase(args.database, Path(tmp)) as database:
            report.figure("database", database.describe())
            nusa = FakeNusaSms(api_key=NUSA_KEY)
            nusa.credit.wa_balance = None  # unlimited: every /send must reach the provider
            bot = await start(Path(tmp), database.url, nusa, tracker_loop=args.tracker_loop)
            bot.app.add_error_handler(count_error)
            try:
                connect = f"/connect nusasms api_key={NUSA_KEY}"
                await feed(bot.app, private_message(connect))
                for user in range(FIRST_CHAT, FIRST_CHAT + chats):
                    await feed(bot.app, private_message(connect, user_id=user))
                await sequential(bot, updates(bot, 100, 0))  # warm caches and the database
                batch = updates(bot, count, 1_000_000)
                resources = bot.app.bot_data.resources
                assert resources is not None
                assert resources.engine is not None
                baseline, baseline_rate = await sequential(
                    bot, updates(bot, count, 500_000, command="/help")
                )
                cpu = time.process_time()
                with profiled(args.profile), Statements(resources.engine) as statements:
                    latencies, per_second = await sequential(bot, batch)
                cpu = (time.process_time() - cpu) / count * 1000
                sent_before = len(nusa.sent)
                cards_before = len(bot.tg.calls_to("sendMessage"))
                errors_before = len(handler_errors)
                concurrent = updates(bot, chats * per_chat, 2_000_000, users=chats)
                timed, lateness, raised, arrivals = await open_loop(bot, concurrent, rate)
                sent = len(nusa.sent) - sent_before
                cards = len(bot.tg.calls_to("sendMessage")) - cards_before
                handled = len(handler_errors) - errors_before
            finally:
                await stop_bot(bot)
    expect(len(nusa.sent) >= 100 + count, f"{len(nusa.sent)} provider sends")
    expect(not handler_errors[:errors_before], f"errors in the sequential run: {handler_errors}")
    show(report, "baseline: /help, sequential (PTB + offline Telegram)", baseline, baseline_rate)
    seq_p99 = show(report, "/send, sequential", latencies, per_second)
    report.figure("  CPU per /send (sequential)", f"{cpu:.2f} ms")
    report.figure("  SQL statements per /send", f"{statements.count / count:.1f}")
    total = chats * per_chat
    con_p99 = show(
        report, f"/send, {chats} chats × {per_chat}, open loop {rate:.0f}/s", timed, None
    )
    report.figure("  arrivals achieved", f"{arrivals:,.1f} commands/s")
    late50, late99 = (percentile(lateness, q) * 1000 for q in (50, 99))
    report.figure(
        "  update started later than planned (in the latency)",
        f"p50 {late50:.2f} ms  p99 {late99:.2f} ms",
    )
    missing = max(total - sent, 0) + max(total - cards, 0)
    errors = raised + handled + missing
    report.figure(
        "  errors: raised / error handler / missing send or card",
        f"{raised} / {handled} / {missing}",
    )
    report.budget(
        seq_p99 <= SEQUENTIAL_P99_MS,
        f"sequential /send p99 ≤ {SEQUENTIAL_P99_MS:.0f} ms (got {seq_p99:.2f} ms, "
        f"/help baseline {percentile(baseline, 99) * 1000:.2f} ms)",
    )
    report.budget(
        per_second >= SEQUENTIAL_RATE,
        f"≥ {SEQUENTIAL_RATE:.0f} sequential sends a second (got {per_second:,.0f}/s)",
    )
    report.budget(
        con_p99 <= CONCURRENT_P99_MS and errors == 0,
        f"{chats} chats × {per_chat} at {rate:.0f}/s: p99 ≤ {CONCURRENT_P99_MS:.0f} ms, "
        f"no error (got {con_p99:.2f} ms, {errors} errors)",
    )
    return report.exit_code()


def main(argv: list[str]) -> int:
    """``python -m bench overhead [--count N] [--chats C] [--per-chat K] [--rate R]``."""
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000, help="sequential /sends")
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--per-chat", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0, help="combined commands a second")
    parser.add_argument("--profile", help="pyinstrument profile of the sequential run")
    parser.add_argument(
        "--no-tracker-loop", dest="tracker_loop", action="store_false", help="tracker loops off"
    )
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.database is None:
        return on_each_database("overhead", argv, timeout=600)
    expect(0 < args.rate <= 1_000 and args.chats * args.per_chat <= 100_000, "bounded load")
    result: Any = asyncio.run(run(args))
    return int(result)
