"""Parrotica from the chat: connect, send in chunks, address-book recipients, status, balance.

The real Application with the offline Telegram layer and the stateful Parrotica fake behind
the same MockTransport as NusaSMS (routed by host).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import col, select

from storage.models import Message
from tests.confirm_support import confirm
from tests.conftest import Bot
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.tracking_support import tracker_of

CONNECT = f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"


async def _messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


async def _connected(bot: Bot) -> None:
    reply = await bot.private(CONNECT)
    assert "connected" in reply, reply


async def test_connect_is_verified_and_becomes_the_default_route(bot: Bot) -> None:
    await _connected(bot)
    assert bot.parrotica.requests_to("senderids", "GET")  # the cheap read that verifies
    reply = await bot.private("/send 6281234567890 Hello")
    assert "parrotica:sms" in reply, reply
    assert "accepted → 6281234567890" in reply, reply


async def test_refused_key_stores_nothing(bot: Bot) -> None:
    reply = await bot.private(f"/connect parrotica api_key=wrong user_id={DEFAULT_USER}")
    assert "refused" in reply, reply
    reply = await bot.private("/send parrotica 6281234567890 Hello")
    assert "not connected" in reply, reply


async def test_wrong_user_id_is_refused(bot: Bot) -> None:
    reply = await bot.private(f"/connect parrotica api_key={DEFAULT_KEY} user_id=u-999")
    assert "refused" in reply, reply


async def test_missing_user_id_is_asked_for(bot: Bot) -> None:
    reply = await bot.private(f"/connect parrotica api_key={DEFAULT_KEY}")
    assert "user_id" in reply, reply
    assert not bot.parrotica.requests  # nothing was tried without it


async def test_one_message_goes_out_with_the_approved_sender_in_e164(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/send parrotica 6281234567890 Hello there")
    (sent,) = bot.parrotica.messages.values()
    assert sent.numbers == ["+6281234567890"]
    assert sent.sender_id == "ABC123"  # the first approved one; XYZ789 is pending
    assert sent.content == "Hello there"
    (stored,) = await _messages(bot)
    assert (stored.state, stored.provider_ref) == ("accepted", str(sent.id))


async def test_a_thousand_numbers_take_ten_requests_each_number_once(bot: Bot) -> None:
    await _connected(bot)
    numbers = [f"62812{i:08d}" for i in range(1000)]
    reply = await bot.private(f"/send parrotica {','.join(numbers)} Promo")
    assert "Send to 1,000 recipients?" in reply, reply
    assert not bot.parrotica.requests_to("messages", "POST")  # nothing before Send
    mark = bot.tg.mark()
    await confirm(bot)
    # A large send: its one progress card is edited to the summary (within the card pacing).
    summary = await bot.tg.wait_for(
        "editMessageText", lambda c: "Finished" in str(c.params.get("text")), since=mark
    )
    assert "accepted 1,000" in str(summary.params["text"])
    assert len(bot.parrotica.requests_to("messages", "POST")) == 10
    sent = [n for m in bot.parrotica.messages.values() for n in m.numbers]
    assert sorted(sent) == sorted(f"+{n}" for n in numbers)
    stored = await _messages(bot)
    assert len(stored) == 1000
    assert len({m.provider_ref for m in stored}) == 10  # one Parrotica message per chunk


async def test_contacts_and_groups_are_integer_ids_on_the_wire(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/send parrotica contact:1,group:4004,6281234567890 Hi")
    assert "1 of them provider group" in reply, reply  # a group counts as more: confirmed
    reply = await confirm(bot)
    assert "accepted 3" in reply, reply
    body = bot.parrotica.json_body(
        bot.parrotica.requests.index(bot.parrotica.requests_to("messages", "POST")[0])
    )
    assert body["contactids"] == [1]
    assert body["groupids"] == [4004]
    assert body["numbers"] == ["+6281234567890"]
    raw = bot.parrotica.requests_to("messages", "POST")[0].content
    assert b"4004.0" not in raw
    assert b"[1.0]" not in raw


async def test_bad_address_book_recipients_get_a_specific_reply(bot: Bot) -> None:
    await _connected(bot)
    await bot.connect()  # NusaSMS too
    reply = await bot.private("/send parrotica contact:abc Hi")
    assert "is not a contact id" in reply, reply
    reply = await bot.private("/send nusasms:wa group:4004 Hi")
    assert "takes phone numbers, not group ids" in reply, reply
    assert "parrotica:sms" in reply
    assert not bot.parrotica.requests_to("messages", "POST")
    assert not bot.nusa.sent


async def test_an_unknown_contact_fails_with_parroticas_message(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/send parrotica contact:777 Hi")
    assert "failed → contact:777" in reply, reply
    assert "contact not found" in reply
    (stored,) = await _messages(bot)
    assert stored.state == "failed"
    assert "contact not found: 777" in stored.detail, stored.detail


async def test_status_follows_the_message_and_keeps_unknown_words(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/send parrotica 6281234567890,6281234567891 Hi")
    (sent,) = bot.parrotica.messages.values()
    first, second = await _messages(bot)
    bot.parrotica.set_state(sent.id, "delivered")
    reply = await bot.private(f"/status {second.id}")
    assert "delivered" in reply, reply
    bot.parrotica.set_state(sent.id, "teleported")
    await bot.private(f"/status {first.id}")  # already delivered: final, nothing asked
    stored = {m.id: m for m in await _messages(bot)}
    assert stored[second.id].state == "delivered"


async def test_an_unknown_status_word_moves_nothing(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/send parrotica 6281234567890 Hi")
    (sent,) = bot.parrotica.messages.values()
    bot.parrotica.set_state(sent.id, "teleported")
    (message,) = await _messages(bot)
    reply = await bot.private(f"/status {message.id}")
    assert "accepted" in reply, reply
    (after,) = await _messages(bot)
    assert after.state == "accepted"


async def test_a_send_answer_without_id_is_found_in_the_message_list(bot: Bot) -> None:
    await _connected(bot)
    bot.parrotica.send_returns_id = False
    await bot.private("/send parrotica 6281234567890 Find me")
    (sent,) = bot.parrotica.messages.values()
    (stored,) = await _messages(bot)
    assert (stored.state, stored.provider_ref) == ("accepted", str(sent.id))


async def test_a_timeout_after_parrotica_took_the_message_is_unknown_never_resent(
    bot: Bot,
) -> None:
    await _connected(bot)
    bot.parrotica.raise_next(
        lambda request: httpx.ReadTimeout("slow", request=request),
        after=True,
        path_contains="/message/",
        method="POST",
    )
    reply = await bot.private("/send parrotica 6281234567890 Hi")
    assert "unknown → 6281234567890" in reply, reply
    assert "before sending again" in reply
    assert len(bot.parrotica.messages) == 1  # it did reach Parrotica, once


async def test_balance_shows_recent_transactions(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/balance parrotica")
    assert "Parrotica" in reply, reply
    assert "no balance endpoint" in reply, reply
    assert "total of these" in reply, reply  # the cost summary of the transactions shown


async def test_recipients_of_one_parrotica_message_are_polled_once(tbot: Bot) -> None:
    reply = await tbot.private(CONNECT)
    assert "connected" in reply, reply
    numbers = ",".join(f"62812{i:08d}" for i in range(250))
    await tbot.private(f"/send parrotica {numbers} Promo")
    await confirm(tbot)
    for sent in tbot.parrotica.messages.values():
        tbot.parrotica.set_state(sent.id, "delivered")
    tracker = tracker_of(tbot)
    before = len(tbot.parrotica.requests_to("message", "GET"))
    await tracker.tick(tracker.clock() + timedelta(minutes=5))
    assert len(tbot.parrotica.requests_to("message", "GET")) - before == 3  # one per chunk
    assert {m.state for m in await _messages(tbot)} == {"delivered"}
