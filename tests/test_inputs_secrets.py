"""Secrets typed into the chat are never echoed, never logged, and deleted from groups.

A key typed without ``k=`` (``/connect nusasms <key>``) must not appear, not even in part, in
any reply or log line; in a group any message that looks like it carries credentials is
deleted (a /connect with values, or a secret ``key=value``), also when the secret is edited
into an earlier message.
"""

from __future__ import annotations

import logging

import pytest

from tests.conftest import GROUP, USER, Bot
from tests.fakes.telegram import edited_message, feed, group_message, private_message

KEY = "Zq8XkP3vRm2WtY7nQ4"  # no four characters of it occur in any reply of the bot


def fragments(secret: str, size: int = 4) -> set[str]:
    """Every run of ``size`` characters of ``secret``: none may leak."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaks(text: str, secret: str = KEY) -> list[str]:
    """The fragments of ``secret`` found in ``text`` (in any case: keys may be lower-cased)."""
    return sorted(f for f in fragments(secret) if f.lower() in text.lower())


# One-line /connect forms that a secret can hide in, in a private chat.
PRIVATE_FORMS = [
    pytest.param(f"/connect nusasms {KEY}", id="bare-key"),
    pytest.param(f"/connect nusasms {KEY}==", id="base64-padding-looks-like-k=v"),
    pytest.param(f"/connect nusasms {KEY}=", id="key-then-equals"),
    pytest.param(f"/connect nusasms api_key= {KEY}", id="value-after-a-space"),
    pytest.param(f"/connect nusasms sms_user=u {KEY}", id="after-a-good-pair"),
    pytest.param(f"/connect pigeon api_key={KEY}", id="unknown-provider"),
    pytest.param(f"/connect@chatops_test_bot nusasms {KEY}", id="addressed"),
]


@pytest.mark.parametrize("text", PRIVATE_FORMS)
async def test_a_key_in_a_private_connect_is_never_echoed_nor_logged(
    bot: Bot, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the operator's default LOG_LEVEL
    mark = bot.tg.mark()
    update = private_message(text)
    await feed(bot.app, update)
    replies = bot.replies_since(mark, USER)
    assert replies, "the user is told what was wrong"
    assert all(leaks(r) == [] for r in replies), replies
    assert leaks(caplog.text) == []
    deleted = [c.params.get("message_id") for c in bot.tg.calls_to("deleteMessage")]
    assert update["message"]["message_id"] in deleted
    assert await bot.services.repo.get_credential(USER, "nusasms") is None


# (what a group member typed, whether it is deleted)
GROUP_MESSAGES = [
    pytest.param(f"/connect nusasms {KEY}", True, id="connect-bare-key"),
    pytest.param(f"/connect nusasms api_key={KEY}", True, id="connect-k=v"),
    pytest.param(f"/connect@chatops_test_bot nusasms {KEY}", True, id="connect-addressed"),
    pytest.param(f"/CONNECT nusasms {KEY}", True, id="connect-upper-case"),
    pytest.param(f"our key is api_key={KEY}", True, id="plain-text-secret-pair"),
    pytest.param(f"sms_password={KEY}", True, id="another-secret-key"),
    pytest.param("/connect nusasms", False, id="connect-without-values"),
    pytest.param("/connect", False, id="connect-alone"),
    pytest.param("sms_user=alice", False, id="a-key-that-is-not-secret"),
    pytest.param("/status 3", False, id="other-command"),
]


@pytest.mark.parametrize("edited", [False, True], ids=["new", "edited-in"])
@pytest.mark.parametrize(("text", "secret"), GROUP_MESSAGES)
async def test_group_messages_carrying_credentials_are_deleted(
    bot: Bot, text: str, secret: bool, edited: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the operator's default LOG_LEVEL
    bot.tg.chat_admins[GROUP] = {USER}
    original = group_message("/connect nusasms" if edited else text)
    await feed(bot.app, original)
    mark = bot.tg.mark()
    if edited:
        await feed(bot.app, edited_message(original, text))
    message_id = original["message"]["message_id"]
    deletes = [
        c
        for c in bot.tg.calls_to("deleteMessage")
        if c.params.get("message_id") == message_id and int(c.params["chat_id"]) == GROUP
    ]
    assert bool(deletes) == secret
    replies = bot.replies_since(0 if not edited else mark, GROUP)
    warned = any("Never type credentials in a group" in r for r in replies)
    assert warned == secret, replies
    assert all(leaks(r) == [] for r in replies)
    assert leaks(caplog.text) == []
    assert await bot.services.repo.get_credential(GROUP, "nusasms") is None


async def test_an_edit_without_a_secret_still_runs_nothing(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    original = group_message("/connect nusasms")
    await feed(bot.app, original)
    mark = bot.tg.mark()
    await feed(bot.app, edited_message(original, "/connect parrotica"))
    assert bot.tg.calls[mark:] == []


async def test_a_command_carrying_a_secret_is_deleted_and_not_run(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.connect()  # the private chat is connected; the group is not, so any send
    # attempt would at least answer "not connected": nothing may answer but the warning
    mark = bot.tg.mark()
    await feed(bot.app, group_message(f"/send nusasms:wa 6281234567890 key api_key={KEY}"))
    replies = bot.replies_since(mark, GROUP)
    assert len(replies) == 1, replies
    assert "Never type credentials in a group" in replies[0]
    assert bot.nusa.sent == []
    assert all(leaks(r) == [] for r in replies)
