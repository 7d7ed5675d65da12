"""/timezone, /country, /role, /balance, /help by role, unknown commands."""

from __future__ import annotations

from tests.conftest import GROUP, USER, Bot
from tests.fakes.telegram import group_message


async def test_timezone_and_country(bot: Bot) -> None:
    assert "UTC" in await bot.private("/timezone")
    assert "Asia/Jakarta" in await bot.private("/timezone Asia/Jakarta")
    assert "not a time zone" in await bot.private("/timezone Mars/Olympus")
    assert "ID numbers" in await bot.private("/country id")
    assert "not an ISO 3166" in await bot.private("/country XX")
    chat = await bot.services.repo.get_chat(USER)
    assert chat is not None
    assert (chat.timezone, chat.country) == ("Asia/Jakarta", "ID")


async def test_roles_by_id_reply_and_username(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    assert "No roles set" in await bot.group("/role")
    assert "7 is now viewer" in await bot.group("/role 7 viewer")
    target = group_message("hello", user_id=8, username="bob")
    reply = await bot.group("/role operator", reply_to=target)
    assert "@bob is now operator" in reply
    assert "@bob is now admin" in await bot.group("/role @bob admin")
    assert "I do not know @carol" in await bot.group("/role @carol viewer")
    assert "not a role" in await bot.group("/role 7 boss")
    assert "Usage" in await bot.group("/role 7")
    listing = await bot.group("/role")
    assert "@bob: admin" in listing
    assert "7: viewer" in listing
    assert "Roles are for group chats" in await bot.private("/role 7 viewer")


async def test_help_depends_on_role(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role 7 viewer")
    viewer_help = (await bot.group("/help", user_id=7)).split("Your commands")[1]
    assert "/status" in viewer_help
    assert "/send " not in viewer_help  # (/senders, which viewers may read, is not /send)
    assert "/senders" in viewer_help
    assert "role: viewer" in viewer_help
    admin_help = (await bot.group("/help")).split("Your commands")[1]
    assert "/send" in admin_help
    assert "/role" in admin_help


async def test_command_menus_come_from_the_registry(bot: Bot) -> None:
    from bot.handlers import COMMANDS

    published = {
        c.params["scope"]["type"]: c.params["commands"] for c in bot.tg.calls_to("setMyCommands")
    }
    names = {c["command"] for c in published["all_private_chats"]}
    assert names == {c.name for c in COMMANDS}


async def test_balance(bot: Bot) -> None:
    assert "No provider is connected" in await bot.private("/balance")
    await bot.connect()
    bot.nusa.credit.wa_balance = 1234
    reply = await bot.private("/balance")
    assert "NusaSMS" in reply
    assert "WA: 1,234 credits" in reply
    bot.nusa.fail_next(500, "boom", path_contains="/balance")
    assert "failed on its side" in await bot.private("/balance")
    assert "Unknown provider" in await bot.private("/balance twilio")


async def test_unknown_commands(bot: Bot) -> None:
    assert "Unknown command /frobnicate" in await bot.private("/frobnicate")
    # in a group, only commands addressed to this bot get an answer
    assert await bot.group("/frobnicate") == ""
    assert "Unknown command" in await bot.group("/frobnicate@chatops_test_bot")
    assert await bot.group("/frobnicate@other_bot") == ""


async def test_commands_without_entities_still_work(bot: Bot) -> None:
    from tests.fakes.telegram import feed, private_message

    update = private_message("/timezone Asia/Jakarta")
    update["message"].pop("entities")
    await feed(bot.app, update)
    assert "Asia/Jakarta" in (bot.tg.last_text(USER) or "")
    update = private_message("/nonsense")
    update["message"].pop("entities")
    await feed(bot.app, update)
    assert "Unknown command /nonsense" in (bot.tg.last_text(USER) or "")


async def test_edited_commands_do_not_run_again(bot: Bot) -> None:
    from tests.fakes.telegram import feed, private_message

    await bot.connect()
    update = private_message("/send 6281234567890 Hi")
    await feed(bot.app, update)
    edited = {"update_id": update["update_id"] + 1000, "edited_message": update["message"]}
    edited["edited_message"]["text"] = "/send 6281234567890 Hi again"
    edited["edited_message"]["edit_date"] = edited["edited_message"]["date"] + 5
    mark = bot.tg.mark()
    await feed(bot.app, edited)
    assert len(bot.nusa.sent) == 1
    assert bot.replies_since(mark, USER) == []  # not even an "already processed" card


async def test_user_text_in_error_replies_is_escaped(bot: Bot) -> None:
    # FakeTelegram rejects invalid HTML like Telegram does, so an unescaped "<b" would fail.
    assert "<b>" in await bot.private("/timezone <b>")
    assert "<x>" in await bot.private("/country <x>")
    assert "<i>" in await bot.private("/status <i>")
    assert "a<b" in await bot.private("/connect a<b")
    assert "<x>" in await bot.private("/use <x>")
    await bot.connect()
    assert "<p>" in await bot.private("/send <p> hi")
