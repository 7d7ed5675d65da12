"""End to end: the real process (``python -m bot``) against fakes over real HTTP.

A fake Bot API server and a fake NusaSMS server listen on 127.0.0.1; this tests packaging,
settings and start-up too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from storage.db import Database, create_engine
from storage.models import Message
from tests.conftest import NUSA_KEY
from tests.databases import database_url
from tests.e2e_support import REPO, Servers, fake_servers, process_env, spawn_bot, text_of
from tests.fakes.telegram import private_message
from tests.secret_watch import secret

pytestmark = pytest.mark.e2e
TOKEN = secret("4242:E2E-secret-token")


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    async with fake_servers(TOKEN) as started:
        yield started


async def test_real_process_connects_and_sends(tmp_path: Path, servers: Servers) -> None:
    server, nusa, nusasms_base = servers
    log_path = tmp_path / "bot.log"
    with log_path.open("wb") as log:
        process = await spawn_bot(tmp_path, process_env(tmp_path, server, nusasms_base), log)
        try:
            await server.wait_for("setMyCommands", timeout=30)
            since = server.state.mark()
            server.push_update(private_message(f"/connect nusasms api_key={NUSA_KEY}"))
            await server.wait_for(
                "sendMessage", lambda c: "connected" in text_of(c), timeout=15, since=since
            )
            since = server.state.mark()
            server.push_update(private_message("/send nusasms:wa 6281234567890 Hello from e2e"))
            card = await server.wait_for(
                "sendMessage", lambda c: "Send 1" in text_of(c), timeout=15, since=since
            )
            assert "accepted" in text_of(card)
            assert [(m.destination, m.message) for m in nusa.sent] == [
                ("6281234567890", "Hello from e2e")
            ]
        finally:
            process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(process.wait(), timeout=20)
    output = log_path.read_text()
    assert code == 0, output
    assert "chatops-bridge ready" in output
    assert TOKEN not in output, "the bot token leaked into the log"
    assert NUSA_KEY not in output, "a provider key leaked into the log"
    # What the process stored is in the database it was given (SQLite or PostgreSQL).
    engine = create_engine(database_url(tmp_path, "e2e"))
    try:
        async with Database(engine).read() as session:
            stored = list(await session.exec(select(Message.recipient, Message.state)))
    finally:
        await engine.dispose()
    assert stored == [("6281234567890", "accepted")]


def test_missing_token_exits_at_once_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in lines[0]
