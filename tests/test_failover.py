"""/use a,b: an ordered failover chain that moves a message on only before transmission.

The real Application with the NusaSMS and Parrotica fakes: NusaSMS WhatsApp first, Parrotica
SMS second. A failure that proves NusaSMS did not send (refused key, no credit, 429 past its
retries, no connection) moves the message to Parrotica with a history row saying why; a
timeout, a 5xx or a garbled answer never does, so nothing can be sent twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from storage.models import Chat, Message, StatusEvent
from tests.conftest import USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import T0, at, manual_bot, runner_of, schedules

CHAIN = "/use nusasms:wa,parrotica:sms"
NUMBER = "6281234567890"


async def _chain(bot: Bot, *, parrotica: bool = True) -> None:
    await bot.connect()
    if parrotica:
        reply = await bot.private(
            f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"
        )
        assert "connected" in reply, reply
    reply = await bot.private(CHAIN)
    assert "in this order" in reply, reply


async def _messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


async def _events(bot: Bot, message_id: int) -> list[StatusEvent]:
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(StatusEvent)
            .where(StatusEvent.message_id == message_id)
            .order_by(col(StatusEvent.id))
        )
        return list(rows)


def _refused_key(bot: Bot) -> None:
    bot.nusa.fail_next(401, {"error": True, "message": "Invalid API key"}, path_contains="message")


def _no_credit(bot: Bot) -> None:
    bot.nusa.fail_next(
        402, {"error": True, "message": "Insufficient balance"}, path_contains="message"
    )


def _no_connection(bot: Bot) -> None:
    bot.nusa.raise_next(
        lambda r: httpx.ConnectError("refused", request=r), path_contains="message"
    )


def _rate_limited(bot: Bot) -> None:
    for _ in range(10):  # more 429s than the client retries
        bot.nusa.fail_next(429, {"error": True, "message": "slow down"}, path_contains="message")


@pytest.mark.parametrize(
    "before_transmission",
    [_refused_key, _no_credit, _no_connection, _rate_limited],
    ids=["auth", "credit", "connect", "429"],
)
async def test_a_failure_before_transmission_moves_to_the_next_route(
    bot: Bot, before_transmission: Callable[[Bot], None]
) -> None:
    await _chain(bot)
    before_transmission(bot)
    reply = await bot.private(f"/send {NUMBER} Hello")
    assert f"{NUMBER} via parrotica:sms" in reply, reply
    assert bot.nusa.sent == []
    (sent,) = bot.parrotica.messages.values()
    assert sent.numbers == [f"+{NUMBER}"]
    (message,) = await _messages(bot)
    assert (message.provider, message.channel, message.state) == ("parrotica", "sms", "accepted")
    sources = [e.source for e in await _events(bot, message.id or 0)]
    assert sources == ["send", "failover", "send"]
    (failover,) = [e for e in await _events(bot, message.id or 0) if e.source == "failover"]
    assert "nusasms:wa did not send it" in failover.detail
    assert "trying parrotica:sms" in failover.detail


def _timeout(bot: Bot) -> None:
    bot.nusa.raise_next(lambda r: httpx.ReadTimeout("slow", request=r), path_contains="message")


def _server_error(bot: Bot) -> None:
    bot.nusa.fail_next(500, {"error": True, "message": "boom"}, path_contains="message")


def _garbage(bot: Bot) -> None:
    bot.nusa.fail_next(201, "<html>not json</html>", path_contains="message")


@pytest.mark.parametrize(
    ("after_transmission", "state"),
    [(_timeout, "unknown"), (_server_error, "unknown"), (_garbage, "unknown")],
    ids=["timeout", "5xx", "garbage"],
)
async def test_a_failure_that_may_follow_transmission_never_moves(
    bot: Bot, after_transmission: Callable[[Bot], None], state: str
) -> None:
    await _chain(bot)
    after_transmission(bot)
    await bot.private(f"/send {NUMBER} Hello")
    assert bot.parrotica.messages == {}  # never a second provider
    (message,) = await _messages(bot)
    assert (message.provider, message.state) == ("nusasms", state)
    assert "failover" not in [e.source for e in await _events(bot, message.id or 0)]


async def test_only_the_refused_recipients_move(bot: Bot) -> None:
    await _chain(bot)
    bot.nusa.fail_next(
        400, {"error": True, "message": "Invalid destination"}, path_contains="message"
    )
    bot.nusa.raise_next(lambda r: httpx.ReadTimeout("slow", request=r), path_contains="message")
    await bot.private(f"/send {NUMBER},6281234567891,6281234567892 Hello")
    messages = await _messages(bot)
    routes = sorted((m.provider, m.state) for m in messages)
    assert routes == [("nusasms", "accepted"), ("nusasms", "unknown"), ("parrotica", "accepted")]
    assert len(bot.parrotica.messages) == 1


async def test_an_unconnected_next_route_fails_with_both_reasons(bot: Bot) -> None:
    await _chain(bot, parrotica=False)
    _refused_key(bot)
    reply = await bot.private(f"/send {NUMBER} Hello")
    (message,) = await _messages(bot)
    assert (message.provider, message.state) == ("nusasms", "failed")
    assert "parrotica:sms could not take it" in message.detail
    assert "not connected" in message.detail
    assert "not connected" in reply, reply


async def test_an_explicit_route_has_no_failover(bot: Bot) -> None:
    await _chain(bot)
    _refused_key(bot)
    await bot.private(f"/send nusasms:wa {NUMBER} Hello")
    (message,) = await _messages(bot)
    assert (message.provider, message.state) == ("nusasms", "failed")
    assert bot.parrotica.messages == {}


async def test_a_scheduled_send_fails_over_too(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await manual_bot(tmp_path, tg, nusa)
    try:
        await _chain(bot)
        at(bot, T0)
        reply = await bot.private(f"/schedule in 1h {NUMBER} Later")
        assert "Scheduled" in reply, reply
        (row,) = await schedules(bot)
        assert row.route == "nusasms:wa,parrotica:sms"  # the chain is kept with the schedule
        _refused_key(bot)
        assert await runner_of(bot).run_due(T0 + timedelta(hours=1)) == 1
        (message,) = await _messages(bot)
        assert (message.provider, message.state) == ("parrotica", "accepted")
    finally:
        await stop_bot(bot)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/use nusasms:wa,nusasms:wa", "named twice"),
        ("/use nusasms:wa,,parrotica", "nothing between the commas"),
        ("/use nusasms:wa,nope:sms", "Unknown provider"),
        ("/use a,b,c,d,e,f", "Unknown provider"),
    ],
)
async def test_bad_chains_are_refused_and_nothing_changes(bot: Bot, text: str, says: str) -> None:
    await bot.connect()
    before = await bot.services.repo.get_chat(USER)
    reply = await bot.private(text)
    assert says in reply, reply
    after = await bot.services.repo.get_chat(USER)
    assert isinstance(after, Chat)
    assert before is not None
    assert after.default_route == before.default_route


async def test_disconnecting_a_provider_takes_its_routes_out_of_the_chain(bot: Bot) -> None:
    await _chain(bot)
    await bot.private("/disconnect nusasms")
    chat = await bot.services.repo.get_chat(USER)
    assert chat is not None
    assert chat.default_route == "parrotica:sms"
