"""Several replicas sharing one provider account: sends per second against its rate limit.

1, 2 and 3 replica processes send as fast as they are let through to one NusaSMS account of
the fake server of :mod:`bench.servers` run with ``--interval 0.05`` (one request per 50 ms
per account: 20 a second; a request closer than that gets a 429 and is not processed). Each
replica is a fresh process pacing with the bot's own limiter (``AccountLimiters`` →
``SlotPacer`` → ``paced_request``, the production ``NUSASMS_MIN_INTERVAL`` and headroom) with
the account's schedule shared the way the bot shares it: in PostgreSQL (the ``rateslot``
table of a fresh database on 127.0.0.1) or in Redis (``REDIS_URL``, default
``redis://127.0.0.1:6379/15``). The baseline, measured in the same run, is 2 replicas pacing
each on its own (a single process's limiter, no shared schedule): they exceed the limit.

Figures per case: requests accepted per second at the provider (first to last accepted), its
share of the limit, 429 answers, and the smallest gap between two accepted requests. The
goal: with 1, 2 and 3 replicas the rate reaches the limit (≥ 90 % of 20/s: the shared
schedule is 5 % wider, ``PACING_HEADROOM``, or its reservation's round trip wider when that
is slower) and never exceeds it (no 429). Figures only: the exit code is 0 unless a case
broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

import providers.nusasms
from bench.common import BenchDatabase, FakeServer, header
from providers.ratelimit import AccountLimiters, SharedPace, paced_request
from storage.db import Database, open_database
from storage.pace import DatabasePace, RedisPace

INTERVAL = 0.05
SECONDS = 6.0
API_KEY = "bench-replicas-key"  # a made-up key of the fake server, not a credential
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
START_DELAY = 1.5  # seconds for every replica to import and connect before the common start


async def worker(backend: str, url: str, base: str, start_at: float, seconds: float) -> int:
    """One replica: send paced requests from ``start_at`` (wall clock) for ``seconds``."""
    shared: SharedPace | None = None
    engine = None
    if backend == "postgresql":
        engine = await open_database(url)
        shared = DatabasePace(Database(engine))
    elif backend == "redis":
        shared = RedisPace.from_url(url)
    limiters = AccountLimiters(shared)
    pacer = limiters.get(
        "nusasms", API_KEY, interval=providers.nusasms.pacing_interval(INTERVAL), floor=INTERVAL
    )
    sent = 0
    async with httpx.AsyncClient(timeout=10) as http:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end = time.monotonic() + seconds

        async def one() -> None:
            nonlocal sent
            while time.monotonic() < end:
                response = await paced_request(
                    http,
                    "POST",
                    f"{base}/whatsapp/message",
                    pacer=pacer,
                    provider="bench",
                    max_retries=0,
                    headers={"APIKey": API_KEY},
                    json={"destination": "6281234567890", "message": "bench"},
                )
                sent += response.status_code == 201

        await asyncio.gather(*(one() for _ in range(4)))
    if isinstance(shared, DatabasePace | RedisPace):
        await shared.close()
    if engine is not None:
        await engine.dispose()
    return sent


async def case(server: FakeServer, replicas: int, backend: str, url: str) -> dict[str, float]:
    """Run ``replicas`` worker processes at once; the fake's counters."""
    await server.reset()
    start_at = time.time() + START_DELAY
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench",
            "replicas",
            "--worker",
            f"--backend={backend}",
            f"--url={url}",
            f"--base={server.base_url}",
            f"--start-at={start_at}",
            f"--seconds={SECONDS}",
        )
        for _ in range(replicas)
    ]
    try:
        codes = await asyncio.wait_for(
            asyncio.gather(*(p.wait() for p in procs)), SECONDS + START_DELAY + 60
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if any(codes):
        raise RuntimeError(f"a replica failed: exit codes {codes}")
    return await server.stats()


async def run(backends: list[str]) -> int:
    """Every case, printed as it ends."""
    limit = 1 / INTERVAL
    report = header(
        "replicas",
        f"1-3 replicas, one account limited to {limit:.0f}/s, {SECONDS:.0f} s each",
    )
    async with FakeServer(interval=INTERVAL, nice=-10) as server:
        with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
            db = BenchDatabase("postgresql", Path(tmp), "replicas")
            async with db:
                engine = await open_database(db.url)  # the rateslot table, before the workers
                await engine.dispose()
                cases = [("none", "", 2)] + [
                    (backend, db.url if backend == "postgresql" else REDIS_URL, n)
                    for backend in backends
                    for n in (1, 2, 3)
                ]
                for backend, url, replicas in cases:
                    stats = await case(server, replicas, backend, url)
                    accepted = stats["accepted"]
                    span = stats["accepted_span"] or 1.0
                    rate = (accepted - 1) / span if accepted > 1 else 0.0
                    gap = stats["min_gap"]
                    label = (
                        "baseline: 2 replicas, each its own limiter"
                        if backend == "none"
                        else f"{replicas} replica{'s' * (replicas > 1)}, shared in {backend}"
                    )
                    report.figure(
                        label,
                        f"{rate:5.1f}/s ({rate / limit:4.0%} of limit), "
                        f"{stats['rejected_429']:4d} × 429, smallest gap "
                        + (f"{gap * 1000:.1f} ms" if gap else "-"),
                    )
    return 0


def main(argv: list[str]) -> int:
    """``python -m bench replicas [--backend postgresql|redis]``."""
    parser = argparse.ArgumentParser(prog="python -m bench replicas", description=__doc__)
    parser.add_argument("--backend", choices=["postgresql", "redis", "none"], action="append")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--base", default="", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=SECONDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        backend = (args.backend or ["none"])[0]
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(worker(backend, args.url, args.base, args.start_at, args.seconds))
        return 0
    return asyncio.run(run(args.backend or ["postgresql", "redis"]))
