"""User text echoed into HTML replies is escaped once and clipped.

The offline Telegram rejects malformed HTML and texts over 4,096 characters like the real one,
so an unescaped ``<b`` or a 4,000-character token echoed in full turns the reply into the
"something went wrong" apology. Each row echoes the payload back in a different reply.
"""

from __future__ import annotations

import pytest

from bot.services.errors import ECHO_LIMIT, echo
from tests.conftest import GROUP, Bot
from tests.fakes.telegram import utf16_len

UNEXPECTED = "Something went wrong"
HTML = "<b>&amp;"

# (command with {p} for the payload, chat, what the reply says around it)
ECHOES = [
    pytest.param("/x{p}", "private", "Unknown command /x", id="unknown-command"),
    pytest.param("/timezone {p}", "private", "is not a time zone", id="timezone"),
    pytest.param("/country {p}", "private", "is not an ISO 3166", id="country"),
    pytest.param("/use {p}", "private", "Unknown provider", id="use"),
    pytest.param("/use nusasms:{p}", "private", "has no channel", id="use-channel"),
    pytest.param("/status {p}", "private", "is not a message id", id="status"),
    pytest.param("/cancel {p}", "private", "is not a scheduled send id", id="cancel"),
    pytest.param("/schedule {p} 628 hi", "private", "as a time", id="schedule-when"),
    pytest.param("/schedule every {p} 09:00 628", "private", "every", id="schedule-every"),
    pytest.param("/connect {p}", "private", "Unknown provider", id="connect"),
    pytest.param("/disconnect {p}", "private", "Unknown provider", id="disconnect"),
    pytest.param("/balance {p}", "private", "Unknown provider", id="balance"),
    pytest.param("/send nusasms:wa {p} hi", "private", "is not a phone number", id="send-to"),
    pytest.param("/send nusasms:wa --{p} 628 hi", "private", "option", id="send-flag"),
    pytest.param("/check {p}", "private", "phone number", id="check"),
    pytest.param("/role x{p} admin", "group", "I do not know", id="role-user"),
    pytest.param("/role 7 {p}", "group", "is not a role", id="role-name"),
]


@pytest.mark.parametrize("long", [False, True], ids=["html", "4000-chars"])
@pytest.mark.parametrize(("command", "where", "context"), ECHOES)
async def test_echoed_user_text_is_escaped_once_and_clipped(
    bot: Bot, command: str, where: str, context: str, long: bool
) -> None:
    bot.tg.chat_admins[GROUP] = {1}
    await bot.connect()
    payload = HTML + ("<" * 4000 if long else "")
    text = command.format(p=payload)
    reply = await (bot.group(text) if where == "group" else bot.private(text))
    assert UNEXPECTED not in reply, reply
    assert context.lower() in reply.lower(), reply
    # Escaped exactly once: the user sees what they typed, not "&lt;b&gt;" nor a bold "&".
    assert HTML in reply, reply
    assert "&lt;" not in reply
    if long:
        assert utf16_len(reply) < 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("<b>&", "&lt;b&gt;&amp;"),
        ('"quoted"', "&quot;quoted&quot;"),
        ("x" * ECHO_LIMIT, "x" * ECHO_LIMIT),
        ("x" * (ECHO_LIMIT + 1), "x" * (ECHO_LIMIT - 1) + "…"),
        ("<" * 1000, "&lt;" * (ECHO_LIMIT - 1) + "…"),  # clipped before escaping
    ],
)
def test_echo_escapes_and_clips(text: str, expected: str) -> None:
    assert echo(text) == expected
