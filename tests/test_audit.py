"""The audit log: one row per state-changing action (who, chat, what, when, outcome).

Rows are written through ``storage.audit.record`` and read with /audit by admins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from storage.audit import DETAIL_MAX, AuditLog, record
from storage.db import Database
from storage.models import AuditEntry, Chat
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.lists_support import upload
from tests.schedule_support import T0, at, manual_bot

NUMBER = "6281234567890"
MEMBER = 7


@pytest.fixture
async def sbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    bot = await manual_bot(tmp_path, tg, nusa)
    at(bot, T0)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def audit_rows(bot: Bot, chat_id: int = USER) -> list[AuditEntry]:
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(AuditEntry).where(AuditEntry.chat_id == chat_id).order_by(col(AuditEntry.id))
        )
        return list(rows)


async def test_every_state_changing_action_is_one_audit_row(sbot: Bot) -> None:
    steps: list[tuple[str, str]] = [
        (f"/connect nusasms api_key={NUSA_KEY}", "connect"),
        (f"/send {NUMBER} Hello", "send"),
        (f"/schedule in 2h {NUMBER} Later", "schedule"),
        ("/reschedule 1 in 3h", "reschedule"),
        ("/cancel 1", "unschedule"),
        (f"/stop {NUMBER}", "stop"),
        (f"/unstop {NUMBER}", "unstop"),
        ("/template add promo Hi {name}", "template add"),
        ("/template del promo", "template del"),
        ("/list del team", "list del"),
        ("/disconnect nusasms", "disconnect"),
    ]
    actions: list[str] = []
    for command, action in steps:
        if action == "list del":
            assert "1" in await upload(sbot, "team", f"{NUMBER}\n".encode())
            actions.append("list add")
        before = len(await audit_rows(sbot))
        await sbot.private(command)
        rows = await audit_rows(sbot)
        assert [r.action for r in rows[before:]] == [action], command
        actions.append(action)
    rows = await audit_rows(sbot)
    assert [r.action for r in rows] == actions
    assert {(r.chat_id, r.user_id, r.outcome) for r in rows} == {(USER, USER, "ok")}
    assert all(r.at is not None for r in rows)
    assert all(NUSA_KEY not in r.detail for r in rows)  # never the credential values
    assert all("Hello" not in r.detail and "Later" not in r.detail for r in rows)


async def test_role_changes_and_refused_attempts_are_audited(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group(f"/role {MEMBER} viewer")
    refused = await bot.group(f"/stop {NUMBER}", user_id=MEMBER)
    assert "needs the operator role" in refused
    await bot.group("/stoplist", user_id=MEMBER)  # a viewer's read: nothing to audit
    rows = await audit_rows(bot, GROUP)
    assert [(r.user_id, r.action, r.outcome, r.detail) for r in rows] == [
        (USER, "role", "ok", f"{MEMBER}=viewer"),
        (MEMBER, "stop", "refused", "needs the operator role"),
    ]


async def test_audit_shows_the_latest_entries_escaped_to_admins_only(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group(f"/role {MEMBER} operator")
    log = AuditLog(bot.services.repo.db)
    for n in range(25):
        await log.write(GROUP, MEMBER, "template add", f"<b>t{n}</b> & co")
    text = await bot.group("/audit")
    assert text.startswith("Audit log, newest first (UTC)")
    assert "<b>t24</b> & co" in text  # escaped by the bot, so shown as typed
    assert "t4</b>" not in text  # the 20 newest: t24 … t5
    assert "<b>t5</b>" in text
    assert "template add · ✅ ok" in text
    assert "<b>t0</b>" in await bot.group("/audit 100")
    assert text.count("template add") == 20
    assert "<b>t22</b>" not in await bot.group("/audit 2")
    for bad in ("/audit 0", "/audit 101", "/audit many", "/audit 5 6"):
        assert "/audit takes a number of entries from 1 to 100" in await bot.group(bad)
    refused = await bot.group("/audit", user_id=MEMBER)
    assert "/audit needs the admin role in this chat; you are operator" in refused


async def test_a_long_audit_log_fits_one_message(bot: Bot) -> None:
    log = AuditLog(bot.services.repo.db)
    await bot.private("/start")
    for n in range(100):
        await log.write(USER, USER, "send", f"send {n}: " + "x" * 300)
    text = await bot.private("/audit 100")
    assert len(text) < 4096
    assert "older entries that do not fit" in text


async def test_an_empty_log_says_so(bot: Bot) -> None:
    assert "Nothing in this chat's audit log yet" in await bot.private("/audit")


async def test_record_joins_the_callers_transaction(db: Database) -> None:
    async with db.write() as s:
        s.add(Chat(id=1))

    async def failing_action() -> None:
        async with db.write() as s:
            record(s, chat_id=1, user_id=2, action="approve", detail="send 3")
            raise RuntimeError("the action failed: its audit row goes with it")

    with pytest.raises(RuntimeError):
        await failing_action()
    async with db.write() as s:
        record(s, chat_id=1, user_id=2, action="approve", detail="y" * 1000, outcome="refused")
    (row,) = await AuditLog(db).latest(1, 10)
    assert (row.action, row.outcome, len(row.detail)) == ("approve", "refused", DETAIL_MAX)
