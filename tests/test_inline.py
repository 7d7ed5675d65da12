"""Inline mode and live card buttons, through the real Application and the fake Telegram.

A group of three members with different roles (a Telegram admin, an operator, a viewer set
with /role), an outsider with a private chat of their own, and a former member who sent in
the group and left. Inline results must never show a message of a chat the caller is not in.
"""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from bot.handlers.inline import CACHE_SECONDS
from bot.inbox import may_store
from bot.services.inline import MEMBERSHIP_TTL, PAGE
from storage.models import Message
from tests.conftest import GROUP, NUSA_KEY, Bot
from tests.fakes.telegram import (
    Call,
    callback_query,
    feed,
    group_message,
    inline_callback_query,
    inline_query,
)
from tests.tracking_support import FakeClock, card_buttons, press

ADMIN, OPERATOR, VIEWER, OUTSIDER, FORMER = 10, 11, 12, 13, 14
OPERATOR_NUMBER = "6281234567890"  # sent by the operator as 0812-3456-7890 (/country ID)
ADMIN_NUMBER = "6281111111111"


async def say(bot: Bot, text: str, user_id: int) -> str:
    """A group message from ``user_id``; the bot's last reply in the group."""
    return await bot.group(text, user_id=user_id, username=f"user{user_id}")


async def ask(bot: Bot, query: str, *, user_id: int, offset: str = "") -> Call:
    """Type ``@bot <query>`` as ``user_id``; the bot's answerInlineQuery call."""
    update = inline_query(query, user_id=user_id, offset=offset)
    mark = bot.tg.mark()
    await feed(bot.app, update)
    call = bot.tg.find_call("answerInlineQuery", since=mark)
    assert call is not None, "the inline query got no answer"
    assert call.ok, call.result
    assert call.params["inline_query_id"] == update["inline_query"]["id"]
    return call


def result_ids(call: Call) -> list[int]:
    return [int(r["id"]) for r in call.params["results"]]


def hint(call: Call) -> str:
    button: dict[str, Any] = call.params.get("button") or {}
    return str(button.get("text", ""))


async def messages_of(bot: Bot, chat_id: int) -> list[Message]:
    return await bot.services.repo.messages.latest(chat_id, 100)


@pytest.fixture
async def team(tbot: Bot, clock: FakeClock) -> Bot:
    """The group with its three members and their sends, an outsider, a former member."""
    tbot.services.inline.clock = clock
    tbot.tg.chat_admins[GROUP] = {ADMIN}
    tbot.tg.chat_members[GROUP] = {ADMIN, OPERATOR, VIEWER, FORMER}
    assert "viewer" in await say(tbot, f"/role {VIEWER} viewer", ADMIN)
    await tbot.services.accounts.connect(GROUP, "nusasms", {"api_key": NUSA_KEY}, actor=ADMIN)
    await say(tbot, "/use nusasms:wa", ADMIN)
    await say(tbot, "/country ID", ADMIN)
    assert "Send" in await say(tbot, "/send 0812-3456-7890 Hi from ops", OPERATOR)
    assert "Send" in await say(tbot, f"/send +{ADMIN_NUMBER} Hi from the admin", ADMIN)
    assert "Send" in await say(tbot, f"/send {OPERATOR_NUMBER} Hi from a former", FORMER)
    tbot.tg.chat_members[GROUP].discard(FORMER)  # left the group after sending
    # The outsider has their own private chat, sending to the operator's number too.
    await tbot.private(f"/connect nusasms api_key={NUSA_KEY}", user_id=OUTSIDER)
    assert "Send" in await tbot.private(
        f"/send nusasms:wa +{OPERATOR_NUMBER} Mine", user_id=OUTSIDER
    )
    return tbot


# -- scoping -----------------------------------------------------------------------------------


