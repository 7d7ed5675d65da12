"""What Prometheus metrics cost: a ``/send`` with them and without, and one scrape.

Two bots in one process, built as ``bench overhead`` builds its bot (real Application, offline
Telegram, FakeNusaSms over MockTransport, Telegram pacing off), each on a database of its own:
one counting into its registry (the default), one built with ``metrics=False`` (no httpx
hooks, no counting) as the baseline. They take turns: ``--rounds`` rounds of ``--count``
sequential one-recipient ``/send``s each, the order swapped every round, so the machine's
drift (shared cores) falls on both alike. The tracker's loops are off in both (no card edits
to count; the polls would add noise to both). Reported: p50 and mean latency until the card
is handed to the request layer and this process's CPU time per ``/send``, for both, and the
difference. That difference is within the shared machine's noise (±1 ms), so the counting
itself is also timed in a loop: both httpx hooks and one ``count_sent``, what a one-recipient
``/send`` adds. Then ``--scrapes`` scrapes of the counting bot (the scrape-time readings, one
indexed ``COUNT`` of due schedules included, and the text rendering): mean time per scrape.

Budget: the counting adds at most ``MAX_ADDED_US`` µs to a ``/send`` (1 % of its ~10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BenchDatabase,
    add_database_option,
    expect,
    header,
    on_each_database,
    percentile,
)
from bench.overhead import StampedRequest, sequential, updates
from bot.app import build_application, freeze_long_lived_objects, start_resources
from bot.metrics import Metrics
from bot.ops import refresh
from tests.conftest import NUSA_KEY, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, feed, private_message

MAX_ADDED_US = 100.0


async def start(tmp: Path, url: str, *, metrics: bool) -> Bot:
    """A connected offline bot on ``url``, counting metrics or not."""
    nusa = FakeNusaSms(api_key=NUSA_KEY)
    nusa.credit.wa_balance = None  # unlimited: every /send reaches the provider
    tg = FakeTelegram()
    app = build_application(
        make_settings(tmp, database_url=url),
        request=StampedRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
        metrics=metrics,
    )
    await app.initialize()
    await start_resources(app, background=False)
    bot = Bot(app, tg, nusa)
    await feed(app, private_message(f"/connect nusasms api_key={NUSA_KEY}"))
    return bot


@dataclass
class _Row:
    provider: str = "nusasms"
    channel: str = "wa"
    state: str = "accepted"


async def direct_cost(count: int) -> float:
    """µs of what metrics do per one-recipient ``/send``: both hooks once, one count."""
    metrics = Metrics()
    client = httpx.AsyncClient()
    metrics.instrument(client, lambda _url: "nusasms")
    started, answered = client.event_hooks["request"][0], client.event_hooks["response"][0]
    request = httpx.Request("POST", "http://nusasms.test/nusasms_api/1.0/whatsapp/message")
    response = httpx.Response(200, request=request)
    rows = [_Row()]
    begin = time.perf_counter()
    for _ in range(count):
        await started(request)
        await answered(response)
        metrics.count_sent(rows)
    spent = (time.perf_counter() - begin) / count * 1e6
    await client.aclose()
    return spent


async def run(args: argparse.Namespace) -> int:
    """Alternate rounds of /send on both bots, then time scrapes."""
    report = header("metrics", f"/send with and without Prometheus metrics, {args.database}")
    lat: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        folder = Path(tmp)
        async with (
            BenchDatabase(args.database, folder, "on") as on_db,
            BenchDatabase(args.database, folder, "off") as off_db,
        ):
            report.figure("database", on_db.describe())
            bots = {
                True: await start(folder / "on", on_db.url, metrics=True),
                False: await start(folder / "off", off_db.url, metrics=False),
            }
            try:
                freeze_long_lived_objects()  # as python -m bot does
                for bot in bots.values():
                    await sequential(bot, updates(bot, 100, 0))  # warm caches and the database
                for index in range(args.rounds):
                    order = (True, False) if index % 2 == 0 else (False, True)
                    for on in order:
                        bot = bots[on]
                        batch = updates(bot, args.count, 1_000_000 + index * args.count)
                        spent = time.process_time()
                        latencies, _rate = await sequential(bot, batch)
                        cpu[on].append((time.process_time() - spent) / args.count * 1000)
                        lat[on].extend(latencies)
                counted = bots[True].app.bot_data.metrics
                assert counted is not None
                sent = counted.registry.get_sample_value(
                    "chatops_messages_sent_total", {"route": "nusasms:wa", "outcome": "accepted"}
                )
                expect(sent == 100 + args.rounds * args.count, f"counted {sent} sends")
                expect(bots[False].app.bot_data.metrics is None, "the baseline counts nothing")
                scrape = time.perf_counter()
                size = 0
                for _ in range(args.scrapes):
                    await refresh(bots[True].app)
                    size = len(counted.exposition())
                scrape = (time.perf_counter() - scrape) / args.scrapes * 1000
                direct = await direct_cost(args.count * 100)
            finally:
                for bot in bots.values():
                    await stop_bot(bot)
    for on, name in ((False, "without metrics (baseline)"), (True, "with metrics")):
        report.figure(
            f"/send {name}",
            f"p50 {percentile(lat[on], 50) * 1000:.2f} ms  mean "
            f"{statistics.fmean(lat[on]) * 1000:.2f} ms  CPU {statistics.median(cpu[on]):.2f} ms",
        )
    added_p50 = (percentile(lat[True], 50) - percentile(lat[False], 50)) * 1000
    added_cpu = statistics.median(a - b for a, b in zip(cpu[True], cpu[False], strict=True))
    share = added_cpu / statistics.median(cpu[False]) * 100
    report.figure("added by metrics: p50 latency", f"{added_p50:+.3f} ms")
    report.figure("added by metrics: CPU per /send", f"{added_cpu:+.3f} ms ({share:+.1f} %)")
    report.figure("the counting alone (hooks + count_sent)", f"{direct:.1f} µs per /send")
    report.figure("one scrape (readings + text)", f"{scrape:.2f} ms, {size:,} bytes")
    report.budget(
        direct <= MAX_ADDED_US,
        f"counting adds ≤ {MAX_ADDED_US:.0f} µs to a /send (got {direct:.1f} µs; A/B "
        f"difference {added_cpu:+.3f} ms CPU, within noise)",
    )
    return report.exit_code()


def main(argv: list[str]) -> int:
    """``python -m bench metrics [--rounds R] [--count N] [--scrapes S]``."""
    parser = argparse.ArgumentParser(prog="python -m bench metrics", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10, help="turns of each bot")
    parser.add_argument("--count", type=int, default=100, help="sequential /sends a turn")
    parser.add_argument("--scrapes", type=int, default=200)
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.database is None:
        return on_each_database("metrics", argv, timeout=600)
    expect(0 < args.rounds * args.count <= 20_000, "bounded load")
    result: Any = asyncio.run(run(args))
    return int(result)
