"""courier's own commands through the real Application: bulk, e-mail, /multicast, /balance.

The courier + identity fake sits behind the same MockTransport as the other providers. Each
flow checks what reached the fake (requests, bodies) and what the chat was told, bad input
included.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from storage.models import Confirmation, Message, utcnow
from tests.confirm_support import confirm
from tests.conftest import GROUP, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.courier import ACCOUNT_A, INDIVIDUAL, NUMBER_A1, ORG, PASSWORD, USERNAME
from tests.fakes.courier import GROUP as COURIER_GROUP
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, callback_query, feed

CONNECT = (
    f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG} "
    f"account_id={ACCOUNT_A} number_id={NUMBER_A1}"
)


async def _connected(bot: Bot) -> None:
    reply = await bot.private(CONNECT)
    assert "connected" in reply, reply


async def _messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


# -- bulk -------------------------------------------------------------------------------------


async def test_bulk_goes_out_as_one_request_to_individuals_and_groups(bot: Bot) -> None:
    await _connected(bot)
    other = "11111111-2222-4333-8444-000000000002"
    reply = await bot.private(
        f"/send courier:bulk {INDIVIDUAL},group:{COURIER_GROUP},individual:{other} Clinic closed"
    )
    assert "1 of them provider group" in reply, reply  # a group counts as more: confirmed
    assert not bot.courier.bulk
    reply = await confirm(bot)
    assert "courier:bulk" in reply, reply
    assert len(bot.courier.requests_to("/v1/messaging-bulk-messages/", "POST")) == 1
    (bulk,) = bot.courier.bulk.values()
    assert bulk.attributes["individual-ids"] == [INDIVIDUAL, other]
    assert bulk.attributes["individual-group-ids"] == [COURIER_GROUP]
    assert bulk.attributes["message"] == "Clinic closed"
    messages = await _messages(bot)
    assert [m.recipient for m in messages] == [
        f"individual:{INDIVIDUAL}",
        f"group:{COURIER_GROUP}",
        f"individual:{other}",
    ]
    assert {m.provider_ref for m in messages} == {bulk.id}


@pytest.mark.parametrize(
    ("recipients", "says"),
    [
        ("6281234567890", "not a courier"),
        ("contact:12", "takes individual or group ids, not contact ids"),
        ("group:42", "not a courier"),
    ],
)
async def test_bad_bulk_recipients_are_refused_before_anything_is_sent(
    bot: Bot, recipients: str, says: str
) -> None:
    await _connected(bot)
    reply = await bot.private(f"/send courier:bulk {recipients} Hello")
    assert says in reply, reply
    assert not bot.courier.bulk
    assert await _messages(bot) == []


# -- e-mail -----------------------------------------------------------------------------------


async def test_an_email_is_created_then_sent(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private(
        "/send courier:email ana@example.com Visit reminder | See you at 9.\nBring your card."
    )
    assert "courier:email" in reply, reply
    (email,) = bot.courier.emails.values()
    assert email.attributes["subject"] == "Visit reminder"
    assert email.attributes["message"] == "See you at 9.\nBring your card."
    assert email.attributes["status"] == "sent"
    posts = [r.url.path for r in bot.courier.requests if r.method == "POST"]
    assert posts[-2:] == ["/v1/user-emails/", f"/v1/user-emails/{email.id}/send/"]
    (message,) = await _messages(bot)
    assert (message.recipient, message.provider_ref) == ("ana@example.com", email.id)


async def test_a_failure_between_draft_and_send_is_definite_and_told(bot: Bot) -> None:
    await _connected(bot)
    bot.courier.fail_next(
        422,
        {"errors": [{"code": "invalid", "detail": "mailbox full", "status": 422}]},
        path_contains="/send/",
    )
    reply = await bot.private("/send courier:email ana@example.com Hi | Body")
    (email,) = bot.courier.emails.values()
    assert email.attributes["status"] == "draft"  # the draft exists, not sent
    (message,) = await _messages(bot)
    assert message.state == "failed"
    assert email.id in message.detail
    assert "did NOT send it" in message.detail
    assert "mailbox full" in reply, reply


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/send courier:email ana@example.com No separator", "subject, then “|”"),
        ("/send courier:email not-an-address Hi | Body", "not-an-address"),
        ("/send courier:email 6281234567890 Hi | Body", "6281234567890"),
    ],
)
async def test_bad_emails_are_refused_before_anything_is_sent(
    bot: Bot, text: str, says: str
) -> None:
    await _connected(bot)
    reply = await bot.private(text)
    assert says in reply, reply
    assert not bot.courier.emails
    assert await _messages(bot) == []


# -- /multicast -------------------------------------------------------------------------------


async def _press(bot: Bot, data: str, *, chat_id: int = USER, user_id: int = USER) -> str:
    mark = bot.tg.mark()
    await feed(
        bot.app,
        callback_query(data, message_chat_id=chat_id, message_id=1, user_id=user_id),
    )
    edits = [c for c in bot.tg.calls_to("editMessageText")[-1:] if bot.tg.mark() > mark]
    replies = bot.replies_since(mark, chat_id)
    return "\n".join([*(e.params["text"] for e in edits), *replies])


async def _planned(bot: Bot, text: str = "/multicast welcome-1 firstName=Ana") -> str:
    reply = await bot.private(text)
    assert "Nothing is sent until you press Send" in reply, reply
    assert not bot.courier.multicasts
    markup = bot.tg.calls_to("sendMessage")[-1].params["reply_markup"]
    (send, cancel) = markup["inline_keyboard"][0]
    assert (send["text"], cancel["text"]) == ("Send", "Cancel")
    return str(send["callback_data"])


async def test_a_multicast_waits_for_send_and_goes_out_once(bot: Bot) -> None:
    await _connected(bot)
    data = await _planned(bot, '/multicast welcome-1 audience=group:7 firstName=Ana note="a b"')
    said = await _press(bot, data)
    assert "Multicast sent" in said, said
    (multicast,) = bot.courier.multicasts.values()
    (posted,) = bot.courier.requests_to("/v1/multicasts/", "POST")
    attributes = json.loads(posted.content)["data"]["attributes"]
    assert attributes["template-id"] == "welcome-1"
    assert attributes["filter-type"] == "group"
    assert attributes["data"] == {"firstName": "Ana", "note": "a b"}
    assert attributes["organization-id"] == ORG
    said = await _press(bot, data)  # a second press
    assert "already sent" in said, said
    assert len(bot.courier.multicasts) == 1
    (message,) = await _messages(bot)
    assert (message.channel, message.provider_ref) == ("multicast", multicast.id)
    bot.courier.set_multicast_status(multicast.id, "completed")
    reply = await bot.private(f"/status {message.id}")
    assert "sent" in reply, reply


async def test_a_cancelled_multicast_never_goes_out(bot: Bot) -> None:
    await _connected(bot)
    data = await _planned(bot)
    said = await _press(bot, data.replace(":y", ":n"))
    assert "cancelled" in said, said
    said = await _press(bot, data)
    assert "cancelled; nothing was sent" in said, said
    assert not bot.courier.multicasts


async def test_an_expired_multicast_is_not_sent(bot: Bot) -> None:
    await _connected(bot)
    data = await _planned(bot)
    async with bot.services.repo.db.write() as s:
        await s.exec(update(Confirmation).values(expires_at=utcnow() - timedelta(seconds=1)))
    said = await _press(bot, data)
    assert "waited too long" in said, said
    assert not bot.courier.multicasts


async def test_only_the_requester_or_an_admin_may_press(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/help")  # the group is registered on first contact
    values = dict(pair.split("=", 1) for pair in CONNECT.split()[2:])
    await bot.services.accounts.connect(GROUP, "courier", values, actor=USER)
    assert "7 is now operator" in await bot.group("/role 7 operator")
    assert "8 is now operator" in await bot.group("/role 8 operator")
    reply = await bot.group("/multicast welcome-1", user_id=7)
    assert "Nothing is sent until you press Send" in reply, reply
    data = bot.tg.calls_to("sendMessage")[-1].params["reply_markup"]["inline_keyboard"][0][0]
    said = await _press(bot, data["callback_data"], chat_id=GROUP, user_id=8)
    assert "needs the admin role" in said, said
    assert not bot.courier.multicasts
    said = await _press(bot, data["callback_data"], chat_id=GROUP, user_id=USER)
    assert "Multicast sent" in said, said
    assert len(bot.courier.multicasts) == 1


async def test_multicast_without_a_provider_that_can_says_which(bot: Bot) -> None:
    await bot.connect()  # NusaSMS only
    reply = await bot.private("/multicast welcome-1")
    assert "No provider connected in this chat can multicast" in reply, reply
    assert "courier" in reply


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/multicast", "Usage: /multicast"),
        ("/multicast t lonely", "is not key=value"),
        ("/multicast t audience=ALL", "not an audience type"),
        ('/multicast t name="open', "quote is not closed"),
    ],
)
async def test_bad_multicasts_get_a_specific_reply(bot: Bot, text: str, says: str) -> None:
    await _connected(bot)
    reply = await bot.private(text)
    assert says in reply, reply
    assert not bot.courier.multicasts


# -- /balance, status callbacks ---------------------------------------------------------------


async def test_balance_says_courier_has_none(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/balance courier")
    assert "has no balance endpoint" in reply, reply
    assert not [r for r in bot.courier.requests if "balance" in r.url.path]


async def test_in_webhook_mode_a_text_carries_its_status_callback(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    settings = make_settings(tmp_path, webhook_url="https://bot.example/hook")
    bot = await start_bot(settings, tg, nusa)
    try:
        await _connected(bot)
        await bot.private("/send courier:sms 6281234567890 Hello")
        (text,) = bot.courier.texts.values()
        url = text.attributes["callback-status-url"]
        assert url.startswith("https://bot.example/hook/callbacks/courier/status/")
        assert settings.telegram_bot_token.get_secret_value() not in url
    finally:
        await stop_bot(bot)


async def test_outside_webhook_mode_no_callback_is_asked_for(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/send courier:sms 6281234567890 Hello")
    (text,) = bot.courier.texts.values()
    assert not text.attributes.get("callback-status-url")
    assert httpx  # the fake is reached through the routed MockTransport


async def test_the_guided_connect_asks_each_key_and_offers_the_numbers(bot: Bot) -> None:
    assert "username" in await bot.private("/connect courier")
    assert "password" in await bot.private(USERNAME)
    assert "organization_id" in await bot.private(PASSWORD)
    assert "account_id" in await bot.private(ORG)
    assert "number_id" in await bot.private("skip")
    mark = bot.tg.mark()
    await bot.private("skip")
    connected, pick = bot.replies_since(mark, USER)
    assert "courier connected" in connected, connected
    assert "Pick what this chat sends from" in pick, pick
    assert bot.courier.logins == 1
    assert PASSWORD not in connected + pick
