"""Large sends wait for a Send press (``CONFIRM_ABOVE``), through the real Application.

Nothing reaches a provider before Send; a double press or two presses at once send once; a
press after expiry, a Cancel, or a press by someone else than the requester or an admin
sends nothing. The confirmation counts recipients after de-duplication, names what makes an
SMS UCS-2, estimates the cost where the provider states it, and warns about a low balance and
about the same text sent to the same numbers within the hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from providers.base import Cost
from providers.registry import parse_route
from storage.models import Confirmation, Message, Schedule, utcnow
from tests.confirm_support import confirm, last_buttons, press
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, callback_query, feed, photo_message
from tests.lists_support import upload
from tests.nusasms_support import connect_sms

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"62812{i:08d}" for i in range(start, start + count)]


async def stored(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


@pytest.fixture
async def small(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot that confirms sends to more than 3 recipients."""
    bot = await start_bot(make_settings(tmp_path, confirm_above=3), tg, nusa)
    await bot.connect()
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def test_a_send_above_the_default_threshold_waits_for_send_and_goes_once(
    bot: Bot,
) -> None:
    await bot.connect()
    reply = await bot.private(f"/send nusasms:wa {','.join(numbers(51))} Store closes at 5")
    assert "Send to 51 recipients?" in reply, reply
    assert "Route: nusasms:wa" in reply
    assert "Nothing is sent until you press Send (valid for 15 minutes)." in reply
    assert bot.nusa.sent == []
    assert await stored(bot) == []
    said = await confirm(bot)
    assert "Sending, confirmed by @alice." in said, said
    assert "Send 1 via nusasms:wa" in said  # the status card, as for any send
    assert len(bot.nusa.sent) == 51
    said = await confirm(bot)  # a second press
    assert "already confirmed" in said, said
    assert len(bot.nusa.sent) == 51
    assert len(await stored(bot)) == 51


