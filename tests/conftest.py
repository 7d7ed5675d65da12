"""Shared fixtures: a migrated temporary database, and the whole bot running offline.

``bot`` is the real Application with the offline Telegram layer (``tg``) and the fake NusaSMS
API (``nusa``) behind ``httpx.MockTransport``; updates go through ``process_update``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_application, close_resources, start_resources
from bot.config import Settings
from bot.context import BotApplication
from bot.logs import quiet_libraries
from bot.services import Services
from storage.db import Database, create_engine, migrate
from storage.repo import Repository
from tests.databases import database_url, drop_all, release
from tests.fakes.courier import FakeCourier
from tests.fakes.nusasms import TEST_API_KEY, FakeNusaSms
from tests.fakes.parrotica import FakeParrotica
from tests.fakes.telegram import (
    FakeTelegram,
    OfflineRequest,
    feed,
    group_message,
    private_message,
)
from tests.secret_watch import WATCH

# PTB deprecates RetryAfter.retry_after as a number; opt in to the new behaviour so the
# warning (an error under filterwarnings=error) never fires.
os.environ.setdefault("PTB_TIMEDELTA", "1")

# The tracking tests' fixtures (clock, tbot) live beside their helpers.
pytest_plugins = ["tests.tracking_support"]


# -- no test secret leaks (tests/secret_watch.py) ---------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Log as the bot does: its library loggers quieted (``bot.logs.quiet_libraries``)."""
    quiet_libraries()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every test phase's captured log records, stdout and stderr."""
    for name, content in report.sections:
        WATCH.observe(name.lower(), content, test=report.nodeid)


@pytest.fixture(scope="session", autouse=True)
def _secret_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the run, every file the tests and the bot processes left behind."""
    yield
    WATCH.scan_files(tmp_path_factory.getbasetemp())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A secret found anywhere fails the run, whatever the tests said."""
    if WATCH.hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which secrets leaked, where, and during which test."""
    if not WATCH.hits:
        return
    terminalreporter.write_sep("=", "test secrets leaked (tests/secret_watch.py)", red=True)
    for hit in WATCH.hits:
        terminalreporter.write_line(hit.describe(), red=True)


@pytest.fixture(scope="session", autouse=True)
def _test_databases() -> Iterator[None]:
    """PostgreSQL runs: drop the per-test databases at the end (and any a killed run left)."""
    drop_all()
    yield
    drop_all()


@pytest.fixture(autouse=True)
def _release_test_databases() -> Iterator[None]:
    """PostgreSQL runs: empty the test's databases for the next test (set up first, ends last)."""
    yield
    release()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh database (SQLite file, or PostgreSQL with TEST_DATABASE_URL), migrated."""
    engine = create_engine(database_url(tmp_path, "test"))
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def db(engine: AsyncEngine) -> Database:
    """The fresh database's sessions."""
    return Database(engine)


@pytest.fixture
def repo(db: Database) -> Repository:
    """The repository over the fresh database."""
    return Repository(db)


# -- the whole bot, offline --------------------------------------------------------------------


