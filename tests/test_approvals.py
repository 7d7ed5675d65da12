"""Approvals (/approval, /approvals, Approve / Reject / Withdraw), through the real Application.

A group with a Telegram admin, a second admin, two operators and a viewer. An operator's
send above the chat's threshold reaches no provider until another admin approves it; a
double press or two admins at once send once; the requester cannot approve their own send,
a viewer or another operator cannot decide it; Reject, Withdraw and expiry end it with
nothing sent; an approval committed just before a stop is sent exactly once after the restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.config import Settings
from bot.handlers.approvals import DATA
from storage.models import Approval, ApprovalState, AuditEntry, Chat, Message, Schedule, utcnow
from tests.confirm_support import last_buttons
from tests.confirm_support import press as press_send
from tests.conftest import GROUP, NUSA_KEY, Bot, make_settings, stop_bot
from tests.fakes.courier import ACCOUNT_A, NUMBER_A1, ORG, PASSWORD, USERNAME
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, callback_query, feed
from tests.tracking_support import FakeClock, start_tracked_bot, tracker_of

ADMIN, OPERATOR, VIEWER, ADMIN2, OPERATOR2 = 10, 11, 12, 13, 14
NUMBERS = ["6281200000001", "6281200000002", "6281200000003"]
THREE = ",".join(NUMBERS)
COURIER_CONNECT = (
    f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG} "
    f"account_id={ACCOUNT_A} number_id={NUMBER_A1}"
)


async def start_team(
    settings: Settings, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> Bot:
    """The bot on ``clock`` (loops off), its group set up once (roles, NusaSMS, /approval 2)."""
    bot = await start_tracked_bot(settings, tg, nusa, clock)
    bot.tg.chat_admins[GROUP] = {ADMIN}
    bot.tg.chat_members[GROUP] = {ADMIN, OPERATOR, VIEWER, ADMIN2, OPERATOR2}
    return bot


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, confirm_above=3)


@pytest.fixture
async def team(
    settings: Settings, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> AsyncIterator[Bot]:
    bot = await start_team(settings, tg, nusa, clock)
    assert "viewer" in await bot.group(f"/role {VIEWER} viewer", user_id=ADMIN)
    assert "admin" in await bot.group(f"/role {ADMIN2} admin", user_id=ADMIN)
    await bot.services.accounts.connect(GROUP, "nusasms", {"api_key": NUSA_KEY}, actor=ADMIN)
    await bot.group("/use nusasms:wa", user_id=ADMIN)
    assert "more than 2 recipients" in await bot.group("/approval 2", user_id=ADMIN)
    try:
        yield bot
    finally:
        await stop_bot(bot)


def card(bot: Bot) -> tuple[int, int]:
    """The newest approval card in the group: its approval id and Telegram message id."""
    for call in reversed(bot.tg.calls_to("sendMessage")):
        markup: Any = call.params.get("reply_markup")
        if int(call.params.get("chat_id", 0)) != GROUP or not isinstance(markup, dict):
            continue
        data = str(markup["inline_keyboard"][0][0].get("callback_data", ""))
        if data.startswith(DATA):
            assert isinstance(call.result, dict)
            return int(data.split(":")[1]), int(call.result["message_id"])
    raise AssertionError("no approval card was posted")


async def press(bot: Bot, choice: str, user_id: int) -> str:
    """Press Approve (y), Reject (n) or Withdraw (w) on the newest card; what the bot said."""
    approval_id, message_id = card(bot)
    mark = bot.tg.mark()
    data = f"{DATA}{approval_id}:{choice}"
    await feed(
        bot.app,
        callback_query(
            data,
            message_chat_id=GROUP,
            message_id=message_id,
            user_id=user_id,
            username=f"u{user_id}",
        ),
    )
    return "\n".join(
        str(c.result.get("text", ""))
        for c in bot.tg.calls[mark:]
        if c.method in ("editMessageText", "sendMessage") and c.ok and isinstance(c.result, dict)
    )


async def messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message)))


async def audit(bot: Bot, action: str) -> list[AuditEntry]:
    async with bot.services.repo.db.read() as s:
        found = await s.exec(select(AuditEntry).where(col(AuditEntry.action) == action))
        return list(found)


async def held(bot: Bot, text: str = f"/send {THREE} Promo") -> str:
    reply = await bot.group(text, user_id=OPERATOR, username="op")
    assert "Awaiting approval" in reply, reply
    return reply


async def test_an_operators_send_waits_until_another_admin_approves_it(team: Bot) -> None:
    reply = await held(team)
    assert "Send via nusasms:wa to 3 recipients." in reply, reply
    assert "Asked by @op." in reply
    assert team.nusa.sent == []
    assert await messages(team) == []
    listed = await team.group("/approvals", user_id=VIEWER)
    assert "Send via nusasms:wa to 3 recipients, asked by @op" in listed, listed
    said = await press(team, "y", ADMIN)
    assert "✅ Approved by @u10; sending." in said, said
    assert "Send 1 via nusasms:wa" in said  # the status card, as for any send
    assert len(team.nusa.sent) == 3
    assert "already approved by @u10" in await press(team, "y", ADMIN2)
    assert len(team.nusa.sent) == 3
    assert len(await messages(team)) == 3
    [row] = await audit(team, "approve")
    assert (row.user_id, row.chat_id, row.outcome) == (ADMIN, GROUP, "ok")
    assert "Nothing waits" in await team.group("/approvals", user_id=VIEWER)


async def test_admins_sends_and_sends_within_the_threshold_never_wait(team: Bot) -> None:
    assert "accepted 3" in await team.group(f"/send {THREE} Hi", user_id=ADMIN2)
    assert "accepted 2" in await team.group(f"/send {THREE[:27]} Hi", user_id=OPERATOR)
    assert len(team.nusa.sent) == 5


async def test_nobody_but_another_admin_may_approve(team: Bot) -> None:
    await held(team)
    said = await press(team, "y", OPERATOR)
    assert "another admin must approve it" in said, said
    said = await press(team, "y", OPERATOR2)
    assert "needs the admin role" in said, said
    said = await press(team, "y", VIEWER)
    assert "needs the admin role" in said, said
    said = await press(team, "n", VIEWER)
    assert "needs the admin role" in said, said
    assert team.nusa.sent == []
    assert await audit(team, "approve") == []
    assert "Approved by @u13" in await press(team, "y", ADMIN2)
    assert len(team.nusa.sent) == 3


async def test_a_requester_who_is_admin_cannot_approve_their_own_send(team: Bot) -> None:
    # An operator's request; the same user made admin afterwards still cannot approve it.
    await held(team)
    assert "admin" in await team.group(f"/role {OPERATOR} admin", user_id=ADMIN)
    said = await press(team, "y", OPERATOR)
    assert "another admin must approve it" in said, said
    assert team.nusa.sent == []


async def test_reject_ends_it_and_tells_the_requester(team: Bot) -> None:
    await held(team)
    said = await press(team, "n", ADMIN)
    assert "❌ Rejected by @u10; nothing was sent." in said, said
    assert "@op: your send (approval #1) was rejected by @u10." in said
    assert "rejected by @u10; nothing was sent" in await press(team, "y", ADMIN2)
    assert team.nusa.sent == []
    assert await messages(team) == []
    [row] = await audit(team, "reject")
    assert row.user_id == ADMIN


async def test_only_the_requester_may_withdraw(team: Bot) -> None:
    await held(team)
    said = await press(team, "w", ADMIN)
    assert "Only @op, who asked for this send, can withdraw it." in said, said
    said = await press(team, "w", OPERATOR)
    assert "↩️ Withdrawn by @u11; nothing was sent." in said, said
    assert "@op withdrew their send (approval #1): nothing to decide." in said
    assert "withdrawn; nothing was sent" in await press(team, "y", ADMIN)
    assert team.nusa.sent == []
    [row] = await audit(team, "withdraw")
    assert row.user_id == OPERATOR


async def test_the_sweep_expires_it_and_a_later_press_says_so(team: Bot, clock: FakeClock) -> None:
    await held(team)
    _, message_id = card(team)
    await tracker_of(team).tick(clock.advance(23 * 3600))
    assert team.tg.calls_to("editMessageText") == []  # not yet
    await tracker_of(team).tick(clock.advance(2 * 3600))
    edits = [
        c for c in team.tg.calls_to("editMessageText") if c.params.get("message_id") == message_id
    ]
    assert edits
    assert "⌛ Expired: nobody approved it within 1d" in str(edits[-1].params["text"])
    said = await press(team, "y", ADMIN)
    assert "waited too long for approval and expired" in said, said
    assert team.nusa.sent == []
    assert "Nothing waits" in await team.group("/approvals", user_id=VIEWER)


async def test_a_press_after_its_time_says_it_expired_before_the_sweep(team: Bot) -> None:
    await held(team)
    async with team.services.repo.db.write() as s:
        await s.exec(update(Approval).values(expires_at=utcnow() - timedelta(seconds=1)))
    said = await press(team, "y", ADMIN)
    assert "expired; nothing was sent" in said, said
    assert team.nusa.sent == []


async def test_two_admins_pressing_at_once_send_once(team: Bot) -> None:
    await held(team)
    approval_id, message_id = card(team)
    await asyncio.gather(
        *(
            feed(
                team.app,
                callback_query(
                    f"{DATA}{approval_id}:y",
                    message_chat_id=GROUP,
                    message_id=message_id,
                    user_id=admin,
                ),
            )
            for admin in (ADMIN, ADMIN2)
        )
    )
    assert len(team.nusa.sent) == 3
    assert len(await messages(team)) == 3
    assert len(await audit(team, "approve")) == 1


async def test_an_approval_committed_before_a_stop_is_sent_once_after_the_restart(
    team: Bot, settings: Settings, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    await held(team)
    approval_id, _ = card(team)
    # The press's transaction, committed; the process stops before the send is stored.
    store = team.services.approvals.store
    assert await store.decide(
        approval_id, ApprovalState.APPROVED, by=ADMIN, by_name="@u10", now=utcnow()
    )
    assert nusa.sent == []
    await stop_bot(team)
    for _restart in range(2):  # the first restart sends it; the second sends nothing
        again = await start_team(settings, tg, nusa, clock)
        await stop_bot(again)
        assert len(nusa.sent) == 3
    assert sorted(m.destination for m in nusa.sent) == sorted(NUMBERS)
    team.app = (await start_team(settings, tg, nusa, clock)).app  # the fixture stops it
    row = await team.services.approvals.store.get(approval_id)
    assert row is not None
    assert row.state == ApprovalState.DONE.value
    assert len(await messages(team)) == 3


async def test_a_schedule_is_created_only_once_approved(team: Bot) -> None:
    reply = await held(team, f"/schedule in 2h {THREE} Later")
    assert "Scheduled send via nusasms:wa to 3 recipients." in reply, reply
    async with team.services.repo.db.read() as s:
        assert list(await s.exec(select(Schedule))) == []
    said = await press(team, "y", ADMIN)
    assert "Approved by @u10; scheduled." in said, said
    assert "Scheduled send <b>#1</b>" in said or "Scheduled send #1" in said, said
    async with team.services.repo.db.read() as s:
        [row] = list(await s.exec(select(Schedule)))
    assert row.created_by == OPERATOR
    assert row.origin == "approval:1"
    assert team.nusa.sent == []


async def test_a_large_send_is_confirmed_by_the_operator_then_approved(team: Bot) -> None:
    four = ",".join([*NUMBERS, "6281200000004"])
    reply = await team.group(f"/send {four} Big", user_id=OPERATOR, username="op")
    assert "Send to 4 recipients?" in reply, reply
    assert "After Send it waits for another admin's approval" in reply
    send, _ = last_buttons(team, GROUP)
    said = await press_send(team, send, chat_id=GROUP, user_id=OPERATOR)
    assert "it now waits for an admin's approval" in said, said
    assert "Awaiting approval" in said
    assert "to 4 recipients" in said
    assert team.nusa.sent == []
    assert "Approved by @u13" in await press(team, "y", ADMIN2)
    assert len(team.nusa.sent) == 4


async def test_approval_setting_bad_input_and_reading_it(team: Bot) -> None:
    assert "cannot be negative" in await team.group("/approval -1", user_id=ADMIN)
    assert "Usage: /approval" in await team.group("/approval lots", user_id=ADMIN)
    assert "Usage: /approval" in await team.group("/approval 2.5", user_id=ADMIN)
    assert "Usage: /approval" in await team.group("/approval ²", user_id=ADMIN)
    assert "Usage: /approval" in await team.group("/approval 99999999999999999999", user_id=ADMIN)
    assert "more than 2 recipients" in await team.group("/approval", user_id=ADMIN)
    async with team.services.repo.db.read() as s:
        chat = await s.get(Chat, GROUP)
    assert chat is not None
    assert chat.approval_above == 2
    assert "needs the admin role" in await team.group("/approval 9", user_id=OPERATOR)
    assert "Approvals are off" in await team.group("/approval off", user_id=ADMIN)
    assert "accepted 3" in await team.group(f"/send {THREE} Hi", user_id=OPERATOR)
    details = [row.detail for row in await audit(team, "approval")]
    assert details == ["2", "needs the admin role", "off"]  # the refusal is audited too


async def test_an_approved_send_inside_quiet_hours_is_held_until_their_end(team: Bot) -> None:
    now = utcnow()
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"
    assert "Quiet hours" in await team.group(f"/quiet {window}", user_id=ADMIN)
    await held(team)  # approval first: quiet hours do not hold it before an admin decides
    said = await press(team, "y", ADMIN)
    assert "this send is held until" in said, said
    assert team.nusa.sent == []
    async with team.services.repo.db.read() as s:
        [row] = list(await s.exec(select(Schedule)))
    assert row.created_by == OPERATOR


async def test_a_multicast_is_confirmed_then_waits_for_approval(team: Bot) -> None:
    values = dict(pair.split("=", 1) for pair in COURIER_CONNECT.split()[2:])
    await team.services.accounts.connect(GROUP, "courier", values, actor=ADMIN)
    reply = await team.group("/multicast welcome-1", user_id=OPERATOR, username="op")
    assert "After Send it waits for another admin's approval" in reply, reply
    markup = team.tg.calls_to("sendMessage")[-1].params["reply_markup"]
    said = await press_send(
        team, markup["inline_keyboard"][0][0]["callback_data"], chat_id=GROUP, user_id=OPERATOR
    )
    assert "it now waits for an admin's approval" in said, said
    assert "Multicast via courier:multicast to a whole audience" in said, said
    assert not team.courier.multicasts
    assert "Approved by @u10" in await press(team, "y", ADMIN)
    assert len(team.courier.multicasts) == 1
    [message] = await messages(team)
    assert message.channel == "multicast"
    assert "already approved" in await press(team, "y", ADMIN2)
    assert len(team.courier.multicasts) == 1


async def test_a_private_chats_user_is_its_admin_and_never_waits(team: Bot) -> None:
    await team.connect()
    assert "more than 0 recipients" in await team.private("/approval 0")
    assert "accepted 3" in await team.private(f"/send nusasms:wa {THREE} Hi")


async def test_the_sweep_edits_the_card_in_the_chats_language(team: Bot, clock: FakeClock) -> None:
    await held(team)
    _, message_id = card(team)
    assert "Bahasa Indonesia" in await team.group("/lang id", user_id=ADMIN)
    await tracker_of(team).tick(clock.advance(25 * 3600))
    edits = [
        c for c in team.tg.calls_to("editMessageText") if c.params.get("message_id") == message_id
    ]
    assert edits
    assert "⌛ Kedaluwarsa: tidak ada yang menyetujuinya" in str(edits[-1].params["text"])
