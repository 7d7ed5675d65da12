"""A database that is wrong, missing or gone: one clear line at start, a clear reply later."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import pytest

from bot.config import Settings
from bot.errors import DATABASE_DOWN
from storage.db import Database, async_url, create_engine
from tests.conftest import Bot
from tests.e2e_support import fake_servers, process_env, spawn_bot
from tests.secret_watch import secret

TOKEN = secret("4242:E2E-database-token")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("postgres://u:p@db:5432/chat", "postgresql+asyncpg://u:p@db:5432/chat"),
        ("postgresql://u:p@db/chat", "postgresql+asyncpg://u:p@db/chat"),
        ("postgresql+asyncpg://u:p@db/chat", "postgresql+asyncpg://u:p@db/chat"),
    ],
)
def test_plain_urls_get_the_installed_async_driver(given: str, used: str) -> None:
    assert async_url(given) == used


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("mysql://root@localhost/chat", "'mysql' is not supported: use sqlite"),
        ("postgresql+psycopg2://u@db/chat", "'postgresql+psycopg2' is not supported: use"),
        ("not a url", "not a database URL"),
    ],
)
def test_unsupported_urls_are_refused_with_what_works(given: str, said: str) -> None:
    with pytest.raises(ValueError, match=re.escape(said)):
        Settings(_env_file=None, telegram_bot_token="1:A", database_url=given)  # type: ignore[call-arg]


async def _start(tmp_path: Path, database_url: str) -> tuple[int, str]:
    async with fake_servers(TOKEN) as (server, _nusa, nusasms_base):
        process = await spawn_bot(
            tmp_path,
            process_env(tmp_path, server, nusasms_base, DATABASE_URL=database_url),
            subprocess.PIPE,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.e2e
async def test_an_unreachable_server_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    port = closed_port()
    code, output = await _start(tmp_path, f"postgresql://bob:s3cret@127.0.0.1:{port}/chat")
    assert code == 1
    assert output.strip().splitlines() == [
        f"chatops-bridge: the database at postgresql+asyncpg://bob:***@127.0.0.1:{port}/chat "
        "is not reachable or not usable: "
        f"[Errno 111] Connect call failed ('127.0.0.1', {port})"
    ]
    assert "s3cret" not in output


@pytest.mark.e2e
async def test_an_unsupported_database_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    code, output = await _start(tmp_path, "mysql://root@127.0.0.1/chat")
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("chatops-bridge: invalid configuration: DATABASE_URL:")


async def test_a_database_gone_mid_command_gets_its_own_reply_and_sends_nothing(
    bot: Bot,
) -> None:
    await bot.connect()
    await bot.private("/use nusasms:wa")
    gone = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/chat")
    try:
        bot.services.repo.messages.db = Database(gone)  # the server went away under the bot
        reply = await bot.private("/send 6281234567890 Hello")
    finally:
        await gone.dispose()
    assert reply == DATABASE_DOWN
    assert bot.nusa.sent == []
