"""Settling ``unknown`` sends by asking the provider, never by sending again.

The real Application with a hand-driven tracker clock (tests/tracking_support.py): a send whose
answer is lost becomes ``unknown``; a sweep at least ``RECONCILE_AFTER`` later looks it up
once. Parrotica can be asked (its message list); NusaSMS WhatsApp cannot, and says so once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import col, select

from bot.tracking.reconcile import RECONCILE_AFTER
from storage.models import Message, StatusEvent
from tests.conftest import Bot
from tests.fakes.courier import ACCOUNT_A, NUMBER_A1, ORG, PASSWORD, USERNAME
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.tracking_support import FakeClock, tracker_of

NUMBER = "6281234567890"


def _timeout(request: httpx.Request) -> Exception:
    return httpx.ReadTimeout("slow", request=request)


async def _lost_parrotica_send(bot: Bot, *, acted: bool) -> Message:
    reply = await bot.private(f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}")
    assert "connected" in reply, reply
    bot.parrotica.raise_next(_timeout, after=acted, path_contains="message", method="POST")
    reply = await bot.private(f"/send parrotica {NUMBER} Promo for you")
    assert "unknown" in reply, reply
    (message,) = await _messages(bot)
    return message


async def _messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


async def _sources(bot: Bot, message_id: int) -> list[str]:
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(StatusEvent.source)
            .where(StatusEvent.message_id == message_id)
            .order_by(col(StatusEvent.id))
        )
        return list(rows)


def _later() -> datetime:
    return datetime.now(UTC) + RECONCILE_AFTER + timedelta(seconds=5)


async def test_a_lost_send_the_provider_has_becomes_its_state(tbot: Bot, clock: FakeClock) -> None:
    lost = await _lost_parrotica_send(tbot, acted=True)
    (at_parrotica,) = tbot.parrotica.messages.values()
    await tracker_of(tbot).tick(datetime.now(UTC))  # too early: its lists may lag
    assert (await _messages(tbot))[0].state == "unknown"
    edits_before = len(tbot.tg.calls_to("editMessageText"))
    await tracker_of(tbot).tick(_later())
    (message,) = await _messages(tbot)
    assert (message.state, message.provider_ref) == ("accepted", str(at_parrotica.id))
    assert "not sent again" in message.detail
    assert len(tbot.parrotica.requests_to("messages", "POST")) == 1  # never resent
    assert (await _sources(tbot, lost.id or 0))[-1] == "reconcile"
    edits = tbot.tg.calls_to("editMessageText")[edits_before:]
    assert edits, "the card is edited with the settled state"
    assert "accepted" in edits[-1].params["text"]


async def test_a_lost_send_the_provider_never_got_fails_and_says_so(
    tbot: Bot, clock: FakeClock
) -> None:
    await _lost_parrotica_send(tbot, acted=False)
    assert tbot.parrotica.messages == {}
    await tracker_of(tbot).tick(_later())
    (message,) = await _messages(tbot)
    assert message.state == "failed"
    assert "has no such message: it was not sent" in message.detail
    assert len(tbot.parrotica.requests_to("messages", "POST")) == 1


async def test_two_candidates_leave_it_unknown_and_say_why(tbot: Bot, clock: FakeClock) -> None:
    await _lost_parrotica_send(tbot, acted=True)
    tbot.parrotica.add_message("Promo for you", "ABC123")  # the same text, same sender
    await tracker_of(tbot).tick(_later())
    (message,) = await _messages(tbot)
    assert message.state == "unknown"
    assert "cannot tell which" in message.detail
    assert "2 messages with this text" in message.detail


async def test_a_provider_that_cannot_be_asked_says_so_once(tbot: Bot, clock: FakeClock) -> None:
    await tbot.connect()
    tbot.nusa.raise_next(_timeout, path_contains="message")
    await tbot.private(f"/send nusasms:wa {NUMBER} Hello")
    (message,) = await _messages(tbot)
    assert message.state == "unknown"
    await tracker_of(tbot).tick(_later())
    await tracker_of(tbot).tick(_later() + timedelta(minutes=5))
    (message,) = await _messages(tbot)
    assert message.state == "unknown"
    assert "NusaSMS cannot be asked whether it sent it" in message.detail
    assert (await _sources(tbot, message.id or 0)).count("reconcile") == 1
    assert len(tbot.nusa.sent) == 0  # and nothing was sent


async def test_a_failed_lookup_is_tried_again_later(tbot: Bot, clock: FakeClock) -> None:
    await _lost_parrotica_send(tbot, acted=True)
    tbot.parrotica.fail_next(503, path_contains="message", method="GET")
    await tracker_of(tbot).tick(_later())
    assert (await _messages(tbot))[0].state == "unknown"
    await tracker_of(tbot).tick(_later() + timedelta(minutes=1))
    assert (await _messages(tbot))[0].state == "accepted"


async def _lost_courier_text(bot: Bot, *, acted: bool) -> None:
    connect = (
        f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG} "
        f"account_id={ACCOUNT_A} number_id={NUMBER_A1}"
    )
    assert "connected" in await bot.private(connect)
    bot.courier.raise_next(_timeout, after=acted, path_contains="/v1/texts/", method="POST")
    reply = await bot.private(f"/send courier:sms {NUMBER},6281234567891 Visit at 9")
    assert "unknown" in reply, reply


async def test_a_lost_courier_text_is_found_by_its_target(tbot: Bot, clock: FakeClock) -> None:
    await _lost_courier_text(tbot, acted=True)
    (text,) = [t for t in tbot.courier.texts.values() if t.attributes["target"] == f"+{NUMBER}"]
    await tracker_of(tbot).tick(_later())
    lost, other = await _messages(tbot)
    assert (lost.state, lost.provider_ref) == ("accepted", text.id)
    assert other.state == "accepted"  # its own request was answered all along
    assert len(tbot.courier.requests_to("/v1/texts/", "POST")) == 2  # never resent
    (listing,) = [
        r for r in tbot.courier.requests_to("/v1/texts/", "GET") if r.url.path.endswith("texts/")
    ]
    assert listing.url.params["filter[target]"] == f"+{NUMBER}"


async def test_a_lost_courier_text_it_never_got_fails(tbot: Bot, clock: FakeClock) -> None:
    await _lost_courier_text(tbot, acted=False)
    await tracker_of(tbot).tick(_later())
    lost = next(m for m in await _messages(tbot) if m.recipient == NUMBER)
    assert lost.state == "failed"
    assert "courier has no such message" in lost.detail


async def test_a_lost_courier_email_cannot_be_looked_up_and_says_so(
    tbot: Bot, clock: FakeClock
) -> None:
    connect = (
        f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG} "
        f"account_id={ACCOUNT_A} number_id={NUMBER_A1}"
    )
    assert "connected" in await tbot.private(connect)
    tbot.courier.raise_next(_timeout, after=True, path_contains="/send/", method="POST")
    await tbot.private("/send courier:email ana@example.com Hi | Body")
    await tracker_of(tbot).tick(_later())
    (message,) = await _messages(tbot)
    assert message.state == "unknown"
    assert "courier cannot be asked whether it sent it" in message.detail
