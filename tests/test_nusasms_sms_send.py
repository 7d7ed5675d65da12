"""SMS through the chat.

/send nusasms:sms and :smsgroup, --otp, segments, /status, /balance, /connect with the SMS
login, the number forms, and the documented test server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from storage.models import Credential, Message
from tests.confirm_support import confirm
from tests.conftest import NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import DEV_TESTING_API_KEY, FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.nusasms_support import SMS_LOGIN, HookedFake, connect_sms, stored_messages


@pytest.fixture
async def hooked(tmp_path: Path, tg: FakeTelegram) -> AsyncIterator[Bot]:
    """A bot whose NusaSMS fake can watch requests as they arrive."""
    started = await start_bot(make_settings(tmp_path), tg, HookedFake(retry_after="0"))
    try:
        yield started
    finally:
        await stop_bot(started)


async def test_sms_shows_segments_before_and_after_sending(hooked: Bot) -> None:
    await connect_sms(hooked)
    fake = hooked.nusa
    assert isinstance(fake, HookedFake)
    seen_before_send: list[list[str]] = []

    def watch(request: httpx.Request) -> None:
        if request.url.path.endswith("/sendsms/plain"):
            seen_before_send.append(list(hooked.tg.sent_texts(USER)))

    fake.hook = watch
    text = "Promo " + "x" * 194  # 200 GSM-7 characters: 2 parts
    mark = hooked.tg.mark()
    await hooked.private(f"/send nusasms:sms 6281234567890,6281234567891 {text}")
    preview, card = hooked.replies_since(mark, USER)
    assert preview == "📏 2 segments (GSM-7, 200 characters) × 2 recipients = 4 SMS parts."
    # The preview was already in the chat when NusaSMS got the first SMS.
    assert preview in seen_before_send[0]
    assert "📏 2 segments (GSM-7, 200 characters) per SMS, 4 parts in all" in card
    assert "accepted 2" in card
    assert [m.text for m in fake.sms_sent] == [text, text]


async def test_non_gsm_text_goes_as_unicode_and_says_why(bot: Bot) -> None:
    await connect_sms(bot)
    mark = bot.tg.mark()
    await bot.private("/send nusasms:sms 6281234567890 Terima kasih 🙏")
    preview, card = bot.replies_since(mark, USER)
    assert "UCS-2 because of 🙏" in preview
    assert "UCS-2 because of 🙏" in card
    [sms] = bot.nusa.sms_sent
    assert sms.unicode
    assert not sms.otp


async def test_otp_flag_after_the_route(bot: Bot) -> None:
    await connect_sms(bot)
    reply = await bot.private("/send nusasms:sms --otp 6281234567890 Kode OTP 123456")
    assert "accepted" in reply, reply
    [sms] = bot.nusa.sms_sent
    assert sms.otp
    assert sms.text == "Kode OTP 123456"
    await bot.private("/use nusasms:sms")
    await bot.private("/send --otp 6281234567891 Kode 654321")  # with the default route
    assert bot.nusa.sms_sent[-1].otp


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/send nusasms:wa --otp 6281234567890 Hi", "--otp does not apply to nusasms:wa"),
        ("/send nusasms:sms --fast 6281234567890 Hi", "Unknown option --fast"),
        ("/send nusasms:sms 6281234567890 " + "a" * 1600, "allows at most 1530"),
        ("/send nusasms:sms 6281234567890 " + "ā" * 700, "would take 11 parts"),
        ("/send nusasms:sms 6281234567890", "text is empty"),
        ('/send nusasms:smsgroup "Sales Team Hi', "no closing quote"),
    ],
)
async def test_bad_sms_input_is_refused_before_anything_is_stored(
    bot: Bot, command: str, expected: str
) -> None:
    await connect_sms(bot)
    mark = bot.tg.mark()
    replies = [await bot.private(command)]
    replies += bot.replies_since(mark, USER)
    assert any(expected in r for r in replies), replies
    assert not any(r.startswith("📏") for r in replies)  # no preview for a refused send
    assert await stored_messages(bot) == []
    assert bot.nusa.sms_sent == []


async def test_sms_without_the_sms_login_says_how_to_add_it(bot: Bot) -> None:
    await bot.connect()  # the WhatsApp key only
    reply = await bot.private("/send nusasms:sms 6281234567890 Halo")
    assert "nusasms:sms needs sms_user, sms_password" in reply, reply
    assert "/connect nusasms sms_user=… sms_password=…" in reply
    assert await stored_messages(bot) == []
    reply = await bot.private(f"/connect nusasms {SMS_LOGIN}")  # the API key is kept
    assert "connected" in reply, reply
    assert "accepted" in await bot.private("/send nusasms:sms 6281234567890 Halo")


async def test_group_send_stores_and_shows_the_campaign(bot: Bot) -> None:
    await connect_sms(bot)
    bot.nusa.sms_groups["Sales Team"] = ["6281200000009"]
    mark = bot.tg.mark()
    await bot.private('/send nusasms:smsgroup "Sales Team" Rapat jam 9')
    preview, plan = bot.replies_since(mark, USER)
    assert preview == "📏 1 segment (GSM-7, 11 characters) per recipient of the group."
    assert "1 of them provider group" in plan, plan  # a group counts as more: confirmed
    assert not bot.nusa.sms_campaigns
    card = await confirm(bot)
    [campaign] = bot.nusa.sms_campaigns
    assert campaign.group == "Sales Team"
    assert campaign.text == "Rapat jam 9"
    assert f"Sales Team: campaign {campaign.campaign_name}" in card
    [message] = await stored_messages(bot)
    assert (message.recipient, message.provider_ref) == ("Sales Team", campaign.campaign_name)
    status = await bot.private(f"/status {message.id}")
    assert campaign.campaign_name in status
    assert "no delivery report for a group campaign" in status
    assert not any(r.url.params.get("cmd") == "DR" for r in bot.nusa.requests)


async def test_unknown_group_gets_the_documented_meaning(bot: Bot) -> None:
    await connect_sms(bot)
    await bot.private("/send nusasms:smsgroup Nobody Halo")
    reply = await confirm(bot)
    assert "group does not exist or has no contacts" in reply, reply
    assert "failed" in reply


async def test_status_of_an_sms_asks_for_its_delivery_report(bot: Bot) -> None:
    await connect_sms(bot)
    await bot.private("/send nusasms:sms 6281234567890 Halo")
    [sms] = bot.nusa.sms_sent
    bot.nusa.set_sms_dr(sms.messageid, "DELIVERED")
    reply = await bot.private("/status 1")
    assert "delivered" in reply, reply
    dr = bot.nusa.requests[-1]
    assert dr.url.path.endswith("/api/command")
    assert (dr.url.params["cmd"], dr.url.params["ref_no"]) == ("DR", sms.messageid)


async def test_balance_includes_the_sms_api_credits(bot: Bot) -> None:
    await connect_sms(bot)
    bot.nusa.credit.sms_balance = 777
    reply = await bot.private("/balance")
    assert "SMS API credits: 777 credits" in reply, reply
    assert "WA: 1,000 credits" in reply
    await bot.private("/disconnect nusasms")
    await bot.connect()  # without the SMS login: no CREDITS call
    before = len(bot.nusa.requests)
    reply = await bot.private("/balance")
    assert "SMS API credits" not in reply
    assert all(r.url.params.get("cmd") != "CREDITS" for r in bot.nusa.requests[before:])


async def test_connect_verifies_the_sms_login(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private("/connect nusasms sms_user=sms-user sms_password=wrong")
    assert "refused these credentials, so nothing was stored" in reply, reply
    assert "user name or password is invalid" in reply
    assert "wrong" not in reply  # never echo a secret
    async with bot.services.repo.db.read() as s:
        [cred] = list(await s.exec(select(Credential)))
    stored = bot.services.accounts._cipher.decrypt(cred.secret)
    assert "sms_password" not in stored  # the earlier credentials are unchanged
    reply = await bot.private(f"/connect nusasms api_key={NUSA_KEY} sms_user=sms-user")
    assert "sms_user and sms_password together" in reply, reply


@pytest.mark.parametrize(
    ("written", "country"),
    [("+62 812-3456-7890", None), ("081234567890", "ID"), ("6281234567890", None)],
)
async def test_sms_number_forms(bot: Bot, written: str, country: str | None) -> None:
    await connect_sms(bot)
    if country:
        await bot.private(f"/country {country}")
    reply = await bot.private(f"/send nusasms:sms {written} Halo")
    assert "accepted" in reply, reply
    assert bot.nusa.sms_sent[0].destination == "6281234567890"  # digits, no +


async def test_a_national_number_without_a_country_is_refused(bot: Bot) -> None:
    await connect_sms(bot)
    reply = await bot.private("/send nusasms:sms 081234567890 Halo")
    assert "set the chat's country with /country" in reply, reply
    assert bot.nusa.sms_sent == []


# -- the documented test server -----------------------------------------------------------------

DEV_BASE = "https://dev.nusasms.com/nusasms_api/1.0"


@pytest.fixture
async def dev_bot(tmp_path: Path, tg: FakeTelegram) -> AsyncIterator[Bot]:
    """The bot pointed at NusaSMS's test server (faked), as README describes."""
    fake = FakeNusaSms(dev_server=True, retry_after="0")
    started = await start_bot(make_settings(tmp_path, nusasms_base_url=DEV_BASE), tg, fake)
    try:
        yield started
    finally:
        await stop_bot(started)


@pytest.mark.parametrize(
    ("ref", "state"),
    [
        ("queued", "accepted"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("aborted", "aborted"),
        ("failed", "failed"),
    ],
)
async def test_dev_server_magic_refs(dev_bot: Bot, ref: str, state: str) -> None:
    reply = await dev_bot.private(f"/connect nusasms api_key={DEV_TESTING_API_KEY}")
    assert "connected" in reply, reply
    assert "accepted" in await dev_bot.private("/send nusasms:wa 6281234567890 Test")
    assert all(r.url.host == "dev.nusasms.com" for r in dev_bot.nusa.requests)
    async with dev_bot.services.repo.db.write() as s:
        # Point the stored message at one of the test server's magic ref_nos.
        await s.exec(update(Message).where(col(Message.id) == 1).values(provider_ref=ref))
    reply = await dev_bot.private("/status 1")
    assert f"{state}" in reply.splitlines()[1], reply
    assert dev_bot.nusa.requests[-1].url.path.endswith(f"/whatsapp/status/{ref}")