async def test_fifty_recipients_go_without_asking(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private(f"/send nusasms:wa {','.join(numbers(50))} Hi")
    assert "accepted 50" in reply, reply
    assert len(bot.nusa.sent) == 50


async def test_recipients_are_counted_after_de_duplication(small: Bot) -> None:
    # Five typed, three distinct (national and international forms of one number).
    typed = "6281200000001,+6281200000001,6281200000002,6281200000003,6281200000002"
    reply = await small.private(f"/send nusasms:wa {typed} Hi")
    assert "accepted 3" in reply, reply
    assert len(small.nusa.sent) == 3


async def test_list_recipients_are_counted_after_de_duplication(small: Bot) -> None:
    assert "3" in await upload(small, "crew", "\n".join(numbers(3)).encode())
    # The list's three numbers, two of them typed again: three recipients, no confirmation.
    reply = await small.private(f"/send nusasms:wa list:crew,{numbers(2)[1]},{numbers(1)[0]} Hi")
    assert "accepted 3" in reply, reply
    await upload(small, "more", "\n".join(numbers(4)).encode(), file_name="more.txt")
    reply = await small.private("/send nusasms:wa list:more,list:crew Hi again")
    assert "Send to 4 recipients?" in reply, reply
    assert "Counted after removing" not in reply  # lists are merged, not typed twice
    assert len(small.nusa.sent) == 3


async def test_a_typed_duplicate_is_named_in_the_count(small: Bot) -> None:
    typed = ",".join([*numbers(4), numbers(1)[0]])
    reply = await small.private(f"/send nusasms:wa {typed} Hi")
    assert "Send to 4 recipients?" in reply, reply
    assert "Counted after removing 1 duplicate(s)." in reply


async def test_cancel_sends_nothing_and_a_later_send_press_says_so(small: Bot) -> None:
    await small.private(f"/send nusasms:wa {','.join(numbers(4))} Hi")
    send, cancel = last_buttons(small)
    said = await press(small, cancel)
    assert "Cancelled by @alice; nothing was sent." in said, said
    said = await press(small, send)
    assert "This send was cancelled; nothing was sent." in said, said
    assert small.nusa.sent == []
    assert await stored(small) == []


async def test_a_press_after_expiry_says_so_and_sends_nothing(small: Bot) -> None:
    await small.private(f"/send nusasms:wa {','.join(numbers(4))} Hi")
    async with small.services.repo.db.write() as s:
        await s.exec(update(Confirmation).values(expires_at=utcnow() - timedelta(seconds=1)))
    said = await confirm(small)
    assert "waited more than 15 minutes for its confirmation and expired" in said, said
    assert small.nusa.sent == []


async def test_two_presses_at_once_send_once(small: Bot) -> None:
    await small.private(f"/send nusasms:wa {','.join(numbers(4))} Hi")
    send, _ = last_buttons(small)
    await asyncio.gather(
        *(
            feed(small.app, callback_query(send, message_chat_id=USER, message_id=1))
            for _ in range(2)
        )
    )
    assert len(small.nusa.sent) == 4
    assert len(await stored(small)) == 4


async def test_only_the_requester_or_an_admin_may_press(small: Bot) -> None:
    small.tg.chat_admins[GROUP] = {USER}
    await small.group("/help")  # registers the group
    await small.services.accounts.connect(GROUP, "nusasms", {"api_key": NUSA_KEY}, actor=USER)
    await small.group("/use nusasms:wa")
    assert "7 is now operator" in await small.group("/role 7 operator")
    assert "8 is now viewer" in await small.group("/role 8 viewer")
    assert "9 is now operator" in await small.group("/role 9 operator")
    reply = await small.group(f"/send {','.join(numbers(4))} Hi", user_id=7)
    assert "Send to 4 recipients?" in reply, reply
    send, cancel = last_buttons(small, GROUP)
    said = await press(small, send, chat_id=GROUP, user_id=9)
    assert "Deciding another user's send needs the admin role" in said, said
    said = await press(small, cancel, chat_id=GROUP, user_id=8)
    assert "needs the admin role" in said, said
    assert small.nusa.sent == []
    said = await press(small, send, chat_id=GROUP, user_id=USER)  # a group admin
    assert "Sending, confirmed by @alice." in said, said
    assert len(small.nusa.sent) == 4


async def test_the_requester_may_press_without_being_admin(small: Bot) -> None:
    small.tg.chat_admins[GROUP] = {USER}
    await small.group("/help")
    await small.services.accounts.connect(GROUP, "nusasms", {"api_key": NUSA_KEY}, actor=USER)
    await small.group(f"/send nusasms:wa {','.join(numbers(4))} Hi", user_id=7)
    send, _ = last_buttons(small, GROUP)
    said = await press(small, send, chat_id=GROUP, user_id=7)
    assert "Sending, confirmed by" in said, said
    assert len(small.nusa.sent) == 4


async def test_the_estimate_warns_when_the_wa_balance_is_below_it(small: Bot) -> None:
    small.nusa.credit.wa_balance = 5
    long_text = "x" * 1600  # two WA credits per message (1 per 1,500 characters begun)
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(4))} {long_text}")
    assert "Estimated cost: 8 credits (WA balance: 5)." in reply, reply
    assert "The WA balance (5) is below the estimated cost" in reply
    small.nusa.credit.wa_balance = 1000
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(4))} Hi")
    assert "Estimated cost: 4 credits (WA balance: 1,000)." in reply, reply
    assert "below the estimated cost" not in reply
    assert small.nusa.sent == []


async def test_a_balance_that_cannot_be_read_is_said_and_the_send_still_offered(
    small: Bot,
) -> None:
    small.nusa.credit.wa_balance = None  # the fake then answers with null: unlimited
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(4))} Hi")
    assert "Estimated cost: 4 credits." in reply, reply
    assert last_buttons(small)


async def test_unicode_sms_names_the_character_and_the_gsm_alternative(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await start_bot(make_settings(tmp_path, confirm_above=3), tg, nusa)
    try:
        await connect_sms(bot)
        text = "Promo " + "a" * 150 + " “today”"
        reply = await bot.private(f"/send nusasms:sms {','.join(numbers(4))} {text}")
        assert "UCS-2 because of “ ”" in reply, reply
        assert "3 segments" in reply
        assert "12 SMS parts in all" in reply
        assert "without those characters it would be 2 segments (GSM-7" in reply
        assert "NusaSMS does not state a price" in reply
        assert bot.nusa.sms_sent == []
        await confirm(bot)
        assert len(bot.nusa.sms_sent) == 4
    finally:
        await stop_bot(bot)


async def test_the_same_text_to_the_same_numbers_within_the_hour_is_counted(small: Bot) -> None:
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(2))} Flash sale")
    assert "accepted 2" in reply, reply
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(5))} Flash sale")
    assert "⚠️ 2 of these recipients got this same text in the last hour." in reply, reply
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(5))} Other text")
    assert "same text" not in reply, reply


