"""The services and the tracking answer in the chat's language: refusals, run notes, notices.

Through the real Application: a chat that chose ``/lang id`` gets its input errors (a bad
number, a bad time, a stoplisted recipient) in Indonesian, and so do the notices a scheduled
run writes in the background (a run that cannot be sent, a late run) and the notes stored with
it. The same commands in an English chat read as before, and the input grammar (``in 2h``,
``every 2h``) stays English in both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.services.segments import describe
from bot.tracking.reconcile import RECONCILE_AFTER
from i18n import use_language
from providers.sms_encoding import count_segments
from storage.models import Message, Schedule, ScheduleState
from tests.conftest import USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import T0, at, manual_bot, runner_of, schedule
from tests.tracking_support import FakeClock, tracker_of

NUMBER = "6281234567890"


@pytest.fixture
async def sbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot at T0 whose scheduler runs only when the test says so (English)."""
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    try:
        yield bot
    finally:
        await stop_bot(bot)


@pytest.fixture
async def idbot(sbot: Bot) -> Bot:
    """The same bot, its private chat switched to Indonesian."""
    assert "Bahasa Indonesia" in await sbot.private("/lang id")
    return sbot


async def stored_messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message)))


async def stored_schedules(bot: Bot) -> list[Schedule]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Schedule)))


async def test_a_bad_number_is_refused_in_indonesian_and_nothing_is_stored(idbot: Bot) -> None:
    reply = await idbot.private("/send nusasms:wa 12ab Halo")
    assert "Tidak ada yang dikirim:\n“12ab” bukan nomor telepon." in reply, reply
    assert "not a phone number" not in reply
    assert await stored_messages(idbot) == []
    assert idbot.nusa.sent == []


async def test_a_bad_time_is_refused_in_indonesian_and_nothing_is_scheduled(idbot: Bot) -> None:
    reply = await idbot.private(f"/schedule someday {NUMBER} Halo")
    # The refusal is Indonesian; the forms it offers are typed as they are, in English.
    assert "Saya tidak dapat membaca “someday” sebagai waktu." in reply, reply
    assert "in 2h, tomorrow 09:00, every day 09:00" in reply
    reply = await idbot.private(f"/schedule in 400d {NUMBER} Halo")
    assert "Itu lebih dari setahun ke depan" in reply, reply
    assert await stored_schedules(idbot) == []


async def test_a_stoplisted_recipient_is_refused_in_indonesian(idbot: Bot) -> None:
    await idbot.private(f"/stop {NUMBER}")
    reply = await idbot.private(f"/send nusasms:wa {NUMBER} Halo")
    assert "Tidak ada yang dikirim: 1 penerima ada di daftar blokir obrolan ini" in reply, reply
    assert idbot.nusa.sent == []


async def test_a_scheduled_run_that_cannot_be_sent_tells_the_chat_in_indonesian(
    idbot: Bot,
) -> None:
    await idbot.private(f"/schedule in 1h {NUMBER} Halo")
    await idbot.private("/disconnect nusasms")
    mark = idbot.tg.mark()
    assert await runner_of(idbot).run_due(T0 + timedelta(hours=1)) == 1  # the background path
    (told,) = idbot.replies_since(mark, USER)
    reason = "NusaSMS tidak terhubung di obrolan ini."
    assert reason in told, told
    assert "is not connected" not in told
    row = await schedule(idbot, 1)
    assert row.state == ScheduleState.FAILED
    assert reason in row.note  # stored as it was written: in the chat's language
    assert idbot.nusa.sent == []


async def test_a_late_run_says_so_in_indonesian_on_its_card(idbot: Bot) -> None:
    await idbot.private(f"/schedule every 2h {NUMBER} Ping")
    mark = idbot.tg.mark()
    assert await runner_of(idbot).run_due(T0 + timedelta(hours=8, minutes=5)) == 1
    (card,) = idbot.replies_since(mark, USER)
    assert "terkirim terlambat 5m" in card, card
    assert "jadwal sebelumnya dilewati saat bot tidak berjalan" in card
    assert len(idbot.nusa.sent) == 1


def _timeout(request: httpx.Request) -> Exception:
    return httpx.ReadTimeout("slow", request=request)


async def test_a_lost_answer_is_noted_in_the_chats_language(tbot: Bot, clock: FakeClock) -> None:
    # The tracker's sweep runs outside any update: it writes the note in the chat's language.
    await tbot.connect()
    await tbot.private("/lang id")
    tbot.nusa.raise_next(_timeout, path_contains="message")
    await tbot.private(f"/send nusasms:wa {NUMBER} Halo")
    (message,) = await stored_messages(tbot)
    assert message.state == "unknown"
    assert "mungkin sudah atau belum terkirim" in message.detail, message.detail
    await tracker_of(tbot).tick(datetime.now(UTC) + RECONCILE_AFTER + timedelta(seconds=5))
    (message,) = await stored_messages(tbot)
    assert message.state == "unknown"
    assert "NusaSMS tidak dapat ditanya apakah pesan sudah dikirim" in message.detail
    assert tbot.nusa.sent == []


async def test_english_chats_read_as_before(sbot: Bot) -> None:
    reply = await sbot.private("/send nusasms:wa 12ab Hi")
    assert "Nothing was sent:\n“12ab” is not a phone number." in reply, reply
    reply = await sbot.private(f"/schedule someday {NUMBER} Hi")
    assert "I cannot read “someday” as a time. Use one of: 2026-12-01 09:00" in reply, reply
    await sbot.private(f"/schedule in 1h {NUMBER} Hi")
    await sbot.private("/disconnect nusasms")
    mark = sbot.tg.mark()
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    (told,) = sbot.replies_since(mark, USER)
    assert "NusaSMS is not connected in this chat." in told, told


def test_plural_forms_follow_the_count_in_both_languages() -> None:
    one, two = count_segments("x"), count_segments("x" * 200)
    assert describe(one, "x") == "1 segment (GSM-7, 1 character)"
    assert describe(two, "x" * 200) == "2 segments (GSM-7, 200 characters)"
    with use_language("id"):
        assert describe(one, "x") == "1 segmen (GSM-7, 1 karakter)"
        assert describe(two, "x" * 200) == "2 segmen (GSM-7, 200 karakter)"
