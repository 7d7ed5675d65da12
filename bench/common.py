"""What every benchmark shares: machine facts, percentiles, verdicts, fake servers in a child.

The fake provider servers run in a child process (``python -m bench.servers``) so that the code
under test and the server do not share one core's event loop: on a 2-core machine that is the
fairest split, and it is how the aiohttp ceiling is measured too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

LIBRARIES = (
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "python-telegram-bot",
    "sqlalchemy",
    "sqlmodel",
    "aiosqlite",
    "asyncpg",
    "alembic",
)
SERVER_START_SECONDS = 20.0


def _proc_field(path: str, prefix: str) -> str | None:
    """The text after ``prefix:`` on the first matching line of a /proc file."""
    with contextlib.suppress(OSError), open(path, encoding="ascii", errors="replace") as lines:
        for line in lines:
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return None


def machine_lines() -> list[str]:
    """One line each: CPU, memory, load, Python and the library versions that matter here."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or "?"
    mem_kib = (_proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0]
    mem_gib = f"{int(mem_kib) / 1024 / 1024:.1f} GiB"
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {mem_gib}, {platform.system()} "
        f"{platform.release()}",
        f"load average at start: {load}",
        f"python {platform.python_version()} ({sys.implementation.name}), "
        f"sqlite {sqlite3.sqlite_version}",
        "libraries: " + ", ".join(versions),
    ]


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class Report:
    """Figures and verdicts of one benchmark, printed as an aligned block.

    :meth:`budget` is a budget of the storage issue and decides the exit code; :meth:`check`
    is a figure held against an older target (issue 6) or a sanity check, shown but never
    failing the run.
    """

    name: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[tuple[bool, str]] = field(default_factory=list)

    def figure(self, label: str, value: str) -> None:
        """Record and print one figure at once (a long benchmark shows progress)."""
        self.lines.append((label, value))
        print(f"  {label:<52} {value}", flush=True)

    def budget(self, ok: bool, text: str) -> None:
        """Record and print whether a budget was met (a missed one makes the exit code 1)."""
        self.verdicts.append((ok, text))
        print(f"  {'MET   ' if ok else 'MISSED'} {text}", flush=True)

    def exit_code(self) -> int:
        """0 when every budget was met, 1 otherwise."""
        return 0 if all(ok for ok, _ in self.verdicts) else 1


@dataclass(frozen=True, slots=True)
class Rate:
    """A loop's throughput and this process's CPU time per item (robust to a busy machine)."""

    per_second: float
    cpu_us: float

    def __str__(self) -> str:
        return f"{self.per_second:,.0f}/s   {self.cpu_us:,.0f} µs CPU each"


@contextlib.contextmanager
def measured(count: int, out: list[Rate]) -> Iterator[None]:
    """Time the block and append its :class:`Rate` for ``count`` items to ``out``."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out.append(Rate(count / wall, cpu / count * 1e6))


def header(name: str, description: str) -> Report:
    """Print the benchmark's title and start its report."""
    print(f"== {name}: {description}", flush=True)
    return Report(name)


class FakeServer:
    """A fake provider served by ``python -m bench.servers`` in a child process on 127.0.0.1.

    Usage: ``async with FakeServer(interval=0.05) as server: server.base_url ...``. The child
    exits by itself after ``max_seconds`` even if this process dies first.
    """

    def __init__(
        self, *, interval: float = 0.0, max_seconds: float = 900.0, nice: int = 0
    ) -> None:
        self.interval = interval
        self.max_seconds = max_seconds
        self.nice = nice
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The NusaSMS WhatsApp API base the adapter is configured with."""
        return f"{self.origin}/nusasms_api/1.0"

    async def __aenter__(self) -> FakeServer:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.servers",
            f"--interval={self.interval}",
            f"--max-seconds={self.max_seconds}",
            f"--nice={self.nice}",
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), SERVER_START_SECONDS)
        if not line.startswith(b"PORT "):
            await self.aclose()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the child (only the one this object started)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def stats(self) -> dict[str, Any]:
        """The server's counters (requests, accepted, 429s, smallest accepted gap)."""
        return await self._get("/_stats")

    async def reset(self) -> None:
        """Zero the counters (between a warm-up and the measured run)."""
        await self._get("/_reset")

    async def _get(self, path: str) -> dict[str, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode("ascii"))
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        _, _, body = raw.partition(b"\r\n\r\n")
        result: dict[str, Any] = json.loads(body)
        return result


def expect(condition: bool, detail: object) -> None:
    """Stop the benchmark when a fake answered something unexpected (kept under ``-O``)."""
    if not condition:
        raise RuntimeError(f"unexpected: {detail!r}")


