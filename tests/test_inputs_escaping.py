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
from tests.telegram_html import html_problems

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


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "<b>bold</b> and <i>it</i>",
        "a &lt; b &amp;&amp; c &gt; d &quot;q&quot; &#128512; &#x1F600;",
        '<a href="tg://user?id=1">Alice</a>',
        '<span class="tg-spoiler">x</span> <tg-spoiler>y</tg-spoiler>',
        '<pre><code class="language-python">x = 1</code></pre>',
        "<blockquote expandable>quoted</blockquote>",
        "x" * 4096,
    ],
)
def test_the_strict_checker_accepts_telegram_html(text: str) -> None:
    assert html_problems(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "<p>paragraph</p>",
        "<b>unclosed",
        "stray</b>",
        "<b><i>crossed</b></i>",
        "a < b",
        "a > b",
        "a & b",
        "&nbsp;",
        "&amp",
        "<span>no class</span>",
        "<a>no href</a>",
        "line<br/>",
        "<b onclick='x'>x</b>",
        "<!-- comment -->",
        "x" * 4097,
        "<b>" + "x" * 4097 + "</b>",
    ],
)
def test_the_strict_checker_refuses_what_telegram_refuses(text: str) -> None:
    assert html_problems(text) != []
