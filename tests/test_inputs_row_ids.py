"""Ids beyond a row id's range and NUL characters, typed or pressed: answers, never errors.

Integer primary keys are 32-bit on PostgreSQL, whose driver refuses a larger value as an error,
and PostgreSQL text cannot hold NUL; both were found by the input fuzz on PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.conftest import USER, Bot
from tests.fakes.telegram import callback_query, feed
from tests.schedule_support import schedules

UNEXPECTED = "Something went wrong"
BIG = "6281234567890"  # a phone number typed where an id goes: over 2**31


@pytest.mark.parametrize("text", [f"/status {BIG}", f"/cancel {BIG}", f"/reschedule {BIG} in 1h"])
async def test_an_id_beyond_any_row_is_unknown(bot: Bot, text: str) -> None:
    reply = await bot.private(text)
    assert UNEXPECTED not in reply, reply
    assert BIG in reply or "no" in reply.lower(), reply


@pytest.mark.parametrize(
    "data",
    [
        f"card:refresh:{BIG}",
        f"card:history:{BIG}",
        f"sched:cancel:{BIG}",
        f"sched:card:{BIG}",
        f"msg:refresh:{BIG}",
        f"mc:{BIG}:y",
        f"lst:{BIG}:r",
    ],
)
async def test_a_button_with_an_id_beyond_any_row_is_answered(bot: Bot, data: str) -> None:
    mark = bot.tg.mark()
    await feed(bot.app, callback_query(data, message_chat_id=USER, message_id=5))
    assert bot.tg.calls_to("answerCallbackQuery")
    assert all(UNEXPECTED not in r for r in bot.replies_since(mark, USER))


async def test_nul_characters_are_dropped_from_commands(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private(f"/schedule in 1h {BIG} Hi\x00 there")
    assert "Scheduled send #1" in reply, reply
    (row,) = await schedules(bot)
    assert row.text == "Hi there"
    assert "Template x saved" in await bot.private("/template add x \x00Hello {name}")
