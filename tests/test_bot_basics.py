"""Driving real updates through the Application: start, help, connect, send, status."""

from __future__ import annotations

from tests.conftest import Bot


async def test_help_lists_commands(bot: Bot) -> None:
    reply = await bot.private("/help")
    assert "/send" in reply
    assert "/connect" in reply
    assert bot.tg.calls_to("setMyCommands")


async def test_connect_send_status(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private("/send nusasms:wa 6281234567890 Hello")
    assert "Send 1" in reply, reply
    assert "accepted" in reply
    assert bot.nusa.sent[-1].destination == "6281234567890"
    ref = bot.nusa.sent[-1].ref_no
    bot.nusa.set_status(ref, "D")
    reply = await bot.private("/status 1")
    assert "delivered" in reply, reply
