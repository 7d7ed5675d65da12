"""Command text as typed: invisible characters, and /role where roles do not exist.

Zero-width spaces, joiners, word joiners, byte-order marks and bidi marks come with text pasted
from documents and web pages; the command reads what the user sees. Joiners that join
something (an emoji sequence, a script's letters) stay in the message text.
"""

from __future__ import annotations

import pytest

from bot.parsing import command_body
from tests.conftest import Bot

NUMBER = "6281234567890"
INVISIBLE = {
    "zero-width-space": "\u200b",
    "zero-width-non-joiner": "\u200c",
    "zero-width-joiner": "\u200d",
    "word-joiner": "\u2060",
    "byte-order-mark": "\ufeff",
    "left-to-right-mark": "\u200e",
    "right-to-left-mark": "\u200f",
    "arabic-letter-mark": "\u061c",
    "left-to-right-embedding": "\u202a",
    "pop-directional-formatting": "\u202c",
    "right-to-left-override": "\u202e",
    "first-strong-isolate": "\u2068",
    "pop-directional-isolate": "\u2069",
}
CHARS = [pytest.param(char, id=name) for name, char in INVISIBLE.items()]

# (command with {z} where the invisible character goes, what the reply says)
COMMANDS = [
    pytest.param("/use nusasms{z}:wa", "Default route is now nusasms:wa", id="route-inside"),
    pytest.param("/use {z}nusasms:sms", "Default route is now nusasms:sms", id="route-before"),
    pytest.param("/use nusasms:wa{z}", "Default route is now nusasms:wa", id="route-after"),
    pytest.param("/timezone Asia/{z}Jakarta", "Time zone set to Asia/Jakarta", id="zone"),
    pytest.param("/country I{z}D", "read as ID numbers", id="country"),
    pytest.param("/status {z}1", "This chat has no message #1", id="id"),
]


@pytest.mark.parametrize("char", CHARS)
@pytest.mark.parametrize(("command", "expected"), COMMANDS)
async def test_invisible_characters_in_arguments_are_ignored(
    bot: Bot, command: str, expected: str, char: str
) -> None:
    reply = await bot.private(command.format(z=char))
    assert expected in reply, reply


@pytest.mark.parametrize("char", CHARS)
@pytest.mark.parametrize(
    "to",
    [
        pytest.param("62812{z}34567890", id="inside"),
        pytest.param("{z}+62 812 3456 7890", id="before"),
        pytest.param("+62 812{z} 3456 7890", id="between-pieces"),
    ],
)
async def test_invisible_characters_in_numbers_are_ignored(bot: Bot, to: str, char: str) -> None:
    await bot.connect()
    reply = await bot.private(f"/send nusasms:wa {to.format(z=char)} Hello")
    assert "Send 1" in reply, reply
    assert bot.nusa.sent[-1].destination == NUMBER
    assert bot.nusa.sent[-1].message == "Hello"


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        pytest.param("👩\u200d💻 ready", "👩\u200d💻 ready", id="emoji-zwj-sequence"),
        pytest.param("می\u200cخواهم", "می\u200cخواهم", id="persian-zwnj"),
        pytest.param("a\u200db \u200bc", "ab c", id="stray-joiner-and-space"),
        pytest.param("\ufeffHi\u2060!", "Hi!", id="bom-and-word-joiner"),
    ],
)
def test_joiners_that_join_something_stay_in_the_text(typed: str, kept: str) -> None:
    assert command_body(f"/send 628 {typed}") == f"628 {kept}"


async def test_message_text_keeps_its_emoji_sequences(bot: Bot) -> None:
    await bot.connect()
    await bot.private(f"/send nusasms:wa {NUMBER} 👩\u200d💻 done")
    assert bot.nusa.sent[-1].message == "👩\u200d💻 done"


@pytest.mark.parametrize(
    "command",
    ["/role", "/role @bob admin", "/role 7 viewer", "/role admin", "/role -5 admin", "/role ² x"],
)
async def test_role_in_a_private_chat_says_roles_are_for_groups(bot: Bot, command: str) -> None:
    reply = await bot.private(command)
    assert "Roles are for group chats" in reply, reply
