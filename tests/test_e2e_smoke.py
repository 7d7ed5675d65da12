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
from cryptography.fernet import Fernet

from tests.conftest import NUSA_KEY
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import Call, private_message

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]
TOKEN = "4242:E2E-secret-token"


def _env(tmp_path: Path, server: BotApiServer, nusasms_base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NUSASMS_"))}
    env.update(server.env())
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'chatops.db'}",
            "NUSASMS_BASE_URL": f"{nusasms_base}/nusasms_api/1.0",
            "NUSASMS_SMS_BASE_URL": f"{nusasms_base}/api",
            "LOG_LEVEL": "INFO",
            "SECRET_KEY": Fernet.generate_key().decode(),
        }
    )
    return env


@pytest.fixture
async def servers() -> AsyncIterator[tuple[BotApiServer, FakeNusaSms, str]]:
    nusa = FakeNusaSms(api_key=NUSA_KEY, retry_after="0")
    async with BotApiServer(token=TOKEN) as server, serve(nusa) as nusasms_base:
        yield server, nusa, nusasms_base


def _text(call: Call) -> str:
    return str(call.params.get("text", ""))


async def test_real_process_connects_and_sends(
    tmp_path: Path, servers: tuple[BotApiServer, FakeNusaSms, str]
) -> None:
    server, nusa, nusasms_base = servers
    log_path = tmp_path / "bot.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=_env(tmp_path, server, nusasms_base),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await server.wait_for("setMyCommands", timeout=30)
            since = server.state.mark()
            server.push_update(private_message(f"/connect nusasms api_key={NUSA_KEY}"))
            await server.wait_for(
                "sendMessage", lambda c: "connected" in _text(c), timeout=15, since=since
            )
            since = server.state.mark()
            server.push_update(private_message("/send nusasms:wa 6281234567890 Hello from e2e"))
            card = await server.wait_for(
                "sendMessage", lambda c: "Send 1" in _text(c), timeout=15, since=since
            )
            assert "accepted" in _text(card)
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
    assert (tmp_path / "data" / "chatops.db").exists()


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
