"""Start-up: the real process ``python -m bot`` from spawn to "ready", empty and 100,000 messages.

The bot runs against the fake Bot API (``tests.fakes.bot_api_server.BotApiServer``) and the fake
provider of :mod:`bench.servers`, both on 127.0.0.1, with its database in a temporary folder
(and its working directory there, so no developer ``.env`` is read). "Ready" is the log line
``chatops-bridge ready as @…`` that ``bot.app.start_resources`` writes once the database is
open and migrated, the handlers are registered and the command menus are published.

The 100,000-message database is migrated by the project's own code, then filled directly with
SQLAlchemy Core: 1,000 sends of 100 messages over the last 30 days, two history rows each,
99% in final states and 1% still open (recent, next poll in an hour).

Baselines in the same run: a bare interpreter (``python -c pass``) and importing the bot
(``python -c "import bot.app"``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Table, create_engine, insert
from sqlmodel import SQLModel

from bench.common import FakeServer, expect, header
from providers.base import DeliveryState
from storage.crypto import CredentialCipher
from storage.db import create_engine as create_async_engine
from storage.db import migrate
from storage.models import Batch, Chat, Credential, Message, StatusEvent, utcnow
from tests.fakes.bot_api_server import BotApiServer

REPO = Path(__file__).resolve().parent.parent
READY = b"chatops-bridge ready as @"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
CHAT = 777
SENDS = 1_000
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


async def seed(db_url: str, count: int, secret_key: str) -> None:
    """Migrate with the project's code, then insert ``count`` messages in bulk."""
    engine = create_async_engine(db_url)
    await migrate(engine)
    await engine.dispose()
    sync = create_engine(db_url.replace("+aiosqlite", ""))
    now = utcnow()
    per_send = max(count // SENDS, 1)
    cipher = CredentialCipher([secret_key])
    with sync.begin() as conn:
        conn.execute(insert(_table(Chat)), [{**_defaults(Chat), "id": CHAT, "kind": "private"}])
        conn.execute(
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
        batch_defaults = _defaults(Batch)
        batches = [
            {
                **batch_defaults,
                "id": b + 1,
                "chat_id": CHAT,
                "route": "nusasms:wa",
                "text": f"Campaign {b}",
                "origin": f"seed:{b}",
                "created_by": 1,
                "created_at": now - timedelta(days=30) * (1 - b / SENDS),
            }
            for b in range((count + per_send - 1) // per_send)
        ]
        conn.execute(insert(_table(Batch)), batches)
        message_defaults = _defaults(Message)
        rows, events = [], []
        for i in range(count):
            b = i // per_send
            is_open = i % 100 == 0
            state = DeliveryState.SENT if is_open else FINAL[i % len(FINAL)]
            created = now - timedelta(minutes=30) if is_open else batches[b]["created_at"]
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
                    "created_at": created,
                    "updated_at": created,
                    "next_poll_at": now + timedelta(hours=1) if is_open else None,
                }
            )
            for step, at in ((DeliveryState.QUEUED, created), (state, created)):
                events.append(
                    {"message_id": i + 1, "state": step.value, "source": "seed", "at": at}
                    | {"provider_status": "", "detail": ""}
                )
        conn.execute(insert(_table(Message)), rows)
        conn.execute(insert(_table(StatusEvent)), events)
    sync.dispose()


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


def remove_database(folder: Path) -> None:
    """Delete the SQLite file and its WAL companions."""
    for name in ("bot.db", "bot.db-wal", "bot.db-shm"):
        (folder / name).unlink(missing_ok=True)


def database_exists(folder: Path) -> bool:
    """Whether the bot created its database file."""
    return (folder / "bot.db").exists()


def bot_env(tmp: Path, api: BotApiServer, provider: FakeServer, secret: str) -> dict[str, str]:
    """The child's environment: every outside URL on 127.0.0.1, the database in ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NUSASMS_"))}
    env.update(api.env())
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bot.db'}",
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


async def run(count: int, repeats: int) -> int:
    """Time the baselines, then ready with an empty database and with ``count`` messages."""
    report = header("startup", f"python -m bot to ready, empty and {count:,} messages")
    secret = Fernet.generate_key().decode()
    async with BotApiServer() as api, FakeServer() as provider:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as raw:
            work = Path(raw)
            env = bot_env(work, api, provider, secret)
            bare = [await spawn_time([sys.executable, "-c", "pass"], env, work) for _ in range(3)]
            report.figure("baseline: python -c pass", f"{min(bare):.3f} s")
            imports = [
                await spawn_time([sys.executable, "-c", "import bot.app"], env, work)
                for _ in range(3)
            ]
            report.figure("baseline: python -c 'import bot.app'", f"{min(imports):.3f} s")
            results: dict[str, list[float]] = {}
            empty = []
            for _ in range(repeats):
                remove_database(work)
                empty.append(await time_to_ready(env, work))
                expect(database_exists(work), "the bot created no database")
            results["empty database (created and migrated)"] = empty
            remove_database(work)
            start = time.perf_counter()
            await seed(env["DATABASE_URL"], count, secret)
            seconds = time.perf_counter() - start
            report.figure(f"seeding {count:,} messages (not timed below)", f"{seconds:.1f} s")
            results[f"{count:,} stored messages"] = [
                await time_to_ready(env, work) for _ in range(repeats)
            ]
    for label, times in results.items():
        shown = "  ".join(f"{t:.3f}" for t in times)
        report.figure(label, f"median {statistics.median(times):.3f} s   ({shown})")
    for label, times in results.items():
        median = statistics.median(times)
        report.target(median <= 1.5, f"{label}: ≤ 1.5 s (median {median:.3f} s)")
    return report.exit_code()


def main(argv: list[str]) -> int:
    """``python -m bench startup [--count N] [--repeats R]``."""
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.count, args.repeats))
