"""The providers' words in an Indonesian chat, through the real Application.

A provider's refusal (an error raised in ``providers/``), a vendor status code's meaning, a
status meaning from a vendor's table (stored in English, translated where it is shown), a
route error from the registry, a /connect credential prompt and the unit of a provider's
documented price all reach a chat that chose ``/lang id`` in Indonesian; a chat that did not
still reads the English.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import Credential, Message
from tests.conftest import NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def small(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot that confirms sends to more than 3 recipients (and shows their cost)."""
    started = await start_bot(make_settings(tmp_path, confirm_above=3), tg, nusa)
    await started.connect()
    try:
        yield started
    finally:
        await stop_bot(started)


async def _indonesian(bot: Bot) -> None:
    assert "Bahasa Indonesia" in await bot.private("/lang id")


async def _credentials(bot: Bot) -> list[Credential]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Credential).where(Credential.chat_id == USER)))


async def test_a_provider_outage_is_told_in_indonesian_and_nothing_is_stored(bot: Bot) -> None:
    await _indonesian(bot)
    bot.nusa.fail_next(503, {"error": True, "message": "maintenance"})
    reply = await bot.private(f"/connect nusasms api_key={NUSA_KEY}")
    assert "NusaSMS untuk sementara tidak tersedia (HTTP 503): maintenance." in reply, reply
    assert "temporarily unavailable" not in reply
    assert await _credentials(bot) == []


async def test_the_same_outage_stays_english_in_an_english_chat(bot: Bot) -> None:
    bot.nusa.fail_next(503, {"error": True, "message": "maintenance"})
    reply = await bot.private(f"/connect nusasms api_key={NUSA_KEY}")
    assert "NusaSMS is temporarily unavailable (HTTP 503): maintenance." in reply, reply
    assert "tidak tersedia" not in reply
    assert await _credentials(bot) == []


async def test_a_vendor_status_code_is_explained_in_indonesian(bot: Bot) -> None:
    await _indonesian(bot)
    reply = await bot.private(
        f"/connect nusasms api_key={NUSA_KEY} sms_user=sms-user sms_password=sms-password"
    )
    assert await _credentials(bot), reply
    bot.nusa.sms_status_next("-78")
    reply = await bot.private("/send nusasms:sms 6281234567890 Halo")
    # The code's meaning comes from the vendor's table (providers/nusasms_codes.py).
    assert "NusaSMS SMS: batas harian untuk nomor ini tercapai (24 jam)" in reply, reply
    assert "(status -78 LIMIT REACHED FOR DESTINATION NUMBER)" in reply
    async with bot.services.repo.db.read() as s:
        [message] = list(await s.exec(select(Message)))
    assert message.state == "failed"
    assert bot.nusa.sms_sent == []


async def test_a_status_meaning_is_stored_in_english_and_shown_in_the_chats_language(
    bot: Bot,
) -> None:
    await bot.connect()
    await bot.private("/send nusasms:wa 6281234567890 Hello")
    bot.nusa.set_status(bot.nusa.sent[-1].ref_no, "F")
    english = await bot.private("/status 1")
    assert "failed; the WA credit is refunded" in english, english
    async with bot.services.repo.db.read() as s:
        [message] = list(await s.exec(select(Message)))
    # One stored text serves every language: the table's English, translated when shown.
    assert message.detail == "failed; the WA credit is refunded"
    await _indonesian(bot)
    indonesian = await bot.private("/status 1")
    assert "gagal; kredit WA dikembalikan" in indonesian, indonesian
    assert "the WA credit is refunded" not in indonesian


async def test_an_unknown_route_is_refused_in_indonesian(bot: Bot) -> None:
    await bot.connect()
    await _indonesian(bot)
    reply = await bot.private("/use nusasms:fax")
    assert "NusaSMS tidak memiliki kanal “fax”. Coba nusasms:wa" in reply, reply
    reply = await bot.private("/use twilio")
    assert "Penyedia “twilio” tidak dikenal. Rute yang dikenal: nusasms:wa" in reply, reply


async def test_a_credential_prompt_is_asked_in_indonesian(bot: Bot) -> None:
    await _indonesian(bot)
    reply = await bot.private("/connect parrotica")
    assert "kunci API Parrotica (x-api-key)" in reply, reply
    assert "the Parrotica API key" not in reply


async def test_a_documented_price_is_in_the_chats_language(small: Bot) -> None:
    recipients = ",".join(f"62812000000{n:02d}" for n in range(4))
    english = await small.private(f"/send nusasms:wa {recipients} Hi")
    assert "Estimated cost: 4 credits" in english, english
    await _indonesian(small)
    indonesian = await small.private(f"/send nusasms:wa {recipients} Hi")
    assert "4 kredit" in indonesian, indonesian
    assert "4 credits" not in indonesian
    assert small.nusa.sent == []