async def test_members_of_every_role_see_the_groups_messages_and_only_theirs(team: Bot) -> None:
    group_ids = [m.id for m in await messages_of(team, GROUP)]
    own_ids = [m.id for m in await messages_of(team, OUTSIDER)]
    assert len(group_ids) == 3
    assert len(own_ids) == 1
    for member in (ADMIN, OPERATOR, VIEWER):
        call = await ask(team, "", user_id=member)
        assert result_ids(call) == group_ids, member  # newest first
        assert call.params["is_personal"] is True
        assert call.params["cache_time"] == CACHE_SECONDS
    outsider = await ask(team, "", user_id=OUTSIDER)
    assert result_ids(outsider) == own_ids
    # Not by id either: a group message's id typed by the outsider finds nothing.
    probe = await ask(team, str(group_ids[0]), user_id=OUTSIDER)
    assert result_ids(probe) == []
    assert "No message of yours matches" in hint(probe)
    # The former member sent in the group, but Telegram says they left: nothing of it.
    assert result_ids(await ask(team, "", user_id=FORMER)) == []


async def test_a_member_who_leaves_stops_seeing_the_group(team: Bot, clock: FakeClock) -> None:
    assert len(result_ids(await ask(team, "", user_id=VIEWER))) == 3
    team.tg.chat_members[GROUP].discard(VIEWER)
    clock.advance(MEMBERSHIP_TTL.total_seconds() + 1)  # the remembered answer runs out
    gone = await ask(team, "", user_id=VIEWER)
    assert result_ids(gone) == []
    assert "no messages yet" in hint(gone).lower()


async def test_a_group_telegram_cannot_answer_for_counts_as_not_theirs(team: Bot) -> None:
    # The bot was removed from the group, say: getChatMember fails, nothing of it is shown.
    team.tg.fail_next("getChatMember", 400, "Bad Request: chat not found")
    assert result_ids(await ask(team, "", user_id=OPERATOR)) == []


async def test_membership_is_asked_once_per_ttl_not_per_keystroke(
    team: Bot, clock: FakeClock
) -> None:
    mark = team.tg.mark()
    for typed in ("", "0", "08", "081"):
        await ask(team, typed, user_id=VIEWER)
    asked = [c for c in team.tg.calls[mark:] if c.method == "getChatMember"]
    assert len(asked) == 1
    clock.advance(MEMBERSHIP_TTL.total_seconds() + 1)
    await ask(team, "0812", user_id=VIEWER)
    assert len([c for c in team.tg.calls[mark:] if c.method == "getChatMember"]) == 2


# -- matching ------------------------------------------------------------------------------------


async def test_matching_by_message_id(team: Bot) -> None:
    first = (await messages_of(team, GROUP))[-1]
    assert first.id is not None
    for typed in (str(first.id), f"#{first.id}", f"  {first.id} "):
        call = await ask(team, typed, user_id=VIEWER)
        assert result_ids(call) == [first.id], typed
    (result,) = (await ask(team, str(first.id), user_id=VIEWER)).params["results"]
    assert result["type"] == "article"
    assert f"#{first.id}" in result["title"]
    assert "Team" in result["description"]  # which chat it is from
    content = result["input_message_content"]
    assert content["parse_mode"] == "HTML"
    # Exactly what /status <id> shows (without asking the provider).
    status = await team.services.status.message_status(GROUP, first.id, poll=False)
    assert f"Message #{first.id}" in content["message_text"]
    assert "History (UTC):" in content["message_text"]
    assert status.message.recipient in content["message_text"]


async def test_matching_by_number_in_every_format(team: Bot) -> None:
    operators = [m.id for m in await messages_of(team, GROUP) if m.recipient == OPERATOR_NUMBER]
    assert len(operators) == 2  # the operator's and the former member's
    for typed in ("0812-3456-7890", "+62 812 3456 7890", OPERATOR_NUMBER, "(0812) 3456 7890"):
        assert result_ids(await ask(team, typed, user_id=VIEWER)) == operators, typed
    # The outsider's private chat has no /country: a national number reads as nothing there,
    # the international one finds only their own message.
    own = [m.id for m in await messages_of(team, OUTSIDER)]
    assert result_ids(await ask(team, "0812-3456-7890", user_id=OUTSIDER)) == []
    assert result_ids(await ask(team, f"+{OPERATOR_NUMBER}", user_id=OUTSIDER)) == own


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("999999", "No message of yours matches", id="unknown-id"),
        pytest.param("9" * 30, "No message of yours matches", id="huge-id"),
        pytest.param("#" + "9" * 30, "No message has the id", id="huge-hash-id"),
        pytest.param("#0", "No message has the id", id="zero"),
        pytest.param("hello there", "Type a message id", id="words"),
        pytest.param("<b>&", "Type a message id", id="html"),
        pytest.param("1" * 300, "Type a message id", id="too-long"),
        pytest.param("+62 812", "No message of yours matches", id="short-number"),
    ],
)
async def test_bad_input_gets_an_empty_list_with_a_hint(
    team: Bot, typed: str, expected: str
) -> None:
    call = await ask(team, typed, user_id=VIEWER)
    assert call.params["results"] == []
    assert expected in hint(call), call.params
    assert call.params["button"]["start_parameter"] == "inline"


