"""/senders: a provider's sender identities, and the buttons that pick this chat's sender."""

from __future__ import annotations

from tests.conftest import USER, Bot
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import callback_query, feed

CONNECT = f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"


async def _connected(bot: Bot) -> None:
    bot.parrotica.sender_ids.append(
        {"id": 3, "senderId": "NEWS", "status": "approved", "createdAt": None, "updatedAt": None}
    )
    assert "connected" in await bot.private(CONNECT)


async def test_senders_lists_every_identity_and_offers_the_usable_ones(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/senders")
    assert "✅ ABC123 (approved)" in reply, reply  # the default: first approved
    assert "⏳ XYZ789 (pending)" in reply
    assert "• NEWS (approved)" in reply
    markup = bot.tg.calls_to("sendMessage")[-1].params["reply_markup"]
    assert markup == {"inline_keyboard": [[{"text": "NEWS", "callback_data": "snd:parrotica:2"}]]}


async def test_a_pressed_sender_is_what_the_chat_sends_from(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/senders parrotica")
    listing = bot.tg.calls_to("sendMessage")[-1].result
    await feed(
        bot.app,
        callback_query(
            "snd:parrotica:2",
            message_chat_id=USER,
            message_id=listing["message_id"],
            message=listing,
        ),
    )
    edited = bot.tg.calls_to("editMessageText")[-1].result["text"]
    assert "✅ NEWS" in edited, edited
    assert "This chat sends from NEWS" in edited
    await bot.private("/send parrotica 6281234567890 Hi")
    (sent,) = bot.parrotica.messages.values()
    assert sent.sender_id == "NEWS"
    # Still chosen after the adapter is rebuilt from the stored credentials.
    assert "This chat sends from NEWS" in await bot.private("/senders")


async def test_a_pending_sender_cannot_be_picked(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/senders")
    mark = bot.tg.mark()
    await feed(bot.app, callback_query("snd:parrotica:1", message_chat_id=USER, message_id=1))
    assert "has not approved “XYZ789” yet (pending)" in bot.replies_since(mark, USER)[-1]


async def test_a_provider_without_senders_says_so(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private("/senders nusasms")
    assert "NusaSMS has no sender identities to pick from" in reply, reply
    assert "parrotica" in reply
    reply = await bot.private("/senders")
    assert "No connected provider here has sender identities" in reply, reply
    assert "unknown provider" in (await bot.private("/senders foo")).lower()
