"""The stoplist: /stop, /unstop, /stoplist, and stopped numbers skipped.

Skipped at send, schedule and fire time, compared in E.164, list numbers one by one, and
never silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from storage.models import AuditEntry, Batch, Message, ScheduleState, StopEntry
from tests.conftest import GROUP, USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.lists_support import upload
from tests.schedule_support import T0, at, manual_bot, runner_of, schedule, schedules

A = "6281234567890"
B = "6281234567891"
C = "6281234567892"


@pytest.fixture
async def sbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot at T0 whose scheduler runs only when the test says so."""
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def stopped(bot: Bot, chat_id: int = USER) -> list[str]:
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(StopEntry.number)
            .where(StopEntry.chat_id == chat_id)
            .order_by(col(StopEntry.number))
        )
        return list(rows)


async def sent_to(bot: Bot) -> list[str]:
    return [m.destination for m in bot.nusa.sent]


async def stored_messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


async def test_stop_reads_numbers_as_e164_with_the_chat_country(bot: Bot) -> None:
    await bot.private("/country ID")
    reply = await bot.private("/stop 0812-3456-7890, +62 812 3456 7891")
    assert "Stopped 2 number(s): +6281234567890, +6281234567891" in reply
    assert await stopped(bot) == [f"+{A}", f"+{B}"]
    again = await bot.private(f"/stop {A}")  # the same number, written another way
    assert "Already on the stoplist: 1 (+6281234567890)" in again
    assert "Stopped" not in again
    assert await stopped(bot) == [f"+{A}", f"+{B}"]
    listing = await bot.private("/stoplist")
    assert "<b>Stoplist</b>: 2 number(s)" not in listing  # rendered text, tags gone
    assert "Stoplist: 2 number(s)" in listing
    assert "+6281234567890" in listing
    assert "+6281234567891" in listing


async def test_unstop_removes_and_says_what_was_not_there(bot: Bot) -> None:
    await bot.private(f"/stop +{A}, +{B}")
    reply = await bot.private(f"/unstop +{A}, +{C}")
    assert "Removed 1 number(s) from the stoplist: +6281234567890" in reply
    assert "Not on the stoplist: 1 (+6281234567892)" in reply
    assert await stopped(bot) == [f"+{B}"]
    await bot.private(f"/unstop +{B}")
    assert "stoplist is empty" in await bot.private("/stoplist")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/stop", "Give one or more numbers"),
        ("/stop 12ab", "“12ab” is not a phone number"),
        ("/stop +62 812", "“+62 812” is not a valid phone number"),
        ("/stop 0812 3456 7890", "national number"),  # no /country set
        ("/unstop hello", "“hello” is not a phone number"),
    ],
)
async def test_bad_numbers_get_a_specific_reply_and_change_nothing(
    bot: Bot, command: str, expected: str
) -> None:
    assert expected in await bot.private(command)
    assert await stopped(bot) == []
    async with bot.services.repo.db.read() as s:
        assert list(await s.exec(select(AuditEntry))) == []


async def test_a_send_skips_stopped_numbers_and_the_card_says_so(bot: Bot) -> None:
    await bot.connect()
    await bot.private(f"/stop {B}")
    mark = bot.tg.mark()
    await bot.private(f"/send nusasms:wa {A},{B},{C} Hello")
    assert await sent_to(bot) == [A, C]
    (card,) = bot.replies_since(mark, USER)
    assert "1 recipient skipped, on this chat's stoplist: +6281234567891" in card
    assert [m.recipient for m in await stored_messages(bot)] == [A, C]
    async with bot.services.repo.db.read() as s:
        (entry,) = await s.exec(select(AuditEntry).where(AuditEntry.action == "send"))
    assert entry.outcome == "ok"
    assert entry.detail.endswith("1 skipped (stoplist)")


