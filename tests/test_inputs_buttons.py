"""Every button press is answered, whatever its data, so no Telegram client keeps spinning.

Data no handler takes (an old version's buttons, a stale id, garbage a client made up) gets
one short "no longer valid" answer; data a handler takes is answered by that handler, once.
"""

from __future__ import annotations

import pytest

from bot.services.integers import MAX_ID
from tests.conftest import USER, Bot
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import callback_query, feed

UNEXPECTED = "Something went wrong"
STALE = "no longer valid"

# (callback data, what the answer says; None where a handler gives its own answer)
PRESSES = [
    pytest.param("garbage", STALE, id="garbage"),
    pytest.param("x" * 64, STALE, id="64-bytes"),
    pytest.param("<b>&", STALE, id="html"),
    pytest.param("refresh:1", STALE, id="older-version"),
    pytest.param("sched:cancel:", STALE, id="cancel-without-id"),
    pytest.param("sched:cancel:²", STALE, id="cancel-superscript"),
    pytest.param("sched:cancel:١٢", STALE, id="cancel-arabic-indic"),
    pytest.param(f"sched:cancel:{MAX_ID + 1}", STALE, id="cancel-beyond-64-bits"),
    pytest.param("sched:cancel:0", STALE, id="cancel-zero"),
    pytest.param("sched:cancel:-1", STALE, id="cancel-negative"),
    pytest.param("snd:nusasms:١", STALE, id="sender-arabic-indic"),
    pytest.param("snd:nusasms:1:2", STALE, id="sender-extra-part"),
    pytest.param(f"card:refresh:{MAX_ID + 1}", None, id="card-beyond-64-bits"),
    pytest.param("card:refresh:١٢", None, id="card-arabic-indic"),
    pytest.param("card:explode:1", None, id="card-unknown-action"),
    pytest.param("sched:cancel:42", None, id="cancel-stale-id"),
    pytest.param("card:refresh:42", None, id="card-stale-id"),
    pytest.param("snd:nusasms:7", None, id="sender-stale-index"),
    pytest.param("sched:card:0", STALE, id="schedule-card-zero"),
    pytest.param("sched:card:x", STALE, id="schedule-card-garbage"),
    pytest.param("sched:card:42", "no scheduled send #42", id="schedule-card-stale-id"),
    pytest.param("card:history:42", "does not belong to this chat", id="history-stale-id"),
    pytest.param("msg:refresh:42", "not one you can see", id="inline-card-stale-id"),
    pytest.param("msg:refresh:x", "older version", id="inline-card-garbage"),
]


@pytest.mark.parametrize(("data", "answer"), PRESSES)
async def test_every_button_press_is_answered_once(
    bot: Bot, data: str, answer: str | None
) -> None:
    mark = bot.tg.mark()
    press = callback_query(data, message_chat_id=USER, message_id=5)
    await feed(bot.app, press)
    query_id = press["callback_query"]["id"]
    answers = [
        c
        for c in bot.tg.calls_to("answerCallbackQuery")
        if c.params.get("callback_query_id") == query_id
    ]
    assert len(answers) == 1, [c.method for c in bot.tg.calls[mark:]]
    if answer is not None:
        assert answer in str(answers[0].params.get("text", "")), answers[0].params
    assert all(UNEXPECTED not in r for r in bot.replies_since(mark, USER))


async def test_pressing_a_sender_button_twice_is_no_error(bot: Bot) -> None:
    # The second press leaves the list as it is: Telegram answers "message is not modified".
    await bot.private(f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}")
    await bot.private("/senders parrotica")
    listing = bot.tg.calls_to("sendMessage")[-1].result["message_id"]
    mark = bot.tg.mark()
    for _ in range(2):
        await feed(
            bot.app, callback_query("snd:parrotica:0", message_chat_id=USER, message_id=listing)
        )
    assert len(bot.tg.calls_to("answerCallbackQuery")) == 2
    assert all(UNEXPECTED not in r for r in bot.replies_since(mark, USER))
