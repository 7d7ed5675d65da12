"""The command line: ``chatops-bridge --help | --version | rotate-keys``, ``python -m bench``.

The console script is the one ``pip install`` put beside this interpreter, so the test also
checks the ``[project.scripts]`` entry. ``rotate-keys`` runs against the test's database
(SQLite, or PostgreSQL with ``TEST_DATABASE_URL``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from storage.crypto import CredentialCipher
from storage.db import Database, create_engine, migrate
from storage.models import Credential
from storage.repo import Repository
from tests.databases import database_url
from tests.e2e_support import REPO
from tests.secret_watch import secret

SCRIPT = Path(sys.executable).with_name("chatops-bridge")
NEW, OLD, LOST = (secret(Fernet.generate_key().decode()) for _ in range(3))
VALUES = {"api_key": secret("rotate-api-key-secret")}


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "SECRET_KEY", "DATABASE_URL", "LOG_LEVEL"))
    }
    return subprocess.run(  # noqa: S603 - this interpreter, the installed script
        args,
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_names_the_commands(tmp_path: Path) -> None:
    assert SCRIPT.exists(), "pip install -e . did not install the chatops-bridge script"
    done = run([str(SCRIPT), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: chatops-bridge")
    assert "rotate-keys" in done.stdout
    assert "run" in done.stdout


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    done = run([str(SCRIPT), "--version"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"chatops-bridge {version('chatops-bridge')}"


def test_python_m_bot_takes_the_same_arguments(tmp_path: Path) -> None:
    done = run([sys.executable, "-m", "bot", "--version"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"chatops-bridge {version('chatops-bridge')}"


def test_an_unknown_command_is_refused(tmp_path: Path) -> None:
    done = run([str(SCRIPT), "rotate"], tmp_path)
    assert done.returncode == 2
    assert "invalid choice: 'rotate'" in done.stderr


def test_bench_help_prints_usage(tmp_path: Path) -> None:
    done = run([sys.executable, "-m", "bench", "--help"], REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m bench")
    for name in ("fanout", "ratelimit", "overhead", "tracking", "startup"):
        assert name in done.stdout
    one = run([sys.executable, "-m", "bench", "overhead", "--help"], REPO)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("usage: python -m bench overhead")


async def stored_under(url: str, key: str, chats: int) -> None:
    """``chats`` chats, each with credentials encrypted under ``key``."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        repo = Repository(Database(engine))
        cipher = CredentialCipher([key])
        for chat_id in range(1, chats + 1):
            await repo.ensure_chat(chat_id, kind="private", title="t")
            await repo.save_credential(
                chat_id, "nusasms", secret=cipher.encrypt(VALUES), account="", actor=chat_id
            )
    finally:
        await engine.dispose()


async def secrets_of(url: str) -> list[bytes]:
    engine = create_engine(url)
    try:
        async with Database(engine).read() as s:
            return list(await s.exec(select(Credential.secret).order_by(Credential.chat_id)))
    finally:
        await engine.dispose()


async def test_rotate_keys_re_encrypts_under_the_newest_key_and_counts(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    await stored_under(url, OLD, chats=2)

    done = run([str(SCRIPT), "rotate-keys"], tmp_path, DATABASE_URL=url, SECRET_KEY=f"{NEW},{OLD}")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "re-encrypted 2 stored credentials under the newest SECRET_KEY"
    newest_only = CredentialCipher([NEW])
    assert [newest_only.decrypt(s) for s in await secrets_of(url)] == [VALUES, VALUES]
    again = run([str(SCRIPT), "rotate-keys"], tmp_path, DATABASE_URL=url, SECRET_KEY=NEW)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "re-encrypted 0 stored credentials under the newest SECRET_KEY"


async def test_rotate_keys_says_which_credentials_no_key_reads(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    await stored_under(url, LOST, chats=1)

    done = run([str(SCRIPT), "rotate-keys"], tmp_path, DATABASE_URL=url, SECRET_KEY=f"{NEW},{OLD}")

    assert done.returncode == 1
    assert "re-encrypted 0 stored credentials" in done.stdout
    assert "1 stored credentials match no key in SECRET_KEY" in done.stderr
    for key in (NEW, OLD, LOST):
        assert key not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "rotate-keys needs SECRET_KEY"),
        ({"SECRET_KEY": "not-a-key"}, "SECRET_KEY: SECRET_KEY must be Fernet keys"),
        ({"SECRET_KEY": NEW}, "there is no database at"),
    ],
    ids=["no-key", "bad-key", "no-database"],
)
def test_rotate_keys_without_usable_keys_is_one_line(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    done = run([str(SCRIPT), "rotate-keys"], tmp_path, DATABASE_URL=url, **env)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert says in lines[0]
    assert not (tmp_path / "data").exists()  # no key generated, no database created