async def test_results_are_paged_by_offset(team: Bot) -> None:
    for n in range(PAGE + 3):
        await say(team, f"/send +{ADMIN_NUMBER} Note {n}", ADMIN)
    expected = [m.id for m in await messages_of(team, GROUP)]
    first = await ask(team, "", user_id=OPERATOR)
    assert len(first.params["results"]) == PAGE
    assert first.params["next_offset"] == str(PAGE)
    second = await ask(team, "", user_id=OPERATOR, offset=first.params["next_offset"])
    assert result_ids(first) + result_ids(second) == expected
    assert second.params.get("next_offset", "") == ""
    made_up = await ask(team, "", user_id=OPERATOR, offset="-5")
    assert made_up.params["results"] == []


# -- a card posted through inline mode -----------------------------------------------------------


async def post_card(bot: Bot, user_id: int, message_id: int) -> str:
    """The user picks the message's result; the inline_message_id of the posted card."""
    update = inline_query(str(message_id), user_id=user_id)
    await feed(bot.app, update)
    return bot.tg.post_inline_result(update["inline_query"]["id"], str(message_id))


async def press_inline(bot: Bot, data: str, inline_id: str, user_id: int) -> Call:
    mark = bot.tg.mark()
    await feed(bot.app, inline_callback_query(data, inline_message_id=inline_id, user_id=user_id))
    answers = [c for c in bot.tg.calls[mark:] if c.method == "answerCallbackQuery"]
    assert len(answers) == 1, [c.method for c in bot.tg.calls[mark:]]
    return answers[0]


def status_polls(bot: Bot) -> int:
    return sum("/whatsapp/status/" in r.url.path for r in bot.nusa.requests)


async def test_refresh_on_an_inline_card_asks_the_provider_at_most_every_few_seconds(
    team: Bot, clock: FakeClock
) -> None:
    message = (await messages_of(team, GROUP))[-1]
    assert message.id is not None
    inline_id = await post_card(team, VIEWER, message.id)
    card = team.tg.inline_messages[inline_id]
    assert "accepted" in card["text"]
    button = card["reply_markup"]["inline_keyboard"][0][0]
    assert button["callback_data"] == f"msg:refresh:{message.id}"
    assert message.provider_ref is not None
    team.nusa.set_status(message.provider_ref, "D")

    polls = status_polls(team)
    answer = await press_inline(team, button["callback_data"], inline_id, OPERATOR)
    assert answer.params["text"] == "Asked about 1 message: 1 changed."
    assert status_polls(team) == polls + 1
    assert "delivered" in team.tg.inline_messages[inline_id]["text"]
    for _ in range(5):  # hammering: the provider is not asked again
        again = await press_inline(team, button["callback_data"], inline_id, VIEWER)
        assert "a moment ago" in again.params["text"]
    assert status_polls(team) == polls + 1
    clock.advance(6)
    team.nusa.set_status(message.provider_ref, "R")
    await press_inline(team, button["callback_data"], inline_id, ADMIN)
    assert status_polls(team) == polls + 2
    card = team.tg.inline_messages[inline_id]
    assert "read" in card["text"]
    assert "reply_markup" not in card, "nothing left to refresh"


