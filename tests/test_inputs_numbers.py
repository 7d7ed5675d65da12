"""Numbers typed in chat: ids, counts and durations are read by one parser each.

``str.isdigit()`` accepts characters ``int()`` refuses (``²``), ``int()`` reads other scripts'
digits (``١٢``, ``߁``) and numbers the database cannot store; every command must answer such
input with a clear refusal, never with the "something went wrong" apology, and must not act
on it (no role given to ``-5``, no schedule for ``in ١٢h``).
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.services.errors import BadInput
from bot.services.integers import MAX_ID, parse_id, read_id, read_whole
from storage.models import Member, Schedule
from tests.conftest import GROUP, Bot
from tests.fakes.telegram import utf16_len

UNEXPECTED = "Something went wrong"

# Each is refused as an id: not ASCII digits, not from 1, or beyond 64 bits.
BAD_IDS = [
    pytest.param("²", id="superscript"),
    pytest.param("١٢", id="arabic-indic"),
    pytest.param("߁", id="nko"),
    pytest.param("１２", id="fullwidth"),
    pytest.param(str(MAX_ID + 1), id="2**63"),
    pytest.param("9" * 30, id="30-digits"),
    pytest.param("1" * 4000, id="4000-digits"),
    pytest.param("-5", id="negative"),
    pytest.param("0", id="zero"),
    pytest.param("+7", id="plus-sign"),
    pytest.param("12abc", id="trailing-letters"),
    pytest.param("1_000", id="underscore"),
]

# (command with {n} for the number, chat, what the refusal says)
ID_COMMANDS = [
    pytest.param("/status {n}", "private", "is not a message id", id="status"),
    pytest.param("/cancel {n}", "private", "is not a scheduled send id", id="cancel"),
    pytest.param(
        "/reschedule {n} in 2h", "private", "is not a scheduled send id", id="reschedule"
    ),
    pytest.param("/history {n}", "private", "/history takes a number from 1 to 100", id="history"),
    pytest.param("/role {n} admin", "group", "is not a user id", id="role"),
]


@pytest.mark.parametrize("number", BAD_IDS)
@pytest.mark.parametrize(("command", "where", "refusal"), ID_COMMANDS)
async def test_bad_ids_get_a_clear_refusal(
    bot: Bot, command: str, where: str, refusal: str, number: str
) -> None:
    bot.tg.chat_admins[GROUP] = {1}
    text = command.format(n=number)
    reply = await (bot.group(text) if where == "group" else bot.private(text))
    assert refusal in reply, reply
    assert UNEXPECTED not in reply
    assert utf16_len(reply) < 400  # a 4,000-digit "id" is not echoed in full
    async with bot.services.repo.db.read() as s:
        assert list(await s.exec(select(Member))) == []  # /role gave nobody a role


# (what follows "/schedule in", what the refusal says)
BAD_DURATIONS = [
    pytest.param("² h", "In how long?", id="superscript-apart"),
    pytest.param("²h", "In how long?", id="superscript-compact"),
    pytest.param("١٢h", "In how long?", id="arabic-indic-compact"),
    pytest.param("١٢ hours", "In how long?", id="arabic-indic-apart"),
    pytest.param("߁m", "In how long?", id="nko"),
    pytest.param("9999999999999999h", "more than a year ahead", id="timedelta-overflow"),
    pytest.param("9" * 30 + "h", "more than a year ahead", id="30-digits"),
    pytest.param("1" * 4000 + " minutes", "more than a year ahead", id="4000-digits"),
    pytest.param("1h 99999999999999999d", "more than a year ahead", id="sum-overflow"),
]


@pytest.mark.parametrize(("duration", "refusal"), BAD_DURATIONS)
async def test_bad_durations_get_a_clear_refusal(bot: Bot, duration: str, refusal: str) -> None:
    await bot.connect()
    reply = await bot.private(f"/schedule in {duration} 6281234567890 Hi")
    assert refusal in reply, reply
    assert UNEXPECTED not in reply
    async with bot.services.repo.db.read() as s:
        assert list(await s.exec(select(Schedule))) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("12", 12),
        ("007", 7),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),
        ("9" * 19, None),
        ("1" * 5000, None),  # int() itself refuses more than 4,300 digits
        ("²", None),
        ("١٢", None),
        ("-1", None),
        (" 1", None),
        ("1\n", None),
        ("", None),
    ],
)
def test_read_whole_takes_ascii_digits_up_to_64_bits(text: str, expected: int | None) -> None:
    assert read_whole(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), ("#12", 12), ("0", None), ("#", None), ("##1", None), ("#-1", None)],
)
def test_read_id_takes_an_optional_hash_and_refuses_zero(text: str, expected: int | None) -> None:
    assert read_id(text) == expected


def test_parse_id_names_what_it_expected_and_escapes_the_input() -> None:
    with pytest.raises(BadInput) as caught:
        parse_id("<b>", what="scheduled send")
    assert "“&lt;b&gt;” is not a scheduled send id" in caught.value.message
    assert "like 12 or #12" in caught.value.message