NUSASMS_BASE = "http://nusasms.test/nusasms_api/1.0"
NUSASMS_SMS_BASE = "http://nusasms.test/api"
USER = 1
GROUP = -100123
NUSA_KEY = TEST_API_KEY
PARROTICA_BASE = "http://parrotica.test"
COURIER_BASE = "http://courier.test"
COURIER_IDENTITY = "http://identity.test"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for an offline bot with its database under ``tmp_path``."""
    values: dict[str, object] = {
        "telegram_bot_token": "123:ABC",
        "database_url": database_url(tmp_path),
        "secret_key": Fernet.generate_key().decode(),
        "nusasms_base_url": NUSASMS_BASE,
        "nusasms_sms_base_url": NUSASMS_SMS_BASE,
        "nusasms_min_interval": 0.0,
        "parrotica_base_url": PARROTICA_BASE,
        "courier_base_url": COURIER_BASE,
        "courier_identity_url": COURIER_IDENTITY,
        "status_poll_seconds": 15.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


class Bot:
    """The application under test with its fakes and shortcuts to drive it."""

    def __init__(
        self,
        app: BotApplication,
        tg: FakeTelegram,
        nusa: FakeNusaSms,
        parrotica: FakeParrotica | None = None,
        courier: FakeCourier | None = None,
    ) -> None:
        self.app = app
        self.tg = tg
        self.nusa = nusa
        self.parrotica = parrotica or FakeParrotica()
        self.courier = courier or FakeCourier()

    @property
    def services(self) -> Services:
        services = self.app.bot_data.services
        assert services is not None
        return services

    async def private(self, text: str, *, user_id: int = USER, **kwargs: Any) -> str:
        """Send ``text`` in the user's private chat; return the bot's last reply there."""
        mark = self.tg.mark()
        await feed(self.app, private_message(text, user_id=user_id, **kwargs))
        return self.replies_since(mark, user_id)[-1] if self.replies_since(mark, user_id) else ""

    async def group(
        self, text: str, *, user_id: int = USER, chat_id: int = GROUP, **kwargs: Any
    ) -> str:
        """Send ``text`` in a group; return the bot's last reply there."""
        mark = self.tg.mark()
        await feed(self.app, group_message(text, chat_id=chat_id, user_id=user_id, **kwargs))
        replies = self.replies_since(mark, chat_id)
        return replies[-1] if replies else ""

    def replies_since(self, mark: int, chat_id: int) -> list[str]:
        """Texts the bot sent to ``chat_id`` since ``mark`` (as rendered by Telegram)."""
        return [
            str(c.result.get("text", ""))
            for c in self.tg.calls[mark:]
            if c.method in ("sendMessage", "sendDocument")
            and c.ok
            and int(c.params.get("chat_id", 0)) == chat_id
        ]

    async def connect(self, chat_id: int = USER) -> None:
        """Connect NusaSMS with the fake's key in the user's private chat."""
        reply = await self.private(f"/connect nusasms api_key={NUSA_KEY}")
        assert "connected" in reply, reply
        if chat_id != USER:
            raise AssertionError("use the deep-link flow for groups")


@pytest.fixture
def tg() -> FakeTelegram:
    """The offline Telegram Bot API."""
    return FakeTelegram()


@pytest.fixture
def nusa() -> FakeNusaSms:
    """The fake NusaSMS API."""
    return FakeNusaSms(retry_after="0")


def providers_transport(
    nusa: FakeNusaSms, parrotica: FakeParrotica, courier: FakeCourier | None = None
) -> httpx.MockTransport:
    """One transport for every provider fake, routed by host as the real network would.

    courier and its identity service are two hosts served by one fake.
    """
    parrotica_host = httpx.URL(PARROTICA_BASE).host
    courier_hosts = {httpx.URL(COURIER_BASE).host, httpx.URL(COURIER_IDENTITY).host}
    courier_fake = courier if courier is not None else FakeCourier()

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == parrotica_host:
            return parrotica(request)
        if request.url.host in courier_hosts:
            return courier_fake(request)
        return nusa(request)

    return httpx.MockTransport(route)


async def start_bot(
    settings: Settings,
    tg: FakeTelegram,
    nusa: FakeNusaSms,
    parrotica: FakeParrotica | None = None,
    courier: FakeCourier | None = None,
) -> Bot:
    """Build, initialise and start the bot's resources (what run_polling would do)."""
    parrotica = parrotica or FakeParrotica()
    courier = courier or FakeCourier()
    app = build_application(
        settings,
        request=OfflineRequest(tg),
        provider_transport=providers_transport(nusa, parrotica, courier),
        rate_limit=False,
    )
    await app.initialize()
    await start_resources(app)
    return Bot(app, tg, nusa, parrotica, courier)


async def stop_bot(bot: Bot) -> None:
    """Close what start_bot opened."""
    await close_resources(bot.app)
    await bot.app.shutdown()


@pytest.fixture
async def bot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A running offline bot."""
    started = await start_bot(make_settings(tmp_path), tg, nusa)
    try:
        yield started
    finally:
        await stop_bot(started)
