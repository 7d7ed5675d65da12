"""Start-up failures of the real process: one clear line, no traceback, no secret, exit 1.

Each case starts ``python -m bot`` with one thing wrong. "Rejected" and "unreachable" run
against the fake Bot API on 127.0.0.1 (a server that knows another token, or a port where
nothing listens); a malformed token must be refused before any request is made.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.e2e_support import REPO
from tests.fakes.bot_api_server import ThreadedBotApiServer
from tests.secret_watch import secret

pytestmark = pytest.mark.e2e
TOKEN = secret("5151:E2E-startup-token_x")  # the shape @BotFather gives, known to no server here
DB_PASSWORD = secret("db-pass-E2E-startup")


def start(tmp_path: Path, **env: str) -> tuple[int, str]:
    """Run ``python -m bot`` to its end; its exit code and everything it printed."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NUSASMS_"))}
    base.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        SECRET_KEY=Fernet.generate_key().decode(),
        LOG_LEVEL="INFO",
    )
    base.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def assert_one_clear_line(code: int, output: str, *secrets: str) -> str:
    lines = output.strip().splitlines()
    assert code == 1, output
    assert len(lines) == 1, output
    assert "Traceback" not in output
    for value in secrets:
        assert value not in output, f"{value!r} was printed"
    assert lines[0].startswith("chatops-bridge: ")
    return lines[0]


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_token_telegram_rejects_is_one_line_without_the_token(tmp_path: Path) -> None:
    with ThreadedBotApiServer(token="5151:another-bots-token") as server:
        code, output = start(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_BASE_URL=server.base_url,
            TELEGRAM_BASE_FILE_URL=server.file_url,
        )
    line = assert_one_clear_line(code, output, TOKEN, TOKEN.partition(":")[2])
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in line


def test_unreachable_telegram_is_one_line(tmp_path: Path) -> None:
    port = closed_port()
    code, output = start(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot",
        TELEGRAM_BASE_FILE_URL=f"http://127.0.0.1:{port}/file/bot",
    )
    line = assert_one_clear_line(code, output, TOKEN, TOKEN.partition(":")[2])
    assert f"cannot reach Telegram at http://127.0.0.1:{port}" in line


@pytest.mark.parametrize(
    "token",
    ["bot5151:E2E-startup-token", "5151:E2E startup token", "5151-E2E-startup-token", "5151:"],
)
def test_a_malformed_token_is_refused_before_any_request(tmp_path: Path, token: str) -> None:
    with ThreadedBotApiServer(token=token) as server:
        code, output = start(
            tmp_path,
            TELEGRAM_BOT_TOKEN=token,
            TELEGRAM_BASE_URL=server.base_url,
            TELEGRAM_BASE_FILE_URL=server.file_url,
        )
        assert server.state.calls == []  # nothing was asked of Telegram
    line = assert_one_clear_line(code, output, token)
    assert "TELEGRAM_BOT_TOKEN: it does not look like a bot token" in line


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL: use one of DEBUG, INFO"),
        (
            {"DATABASE_URL": f"mysql+pymysql://bot:{DB_PASSWORD}@127.0.0.1/chatops"},
            "DATABASE_URL: 'mysql+pymysql' is not supported",
        ),
        (
            {"DATABASE_URL": f"postgresql+psycopg2://bot:{DB_PASSWORD}@127.0.0.1/chatops"},
            "DATABASE_URL: 'postgresql+psycopg2' is not supported",
        ),
        ({"DATABASE_URL": f"not a url {DB_PASSWORD}"}, "DATABASE_URL: not a database URL"),
        ({"SECRET_KEY": "not-a-fernet-key-E2E"}, "SECRET_KEY: SECRET_KEY must be Fernet keys"),
        ({"SEND_CONCURRENCY": "lots"}, "SEND_CONCURRENCY: "),
    ],
    ids=["log-level", "mysql", "sync-driver", "not-a-url", "secret-key", "number"],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], names: str
) -> None:
    port = closed_port()  # never reached: settings are checked first
    code, output = start(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot",
        **env,
    )
    line = assert_one_clear_line(code, output, TOKEN, DB_PASSWORD, "not-a-fernet-key-E2E")
    assert names in line


def test_a_missing_token_says_what_to_set(tmp_path: Path) -> None:
    code, output = start(tmp_path)
    line = assert_one_clear_line(code, output)
    assert "TELEGRAM_BOT_TOKEN is not set" in line


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    with ThreadedBotApiServer(token=TOKEN) as server:
        code, output = start(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_BASE_URL=server.base_url,
            TELEGRAM_BASE_FILE_URL=server.file_url,
            DATABASE_URL=f"postgresql://bot:{DB_PASSWORD}@127.0.0.1:{closed_port()}/chatops",
        )
    line = assert_one_clear_line(code, output, TOKEN, DB_PASSWORD)
    assert "is not reachable or not usable" in line