async def test_refresh_by_someone_outside_the_chat_is_refused(team: Bot) -> None:
    message = (await messages_of(team, GROUP))[-1]
    assert message.id is not None
    inline_id = await post_card(team, VIEWER, message.id)
    before = dict(team.tg.inline_messages[inline_id])
    polls = status_polls(team)
    answer = await press_inline(team, f"msg:refresh:{message.id}", inline_id, OUTSIDER)
    assert answer.params["show_alert"] is True
    assert "not one you can see" in answer.params["text"]
    assert status_polls(team) == polls
    assert team.tg.inline_messages[inline_id] == before


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param("msg:refresh:999999", "not one you can see", id="stale-id"),
        pytest.param("msg:refresh:" + "9" * 40, "older version", id="huge-id"),
        pytest.param("msg:refresh:abc", "older version", id="garbage"),
        pytest.param("msg:explode:1", "older version", id="unknown-action"),
    ],
)
async def test_forged_inline_buttons_get_a_clear_answer(
    team: Bot, data: str, expected: str
) -> None:
    message = (await messages_of(team, GROUP))[-1]
    assert message.id is not None
    inline_id = await post_card(team, VIEWER, message.id)
    answer = await press_inline(team, data, inline_id, VIEWER)
    assert expected in answer.params["text"]
    assert answer.params["show_alert"] is True


# -- buttons of cards in the chat ----------------------------------------------------------------


async def test_history_button_posts_the_status_history_under_the_card(
    team: Bot, clock: FakeClock
) -> None:
    batch = (await messages_of(team, GROUP))[-1].batch_id
    card = await team.services.repo.messages.batch(batch)
    assert card is not None
    assert card.card_message_id is not None
    assert f"card:history:{batch}" in card_buttons(team, GROUP, card.card_message_id)
    mark = team.tg.mark()
    answer = await press(
        team, f"card:history:{batch}", chat_id=GROUP, message_id=card.card_message_id
    )
    assert answer.params["text"] == "The history follows below the card."
    posted = [c for c in team.tg.calls[mark:] if c.method == "sendMessage"]
    assert len(posted) == 1
    assert "History (UTC):" in posted[0].result["text"]
    assert posted[0].result["reply_to_message"]["message_id"] == card.card_message_id
    again = await press(
        team, f"card:history:{batch}", chat_id=GROUP, message_id=card.card_message_id
    )
    assert "just posted" in again.params["text"]
    assert len([c for c in team.tg.calls[mark:] if c.method == "sendMessage"]) == 1
    clock.advance(11)
    await press(team, f"card:history:{batch}", chat_id=GROUP, message_id=card.card_message_id)
    assert len([c for c in team.tg.calls[mark:] if c.method == "sendMessage"]) == 2


async def test_history_of_another_chats_send_is_refused(team: Bot) -> None:
    other = (await messages_of(team, OUTSIDER))[0].batch_id
    answer = await press(team, f"card:history:{other}", chat_id=GROUP, message_id=1)
    assert answer.params["show_alert"] is True
    assert f"Send {other} does not belong to this chat" in answer.params["text"]


async def schedule(bot: Bot, user_id: int) -> tuple[int, int]:
    """A schedule made in the group by ``user_id``: (its id, its confirmation's message id)."""
    mark = bot.tg.mark()
    await feed(
        bot.app,
        group_message(
            f"/schedule in 2h +{ADMIN_NUMBER} Later",
            chat_id=GROUP,
            user_id=user_id,
            username=f"user{user_id}",
        ),
    )
    call = next(c for c in bot.tg.calls[mark:] if c.method == "sendMessage")
    (button,) = call.params["reply_markup"]["inline_keyboard"][0]
    data = str(button["callback_data"])
    assert data.startswith("sched:card:")
    return int(data.rsplit(":", 1)[1]), int(call.result["message_id"])


