"""Rate-limited provider: 1,000 sends paced at NusaSMS's one request per 50 ms per account.

One send to 1,000 recipients goes through the real send path (as ``bot.app.start_resources``
builds it, with the production default ``NUSASMS_MIN_INTERVAL``) to the fake server of
:mod:`bench.servers` run with ``--interval 0.05``: it answers 429 (and does not process the
request) when a request of the account comes less than 50 ms after the last accepted one.

The ideal is ``count × interval`` (50 s); issue 6's target, ≤ 1.05 × ideal with zero 429s, is
shown as a figure (not a budget of the storage issue: it never fails the run). The database is
a SQLite file or a fresh PostgreSQL one (``--database``; both by default).
The fake answers within a few ms, far less than the pacing headroom (``PACING_HEADROOM`` in
providers/nusasms.py, 2.5 ms at 50 ms), so the pacer waits for each answer and writes the next
request 50 ms after it (*near* mode, providers/ratelimit.py): each gap costs one round trip
over the 50 ms and no 429 is possible. ``--headroom`` overrides the headroom for this run only;
a provider further away than it is paced on a schedule that much wider than the interval.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import providers.nusasms
from bench.common import (
    BenchDatabase,
    FakeServer,
    add_database_option,
    expect,
    header,
    on_each_database,
)
from bench.stack import SendStack, recipients, send_request
from bot.config import Settings

TIME_LIMIT_FACTOR = 3.0  # stop a run that is far off rather than wait for it


async def run(
    count: int, interval: float, concurrency: int, headroom: float | None, database: str
) -> int:
    """Send, then print elapsed vs ideal, the 429s and the smallest gap between requests."""
    ideal = count * interval
    report = header(
        "ratelimit", f"{count:,} sends, one request per {interval * 1000:.0f} ms, {database}"
    )
    if headroom is not None:
        providers.nusasms.PACING_HEADROOM = headroom  # this process only
    paced = providers.nusasms.pacing_interval(interval)
    report.figure(
        "far-provider pacing (PACING_HEADROOM)",
        f"{paced * 1000:.2f} ms ({providers.nusasms.PACING_HEADROOM:.0%})",
    )
    # The fake stands in for a remote server: a higher priority keeps neighbours' load on this
    # machine from delaying its clock (and faking 429s); see bench/servers.py.
    async with FakeServer(interval=interval, nice=-10) as server:
        with tempfile.TemporaryDirectory(prefix="bench-ratelimit-") as tmp:
            db = BenchDatabase(database, Path(tmp))
            stack = SendStack(
                Path(tmp),
                db.url,
                base_url=server.base_url,
                min_interval=interval,
                concurrency=concurrency,
            )
            async with db, stack:
                # The limiter starts full: let it drain so the measured run starts from rest.
                await asyncio.sleep(interval * 2)
                start = time.perf_counter()
                outcome = await asyncio.wait_for(
                    stack.services.sender.send(send_request("bench:paced", recipients(count))),
                    ideal * TIME_LIMIT_FACTOR,
                )
                elapsed = time.perf_counter() - start
                stats = await server.stats()
                assert outcome.batch.id is not None
                accepted, refs = await stack.verify_stored(outcome.batch.id)
    report.figure("ideal (count × interval)", f"{ideal:.2f} s")
    report.figure("elapsed", f"{elapsed:.2f} s")
    report.figure("elapsed / ideal", f"{elapsed / ideal:.3f}")
    report.figure("requests the server saw", str(stats["requests"]))
    report.figure("429 answers", str(stats["rejected_429"]))
    if stats["rejected_gaps_ms"]:
        shown = ", ".join(f"{g:.1f}" for g in stats["rejected_gaps_ms"][:12])
        report.figure("  gaps that got a 429 (ms)", shown)
    gap = stats["min_gap"]
    report.figure("smallest gap between accepted requests", f"{gap * 1000:.1f} ms" if gap else "-")
    span = stats["accepted_span"]
    report.figure("first to last accepted request", f"{span:.2f} s")
    mean_gap = span / max(count - 1, 1) * 1000
    report.figure("mean gap between accepted requests", f"{mean_gap:.2f} ms")
    report.figure("stored accepted with a ref", f"{accepted} / {count} ({refs} distinct refs)")
    report.figure("database", db.describe())
    # The provider-layer issue keeps these as budgets of the one paced-request helper.
    report.budget(elapsed <= 1.05 * ideal, f"≤ 1.05 × ideal (got {elapsed / ideal:.3f})")
    report.budget(stats["rejected_429"] == 0, f"zero 429s (got {stats['rejected_429']})")
    expect(accepted == count and refs == count, f"{accepted} accepted, {refs} refs of {count}")
    return report.exit_code()


def main(argv: list[str]) -> int:
    """``python -m bench ratelimit [--count N] [--interval S] [--concurrency C]``."""
    defaults = Settings.model_fields
    parser = argparse.ArgumentParser(prog="python -m bench ratelimit", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--interval", type=float, default=defaults["nusasms_min_interval"].default)
    parser.add_argument("--concurrency", type=int, default=defaults["send_concurrency"].default)
    parser.add_argument("--headroom", type=float, help="override PACING_HEADROOM (e.g. 0.02)")
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.database is None:
        return on_each_database("ratelimit", argv, timeout=300)
    return asyncio.run(
        run(args.count, args.interval, args.concurrency, args.headroom, args.database)
    )