async def test_a_send_to_stopped_numbers_only_sends_nothing_and_says_so(bot: Bot) -> None:
    await bot.connect()
    await bot.private(f"/stop {A},{B}")
    reply = await bot.private(f"/send {A},{B} Hello")
    assert "Nothing was sent: All 2 recipients are on this chat's stoplist" in reply
    assert bot.nusa.sent == []
    assert await stored_messages(bot) == []
    async with bot.services.repo.db.read() as s:
        assert list(await s.exec(select(Batch))) == []
        refused = list(await s.exec(select(AuditEntry).where(AuditEntry.action == "send")))
    assert [(e.outcome, e.detail) for e in refused] == [
        ("refused", "2 recipient(s) via nusasms:wa: all on the stoplist")
    ]


async def test_list_numbers_are_filtered_one_by_one(bot: Bot) -> None:
    await bot.connect()
    assert "3" in await upload(bot, "team", f"{A}\n{B}\n{C}\n".encode())
    await bot.private(f"/stop +{C}")
    mark = bot.tg.mark()
    await bot.private("/send list:team Hi all")
    assert await sent_to(bot) == [A, B]
    assert any(
        "1 recipient skipped, on this chat's stoplist: +6281234567892" in r
        for r in bot.replies_since(mark, USER)
    )


async def test_the_stoplist_belongs_to_its_chat(bot: Bot) -> None:
    await bot.connect()
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group(f"/stop {A}")
    assert await stopped(bot, GROUP) == [f"+{A}"]
    await bot.private(f"/send {A} Private chats have their own stoplist")
    assert await sent_to(bot) == [A]


async def test_stop_needs_an_operator_and_stoplist_a_viewer(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role 7 viewer")
    await bot.group(f"/stop {A}")
    refused = await bot.group(f"/stop {B}", user_id=7)
    assert "/stop needs the operator role in this chat; you are viewer" in refused
    assert "/unstop needs the operator role" in await bot.group(f"/unstop {A}", user_id=7)
    assert "+6281234567890" in await bot.group("/stoplist", user_id=7)
    assert await stopped(bot, GROUP) == [f"+{A}"]


async def test_schedule_leaves_stopped_numbers_out_and_says_so(sbot: Bot) -> None:
    await sbot.private(f"/stop {B}")
    reply = await sbot.private(f"/schedule in 2h {A},{B} Hello")
    assert "Scheduled send #1" in reply
    assert "1 recipient skipped, on this chat's stoplist: +6281234567891" in reply
    (row,) = await schedules(sbot)
    assert row.recipients == f'["{A}"]'
    refused = await sbot.private(f"/schedule in 2h {B} Hello")
    assert "Nothing was scheduled: The recipient is on this chat's stoplist" in refused
    assert len(await schedules(sbot)) == 1


async def test_a_number_stopped_after_scheduling_is_skipped_when_it_fires(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 2h {A},{B},{C} Hello")
    await sbot.private(f"/stop {B}")
    mark = sbot.tg.mark()
    assert await runner_of(sbot).run_due(T0 + timedelta(hours=2)) == 1
    assert await sent_to(sbot) == [A, C]
    (card,) = sbot.replies_since(mark, USER)
    assert card.startswith(
        "⏰ Scheduled send #1 fired (1 recipient skipped, on this chat's stoplist: "
        "+6281234567891)."
    )
    assert (await schedule(sbot, 1)).state == ScheduleState.DONE


async def test_a_run_whose_every_number_was_stopped_sends_nothing_and_says_so(
    sbot: Bot,
) -> None:
    await sbot.private(f"/schedule in 2h {A} Hello")
    await sbot.private(f"/stop {A}")
    mark = sbot.tg.mark()
    await runner_of(sbot).run_due(T0 + timedelta(hours=2))
    assert sbot.nusa.sent == []
    (told,) = sbot.replies_since(mark, USER)
    assert "Scheduled send #1 could not be sent: Nothing was sent: The recipient is on this " in (
        told
    )
    assert (await schedule(sbot, 1)).state == ScheduleState.FAILED