async def test_cancel_from_a_schedules_card_follows_the_cancel_rules(team: Bot) -> None:
    mine, card = await schedule(team, OPERATOR)
    data = f"sched:card:{mine}"
    refused = await press(team, data, chat_id=GROUP, message_id=card)
    assert refused.params["show_alert"] is True  # user 1 is no member with a role: operator
    assert "operators cancel only their own" in refused.params["text"]

    mark = team.tg.mark()
    await feed_press(team, data, card, VIEWER)
    answer = team.tg.find_call("answerCallbackQuery", since=mark)
    assert answer is not None
    assert "needs the operator role" in answer.params["text"]
    assert (await team.services.schedules.owned(GROUP, mine)).state == "pending"

    mark = team.tg.mark()
    await feed_press(team, data, card, OPERATOR)
    answer = team.tg.find_call("answerCallbackQuery", since=mark)
    assert answer is not None
    assert answer.params["text"] == f"Scheduled send #{mine} cancelled."
    assert (await team.services.schedules.owned(GROUP, mine)).state == "cancelled"
    assert "reply_markup" not in team.tg.messages[(GROUP, card)]
    assert any("cancelled by @user11" in t for t in team.replies_since(mark, GROUP))

    mark = team.tg.mark()
    await feed_press(team, data, card, OPERATOR)  # a second press: a clear answer
    answer = team.tg.find_call("answerCallbackQuery", since=mark)
    assert answer is not None
    assert "cancelled already" in answer.params["text"]

    # An admin cancels anyone's, from the card as with /cancel.
    theirs, card = await schedule(team, OPERATOR)
    mark = team.tg.mark()
    await feed_press(team, f"sched:card:{theirs}", card, ADMIN)
    assert (await team.services.schedules.owned(GROUP, theirs)).state == "cancelled"
    other, _card = await schedule(team, ADMIN)
    reply = await say(team, f"/cancel {other}", OPERATOR)
    assert "operators cancel only their own" in reply
    assert (await team.services.schedules.owned(GROUP, other)).state == "pending"


async def feed_press(bot: Bot, data: str, message_id: int, user_id: int) -> None:
    """``user_id`` presses a button of the bot's group message ``message_id``."""
    await feed(
        bot.app,
        callback_query(
            data,
            message_chat_id=GROUP,
            message_id=message_id,
            user_id=user_id,
            username=f"user{user_id}",
            message=bot.tg.messages.get((GROUP, message_id)),
        ),
    )


async def test_a_schedule_card_of_another_chat_cannot_be_cancelled_here(team: Bot) -> None:
    theirs, _card = await schedule(team, OPERATOR)
    mark = team.tg.mark()
    await feed(
        team.app,
        callback_query(
            f"sched:card:{theirs}", message_chat_id=OUTSIDER, message_id=1, user_id=OUTSIDER
        ),
    )
    answer = team.tg.find_call("answerCallbackQuery", since=mark)
    assert answer is not None
    assert "belongs to another chat" in answer.params["text"]
    assert (await team.services.schedules.owned(GROUP, theirs)).state == "pending"


async def test_help_tells_everyone_about_inline_mode(team: Bot) -> None:
    for member in (ADMIN, VIEWER):
        reply = await say(team, "/help", member)
        assert "Inline mode: type @chatops_test_bot <message id or number>" in reply


def test_inline_queries_are_never_stored_for_replay() -> None:
    # Answered within seconds or never: a replay after a restart would answer an expired query.
    update = Update.de_json(inline_query("12"), None)
    assert update is not None
    assert not may_store(update)
    assert may_store(Update.de_json(group_message("/status 12"), None))


async def test_operators_reschedule_only_their_own_schedules(team: Bot) -> None:
    admins, _card = await schedule(team, ADMIN)
    before = (await team.services.schedules.owned(GROUP, admins)).next_run_at
    reply = await say(team, f"/reschedule {admins} in 3h", OPERATOR)
    assert "operators reschedule only their own" in reply
    assert (await team.services.schedules.owned(GROUP, admins)).next_run_at == before

    mine, _card = await schedule(team, OPERATOR)
    assert "Rescheduled" in await say(team, f"/reschedule {mine} in 3h", OPERATOR)
    assert "needs the operator role" in await say(team, f"/reschedule {mine} in 4h", VIEWER)
    assert "Rescheduled" in await say(team, f"/reschedule {mine} in 5h", ADMIN)
    assert "Rescheduled" in await say(team, f"/reschedule {admins} in 5h", ADMIN)
    moved = (await team.services.schedules.owned(GROUP, admins)).next_run_at
    assert moved is not None
    assert before is not None
    assert moved > before
