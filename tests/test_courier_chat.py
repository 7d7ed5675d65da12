"""courier from the chat, on the provider layer's side: /connect, /senders, /send courier:sms.

The real Application with the offline Telegram layer and the courier + identity fake behind
the same MockTransport as the other providers (routed by host). The courier-specific commands
(/multicast, e-mail subjects, bulk recipients) are the bot side's and tested there.
"""

from __future__ import annotations

from tests.conftest import USER, Bot
from tests.fakes.courier import ACCOUNT_A, NUMBER_A1, ORG, PASSWORD, PHONE_A1, USERNAME

CONNECT = f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG}"


async def test_connect_logs_in_and_checks_the_organization(bot: Bot) -> None:
    mark = bot.tg.mark()
    await bot.private(CONNECT)
    connected, pick = bot.replies_since(mark, USER)
    assert "connected" in connected, connected
    # Two numbers can text and none is chosen: the chat is asked, with buttons.
    assert "Pick what this chat sends from" in pick, pick
    assert "+15550100003" in pick  # listed, but it cannot text: no button
    (markup,) = [
        c.params["reply_markup"]
        for c in bot.tg.calls_to("sendMessage")
        if "Pick what" in c.params.get("text", "")
    ]
    labels = [b["text"] for row in markup["inline_keyboard"] for b in row]
    assert labels == ["+15550100001", "+15550100002"]
    assert bot.courier.logins == 1
    assert bot.courier.requests_to(f"/v1/organizations/{ORG}/", "GET")


async def test_a_wrong_password_is_refused_and_nothing_stored(bot: Bot) -> None:
    reply = await bot.private(
        f"/connect courier username={USERNAME} password=nope organization_id={ORG}"
    )
    assert "refused the user name or password" in reply, reply
    assert "nope" not in reply
    reply = await bot.private("/send courier:sms 6281234567890 Hello")
    assert "not connected" in reply, reply


async def test_a_missing_organization_is_named(bot: Bot) -> None:
    missing = "deadbeef-0000-4000-8000-000000000000"
    reply = await bot.private(
        f"/connect courier username={USERNAME} password={PASSWORD} organization_id={missing}"
    )
    assert f"no organization {missing} visible to this user" in reply, reply


async def test_a_text_goes_from_the_chosen_number(bot: Bot) -> None:
    reply = await bot.private(f"{CONNECT} account_id={ACCOUNT_A} number_id={NUMBER_A1}")
    assert "connected" in reply, reply
    reply = await bot.private("/send courier:sms 6281234567890 Your appointment is at 9")
    assert "accepted" in reply, reply
    (text,) = bot.courier.texts.values()
    assert text.attributes["target"] == "+6281234567890"
    assert text.attributes["from"] == PHONE_A1


async def test_senders_lists_the_numbers(bot: Bot) -> None:
    await bot.private(CONNECT)
    reply = await bot.private("/senders courier")
    assert PHONE_A1 in reply, reply
    assert "+15550100002" in reply, reply


async def test_a_text_without_a_chosen_number_asks_to_pick_one(bot: Bot) -> None:
    await bot.private(CONNECT)
    reply = await bot.private("/send courier:sms 6281234567890 Hello")
    assert "/senders courier" in reply, reply
    assert not bot.courier.texts
