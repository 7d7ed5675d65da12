"""/connect, /disconnect, /providers, /use: credentials verified, encrypted, never echoed."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from sqlmodel import select

from providers.registry import REGISTRY
from storage.models import AuditEntry, Credential
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import Call, FakeTelegram
from tests.secret_watch import secret

WRONG_KEY = secret("wrong-key")


def _button_call(bot: Bot, mark: int) -> Call:
    return next(
        c
        for c in bot.tg.calls[mark:]
        if c.method == "sendMessage" and c.params.get("reply_markup")
    )


async def _stored(bot: Bot, chat_id: int) -> Credential | None:
    return await bot.services.repo.get_credential(chat_id, "nusasms")


async def test_one_line_connect_verifies_encrypts_and_deletes_the_message(bot: Bot) -> None:
    reply = await bot.private(f"/connect nusasms api_key={NUSA_KEY}")
    assert "NusaSMS connected" in reply
    assert NUSA_KEY not in reply
    assert bot.tg.calls_to("deleteMessage"), "the message holding the key must be deleted"
    assert any(r.url.path.endswith("/auth/api_key") for r in bot.nusa.requests)
    cred = await _stored(bot, USER)
    assert cred is not None
    assert NUSA_KEY.encode() not in cred.secret
    stored = await bot.services.accounts.stored_values(USER, REGISTRY["nusasms"])
    assert stored["api_key"] == NUSA_KEY
    chat = await bot.services.repo.get_chat(USER)
    assert chat is not None
    assert chat.default_route == "nusasms:wa"
    async with bot.services.repo.db.read() as s:
        audit = list(await s.exec(select(AuditEntry)))
    assert [a.action for a in audit] == ["connect"]
    assert all(NUSA_KEY not in a.detail for a in audit)


async def test_wrong_key_is_refused_and_nothing_stored(bot: Bot) -> None:
    reply = await bot.private(f"/connect nusasms api_key={WRONG_KEY}")
    assert "refused these credentials" in reply
    assert "nothing was stored" in reply
    assert WRONG_KEY not in reply
    assert await _stored(bot, USER) is None


async def test_guided_connect_asks_and_deletes_each_answer(bot: Bot) -> None:
    reply = await bot.private("/connect nusasms")
    assert "api_key" in reply
    deletes = len(bot.tg.calls_to("deleteMessage"))
    reply = await bot.private(NUSA_KEY)
    assert "sms_user" in reply  # the next (optional) field
    reply = await bot.private("-")
    assert "sms_password" in reply
    reply = await bot.private("skip")
    assert "NusaSMS connected" in reply
    assert len(bot.tg.calls_to("deleteMessage")) == deletes + 3
    assert await _stored(bot, USER) is not None


async def test_guided_connect_can_be_cancelled(bot: Bot) -> None:
    await bot.private("/connect nusasms")
    assert "Cancelled" in await bot.private("/cancel")
    assert "only understand commands" in await bot.private(NUSA_KEY)
    assert await _stored(bot, USER) is None


async def test_required_field_cannot_be_skipped(bot: Bot) -> None:
    await bot.private("/connect nusasms")
    assert "api_key is required" in await bot.private("-")


async def test_bad_connect_inputs_get_specific_replies(bot: Bot) -> None:
    assert "Unknown provider" in await bot.private("/connect twilio")
    assert "Usage" in await bot.private("/connect")
    assert "does not take" in await bot.private("/connect nusasms token=abc")
    assert "is not k=v" in await bot.private("/connect nusasms api_key")
    assert "needs api_key" in await bot.private("/connect nusasms sms_user=u")
    assert await _stored(bot, USER) is None


async def test_provider_down_during_connect_stores_nothing(bot: Bot) -> None:
    bot.nusa.fail_next(503, "maintenance")
    reply = await bot.private(f"/connect nusasms api_key={NUSA_KEY}")
    assert "temporarily unavailable" in reply
    assert await _stored(bot, USER) is None


async def test_disconnect_providers_and_use(bot: Bot) -> None:
    assert "No provider is connected" in await bot.private("/providers")
    assert "/connect <provider> (nusasms, parrotica, courier)" in await bot.private("/providers")
    assert "e.g. /use nusasms:wa." in await bot.private("/use")
    assert "e.g. /disconnect nusasms." in await bot.private("/disconnect")
    await bot.connect()
    reply = await bot.private("/providers")
    assert "nusasms" in reply
    assert "nusasms:wa" in reply
    assert NUSA_KEY not in reply
    assert "Default route is now" in await bot.private("/use nusasms")
    assert "Unknown provider" in await bot.private("/use twilio:sms")
    assert "no channel" in await bot.private("/use nusasms:fax")
    assert "disconnected" in await bot.private("/disconnect nusasms")
    assert await _stored(bot, USER) is None
    assert "not connected" in await bot.private("/disconnect nusasms")
    chat = await bot.services.repo.get_chat(USER)
    assert chat is not None
    assert chat.default_route is None


async def test_secret_typed_in_a_group_is_deleted_and_not_stored(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    mark = bot.tg.mark()
    await bot.group(f"/connect nusasms api_key={NUSA_KEY}")
    replies = bot.replies_since(mark, GROUP)
    assert any("Never type credentials in a group" in r for r in replies)
    assert bot.tg.calls_to("deleteMessage")
    assert all(NUSA_KEY not in r for r in replies)
    assert await _stored(bot, GROUP) is None


async def test_secret_from_a_non_admin_in_a_group_is_still_deleted(bot: Bot) -> None:
    mark = bot.tg.mark()
    await bot.group(f"/connect nusasms api_key={NUSA_KEY}", user_id=7)
    replies = bot.replies_since(mark, GROUP)
    assert bot.tg.calls_to("deleteMessage")
    assert any("needs the admin role" in r for r in replies)
    assert await _stored(bot, GROUP) is None


async def test_group_connect_goes_through_a_private_deep_link(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    mark = bot.tg.mark()
    await bot.group("/connect nusasms")
    button_call = next(
        c
        for c in bot.tg.calls[mark:]
        if c.method == "sendMessage" and c.params.get("reply_markup")
    )
    url = button_call.params["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.startswith("https://t.me/chatops_test_bot?start=connect-")
    payload = url.split("start=")[1]
    reply = await bot.private(f"/start {payload}")
    assert "Team" in reply
    assert "api_key" in reply
    await bot.private(NUSA_KEY)
    await bot.private("-")
    reply = await bot.private("-")
    assert "connected for" in reply
    assert await _stored(bot, GROUP) is not None
    assert await _stored(bot, USER) is None
    assert any("was connected by" in t for t in bot.tg.sent_texts(GROUP))
    # the link works once
    assert "expired or was used" in await bot.private(f"/start {payload}")


async def test_deep_link_refuses_a_non_admin(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    mark = bot.tg.mark()
    await bot.group("/connect nusasms")
    call = next(
        c
        for c in bot.tg.calls[mark:]
        if c.method == "sendMessage" and c.params.get("reply_markup")
    )
    payload = call.params["reply_markup"]["inline_keyboard"][0][0]["url"].split("start=")[1]
    assert "Only an admin" in await bot.private(f"/start {payload}", user_id=42)
    # a real admin can still use it afterwards
    assert "api_key" in await bot.private(f"/start {payload}")


async def test_bogus_deep_link(bot: Bot) -> None:
    assert "expired or was used" in await bot.private("/start connect-nonsense")


async def test_stored_credentials_survive_key_rotation(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    old = Fernet.generate_key().decode()
    first = await start_bot(make_settings(tmp_path, secret_key=old), tg, nusa)
    await first.connect()
    await stop_bot(first)
    new = Fernet.generate_key().decode()
    second = await start_bot(make_settings(tmp_path, secret_key=f"{new},{old}"), tg, nusa)
    try:
        assert "accepted" in await second.private("/send 6281234567890 hi")
    finally:
        await stop_bot(second)
    third = await start_bot(make_settings(tmp_path, secret_key=new), tg, nusa)
    try:  # rotated at the previous start: the old key is no longer needed
        assert "accepted" in await third.private("/send 6281234567890 again")
    finally:
        await stop_bot(third)
