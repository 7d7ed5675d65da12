"""What the end-to-end tests share: the fake servers and the bot process's environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from cryptography.fernet import Fernet

from tests.conftest import NUSA_KEY
from tests.databases import database_url
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import Call

REPO = Path(__file__).resolve().parents[1]
Servers = tuple[BotApiServer, FakeNusaSms, str]


@asynccontextmanager
async def fake_servers(token: str) -> AsyncIterator[Servers]:
    """A fake Bot API server and a fake NusaSMS server on 127.0.0.1 (and its base URL)."""
    nusa = FakeNusaSms(api_key=NUSA_KEY, retry_after="0")
    async with BotApiServer(token=token) as server, serve(nusa) as nusasms_base:
        yield server, nusa, nusasms_base


def process_env(
    tmp_path: Path, server: BotApiServer, nusasms_base: str, **extra: str
) -> dict[str, str]:
    """The environment of ``python -m bot`` pointed at the fakes, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NUSASMS_"))}
    env.update(server.env())
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": database_url(tmp_path, "e2e"),
            "NUSASMS_BASE_URL": f"{nusasms_base}/nusasms_api/1.0",
            "NUSASMS_SMS_BASE_URL": f"{nusasms_base}/api",
            "LOG_LEVEL": "INFO",
            "SECRET_KEY": Fernet.generate_key().decode(),
            **extra,
        }
    )
    return env


async def spawn_bot(
    cwd: Path, env: dict[str, str], output: IO[bytes] | int
) -> asyncio.subprocess.Process:
    """Start ``python -m bot`` in ``cwd`` with ``env``; stdout and stderr both go to ``output``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
    )


def text_of(call: Call) -> str:
    """The text a Bot API call sent or edited."""
    return str(call.params.get("text", ""))