async def test_a_provider_group_counts_as_more(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    bot = await start_bot(make_settings(tmp_path), tg, nusa)
    try:
        await connect_sms(bot)
        bot.nusa.sms_groups["Sales"] = ["6281200000009"]
        reply = await bot.private("/send nusasms:smsgroup Sales Hi")
        assert "Send to 1 recipient, 1 of them provider group" in reply, reply
        assert bot.nusa.sms_campaigns == []
        await confirm(bot)
        assert len(bot.nusa.sms_campaigns) == 1
    finally:
        await stop_bot(bot)


async def test_a_large_media_send_downloads_the_file_when_send_is_pressed(small: Bot) -> None:
    small.tg.add_file(JPEG, file_id="PHOTO", file_path="photos/file_1.jpg")
    photo = photo_message(file_id="PHOTO", file_size=len(JPEG))
    await feed(small.app, photo)
    reply = await small.private(f"/send nusasms:wa {','.join(numbers(4))} Menu", reply_to=photo)
    assert "With the photo as WhatsApp media." in reply, reply
    assert "Estimated cost: 8 credits" in reply  # 2 WA credits per media message
    assert small.nusa.sent == []
    await confirm(small)
    assert len(small.nusa.sent) == 4
    assert {m.kind for m in small.nusa.sent} == {"media"}


async def test_a_large_schedule_is_confirmed_before_it_is_stored(small: Bot) -> None:
    reply = await small.private(f"/schedule in 2h nusasms:wa {','.join(numbers(4))} Later")
    assert "Schedule to 4 recipients?" in reply, reply
    assert "First run:" in reply
    async with small.services.repo.db.read() as s:
        assert list(await s.exec(select(Schedule))) == []
    said = await confirm(small)
    assert "Scheduled send #1" in said, said
    said = await confirm(small)
    assert "already confirmed" in said, said
    async with small.services.repo.db.read() as s:
        assert len(list(await s.exec(select(Schedule)))) == 1
    assert small.nusa.sent == []


async def test_a_one_off_schedule_whose_time_passed_while_waiting_is_refused(
    small: Bot,
) -> None:
    start = utcnow()
    small.services.schedules.clock = lambda: start
    await small.private(f"/schedule in 10m nusasms:wa {','.join(numbers(4))} Later")
    small.services.schedules.clock = lambda: start + timedelta(minutes=11)
    said = await confirm(small)
    assert "passed while it waited for its confirmation; nothing was scheduled" in said, said
    async with small.services.repo.db.read() as s:
        assert list(await s.exec(select(Schedule))) == []


async def test_a_large_send_on_a_provider_not_connected_is_refused_before_asking(
    small: Bot,
) -> None:
    reply = await small.private(f"/send parrotica {','.join(numbers(4))} Hi")
    assert "/connect" in reply, reply
    async with small.services.repo.db.read() as s:
        assert list(await s.exec(select(Confirmation))) == []


def test_documented_prices_are_declared_by_the_adapter() -> None:
    capabilities = parse_route("nusasms:wa").provider.capabilities
    assert capabilities.cost("wa") == Cost(balance="WA", text_chunk=1500, per_media=2.0)
    assert capabilities.cost("sms") is None  # the SMS APIs state no price
    assert parse_route("parrotica").provider.capabilities.cost("sms") is None


@pytest.mark.parametrize(
    ("route", "recipient", "group"),
    [
        ("nusasms:wa", "6281234567890", False),
        ("nusasms:smsgroup", "Sales Team", True),
        ("parrotica:sms", "group:4004", True),
        ("parrotica:sms", "contact:12", False),
        ("courier:bulk", "group:11111111-2222-4333-8444-000000000002", True),
        ("courier:bulk", "individual:11111111-2222-4333-8444-000000000002", False),
    ],
)
def test_which_recipients_are_provider_groups(route: str, recipient: str, group: bool) -> None:
    assert parse_route(route).channel.names_group(recipient) is group
