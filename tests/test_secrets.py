"""A representative flow leaves no credential in the log, the chat or the database.

The bot connects both providers (one line, guided dialogue, a wrong key, a key typed into a
group), sends on three routes and answers the read commands. Then its log (down to DEBUG for
its own loggers and PTB's, formatted as the bot formats it), every Bot API call it made and
the database (the SQLite files byte for byte, or every row of every table on PostgreSQL) are
searched for every test secret (``tests/secret_watch.py``). Three canaries planted on
purpose, one per place, must be found: they show the search itself works. The whole run
gets the same search in ``conftest.py`` (``pytest_sessionfinish``).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.__main__ import secret_values
from bot.logs import FORMAT, RedactingFormatter
from storage.models import AuditEntry
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.databases import TEST_DATABASE_URL
from tests.fakes.nusasms import TEST_SMS_PASSWORD, FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import FakeTelegram
from tests.secret_watch import SECRETS, Watch, secret

WRONG_KEY = secret("wrong-nusasms-key-typed")
NUMBER = "6281234567890"


async def converse(bot: Bot) -> None:
    """Connect, send and read as a team would."""
    reply = await bot.private(
        f"/connect nusasms api_key={NUSA_KEY} sms_user=sms-user sms_password={TEST_SMS_PASSWORD}"
    )
    assert "connected" in reply, reply
    reply = await bot.private(f"/connect nusasms api_key={WRONG_KEY}")
    assert "connected" not in reply, reply
    reply = await bot.private("/connect parrotica")
    for value in (DEFAULT_KEY, DEFAULT_USER, "-", "-"):  # the guided dialogue, field by field
        reply = await bot.private(value)
        if "connected" in reply:
            break
    assert "connected" in reply, reply
    await bot.group(f"/connect nusasms api_key={NUSA_KEY}")  # deleted, never stored
    for command in (
        f"/send nusasms:wa {NUMBER} Hello on WhatsApp",
        f"/send nusasms:sms {NUMBER} Hello by SMS",
        f"/send parrotica {NUMBER} Hello via Parrotica",
        "/status",
        "/status 1",
        "/providers",
        "/balance",
        "/history",
    ):
        assert await bot.private(command), command
    await bot.private("/export")  # answered with a CSV document


def sqlite_files(folder: Path) -> list[tuple[str, bytes]]:
    """The SQLite database and its WAL, byte for byte."""
    return [(f"the file {p.name}", p.read_bytes()) for p in sorted(folder.glob("bot.db*"))]


async def table_rows(bot: Bot) -> list[tuple[str, bytes]]:
    """PostgreSQL keeps its files to itself: every row of every table instead."""
    dumps = []
    async with bot.services.repo.db.read() as s:
        connection = await s.connection()
        for table in SQLModel.metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            dumps.append((f"the table {table.name}", repr(rows).encode()))
    return dumps


async def test_no_secret_in_the_log_the_chat_or_the_database(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, caplog: pytest.LogCaptureFixture
) -> None:
    canaries = {place: f"canary-{place}-{uuid.uuid4().hex}" for place in ("log", "chat", "db")}
    watch = Watch({*SECRETS, *canaries.values()})
    for name in ("bot", "providers", "storage", "telegram"):
        caplog.set_level(logging.DEBUG, logger=name)
    settings = make_settings(tmp_path)
    bot = await start_bot(settings, tg, nusa)
    try:
        await converse(bot)
        logging.getLogger("bot.canary").warning("planted %s", canaries["log"])
        await bot.app.bot.send_message(USER, f"planted {canaries['chat']}")
        async with bot.services.repo.db.write() as s:
            s.add(AuditEntry(chat_id=GROUP, user_id=USER, action="x", detail=canaries["db"]))
        for call in tg.calls:
            watch.observe_call(call.method, call.params)
        stored = await table_rows(bot) if TEST_DATABASE_URL else []
    finally:
        await stop_bot(bot)
    if not TEST_DATABASE_URL:
        stored = sqlite_files(tmp_path)  # closed: the WAL is checkpointed into the file
    # The log as the bot writes it: its formatter masks the token and SECRET_KEY (PTB itself
    # logs the token in its URLs at DEBUG); nothing masks a provider's key or password.
    formatter = RedactingFormatter(FORMAT, secret_values(settings))
    watch.observe("the log", "\n".join(formatter.format(r) for r in caplog.records))
    for where, data in stored:
        watch.observe_bytes(where, data)

    found = {hit.secret: hit.where for hit in watch.hits}
    assert canaries["log"] in found, "the log search found nothing planted"
    assert canaries["chat"] in found, "the Bot API search found nothing planted"
    assert canaries["db"] in found, "the database search found nothing planted"
    leaked = [hit.describe() for hit in watch.hits if hit.secret in SECRETS]
    assert leaked == []
    assert len(tg.calls_to("sendMessage")) > 10  # the flow really talked
    assert tg.calls_to("sendDocument")  # the export too


def test_a_secret_needs_enough_characters_to_be_searched_for() -> None:
    with pytest.raises(ValueError, match="6\\+ characters"):
        secret("abc")


async def test_a_key_typed_without_its_name_is_not_echoed(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    typed = "bare-key-0123456789abcdef"  # not registered: the whole run must not fail on it
    watch = Watch({typed})
    mark = bot.tg.mark()
    await bot.private(f"/connect nusasms {typed}")
    for call in bot.tg.calls[mark:]:
        watch.observe_call(call.method, call.params)
    watch.observe("the log", caplog.text)
    assert [hit.describe() for hit in watch.hits] == []