class Deadline:
    """A wall-clock budget a load loop checks so that it always stops by itself."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return time.monotonic() > self._end

    def check(self, what: str) -> None:
        """Raise ``TimeoutError`` naming ``what`` once the budget is spent."""
        if self.expired():
            raise TimeoutError(f"{what} did not finish within {self.seconds:.0f} s")


@contextlib.contextmanager
def profiled(target: str | None) -> Iterator[None]:
    """Profile the block with pyinstrument (the ``bench`` extra) into ``target`` (.html/.txt).

    Does nothing when ``target`` is None, so a benchmark can always wrap its measured part.
    """
    if target is None:
        yield
        return
    from pyinstrument import Profiler  # the bench extra; only needed when asked for

    profiler = Profiler(async_mode="enabled", interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        if target.endswith(".html"):
            profiler.write_html(target)
        else:
            with open(target, "w", encoding="utf-8") as out:
                out.write(profiler.output_text(unicode=True, show_all=False))
        print(f"  profile written to {target}", flush=True)


# -- the two databases ------------------------------------------------------------------------

DATABASES = ("sqlite", "postgresql")
# The PostgreSQL server the benchmarks create their databases on (trust auth, 127.0.0.1 only).
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
POSTGRES_PREFIX = "chatops_bench_"


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """``--database sqlite|postgresql``; without it the benchmark runs once on each."""
    parser.add_argument(
        "--database",
        choices=DATABASES,
        help="run on this database only (default: both, each in a fresh process)",
    )


def on_each_database(name: str, argv: list[str], timeout: float) -> int:
    """Run ``python -m bench NAME ARGV --database X`` for each database; the worst exit code.

    Each database gets a fresh interpreter, so one run's memory or caches cannot flatter the
    other's figures.
    """
    worst = 0
    for database in DATABASES:
        print(
            f"\n$ python -m bench {name} {' '.join(argv)} --database {database}".replace("  ", " ")
        )
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "bench", name, *argv, "--database", database],
                timeout=timeout,
                check=False,
            )
            code = done.returncode
        except subprocess.TimeoutExpired:
            print(f"{name} on {database}: stopped after {timeout:.0f} s", flush=True)
            code = 124
        worst = max(worst, code)
    return worst


class BenchDatabase:
    """A database of one benchmark run: a SQLite file in ``folder``, or a fresh PostgreSQL one.

    The PostgreSQL database is created on :meth:`create` (dropped first if a killed run left
    it) on the server of ``BENCH_POSTGRES_URL`` (127.0.0.1 only) and dropped on :meth:`drop`.
    Usage: ``async with BenchDatabase("postgresql", tmp) as db: db.url``.
    """

    def __init__(self, kind: str, folder: Path, name: str = "bot") -> None:
        if kind not in DATABASES:
            raise ValueError(f"unknown database {kind!r}")
        self.kind = kind
        self.folder = folder
        self.name = name
        self.server_version = "?"
        if kind == "sqlite":
            self.url = f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
            return
        server = make_url(POSTGRES_URL)
        if server.host != "127.0.0.1":
            raise ValueError("the benchmarks only talk to 127.0.0.1")
        self.database = f"{POSTGRES_PREFIX}{os.getpid()}_{name}"
        self.url = server.set(database=self.database).render_as_string(hide_password=False)

    def describe(self) -> str:
        """What the figures were measured on: the database and its server version."""
        if self.kind == "sqlite":
            return f"SQLite {sqlite3.sqlite_version} file (WAL), aiosqlite"
        return f"PostgreSQL {self.server_version} on 127.0.0.1, asyncpg, fresh database"

    async def create(self) -> None:
        """Start from nothing: no SQLite file, or a new empty PostgreSQL database."""
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                (self.folder / f"{self.name}.db{suffix}").unlink(missing_ok=True)
            return
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        await self._admin(f'CREATE DATABASE "{self.database}"')

    async def drop(self) -> None:
        """Remove what :meth:`create` made."""
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                (self.folder / f"{self.name}.db{suffix}").unlink(missing_ok=True)
            return
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def exists(self) -> bool:
        """Whether the SQLite file exists (PostgreSQL: always, between create and drop)."""
        return self.kind != "sqlite" or (self.folder / f"{self.name}.db").exists()

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
                version = await connection.execute(text("SHOW server_version"))
                self.server_version = str(version.scalar()).split()[0]
        finally:
            await engine.dispose()

    async def __aenter__(self) -> BenchDatabase:
        await self.create()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.drop()


@contextlib.asynccontextmanager
async def bench_database(kind: str, folder: Path, name: str = "bot") -> AsyncIterator[str]:
    """The URL of a fresh database of ``kind`` for the block, removed afterwards."""
    async with BenchDatabase(kind, folder, name) as db:
        yield db.url
