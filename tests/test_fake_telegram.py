"""The Telegram fakes speak the Bot API well enough for python-telegram-bot itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.request
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes

from tests.fakes.bot_api_server import BotApiServer, ThreadedBotApiServer
from tests.fakes.telegram import (
    BOT_ID,
    FakeTelegram,
    callback_query,
    document_message,
    feed,
    group_message,
    inline_callback_query,
    inline_query,
    offline_builder,
    photo_message,
    private_message,
    render_text,
)

App = Application[Any, Any, Any, Any, Any, Any]
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Refresh", callback_data="refresh:1")]])


def ping_app(state: FakeTelegram) -> App:
    """/ping replies "pong"; /slow replies and then edits its reply."""

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("pong")

    async def slow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        sent = await update.effective_message.reply_html("<b>Working</b>…", reply_markup=KEYBOARD)
        await sent.edit_text("<b>Done</b> ✅", parse_mode="HTML")

    app = offline_builder(state).build()
    app.add_handler(CommandHandler("ping", ping))
    app.add_handler(CommandHandler("slow", slow))
    return app


async def test_command_reply_is_recorded() -> None:
    state = FakeTelegram()
    async with ping_app(state) as app:
        assert app.bot.username == "chatops_test_bot"
        await feed(app, private_message("/ping"))
        await feed(app, group_message("/ping@chatops_test_bot", chat_id=-100123, user_id=7))

    [private, group] = state.calls_to("sendMessage")
    assert private.params == {"chat_id": 1, "text": "pong"}
    assert private.result["from"]["id"] == BOT_ID
    assert private.result["chat"] == {
        "id": 1,
        "type": "private",
        "first_name": "Alice",
        "username": "alice",
    }
    assert group.result["chat"] == {"id": -100123, "type": "supergroup", "title": "Team"}
    assert state.sent_texts(1) == ["pong"]
    assert state.last_text(-100123) == "pong"
    assert [c.method for c in state.calls][:1] == ["getMe"]


async def test_edit_renders_html_and_drops_keyboard() -> None:
    state = FakeTelegram()
    async with ping_app(state) as app:
        await feed(app, private_message("/slow", user_id=5))

    send, edit = state.calls_to("sendMessage")[0], state.calls_to("editMessageText")[0]
    assert send.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Refresh", "callback_data": "refresh:1"}]]
    }
    assert send.result["text"] == "Working…"
    assert send.result["entities"] == [{"offset": 0, "length": 7, "type": "bold"}]
    assert send.result["reply_markup"] == send.params["reply_markup"]
    assert edit.params["text"] == "<b>Done</b> ✅"
    message = state.messages[(5, send.result["message_id"])]
    assert message["text"] == "Done ✅"
    assert "reply_markup" not in message  # editMessageText without markup removes it
    assert state.last_text(5) == "Done ✅"
    assert state.sent_texts(5) == ["Working…"]


async def test_edit_errors_surface_as_bad_request() -> None:
    state = FakeTelegram()
    async with offline_builder(state).build() as app:
        first = await app.bot.send_message(1, "card", reply_markup=KEYBOARD)
        second = await app.bot.send_message(1, "next")
        assert isinstance(first, Message)
        assert (first.message_id, second.message_id) == (1, 2)
        assert first.reply_markup == KEYBOARD

        with pytest.raises(BadRequest, match="Message is not modified"):
            await app.bot.edit_message_text("card", 1, first.message_id, reply_markup=KEYBOARD)
        await app.bot.edit_message_reply_markup(1, first.message_id)  # keyboard removed: ok

        state.delete_message_by_user(1, first.message_id)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await app.bot.edit_message_text("new", 1, first.message_id)
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await app.bot.delete_message(1, first.message_id)
        assert await app.bot.delete_message(1, second.message_id) is True

    failed = state.calls_to("editMessageText")[-1]
    assert (failed.status, failed.ok) == (400, False)
    assert failed.response == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message to edit not found",
    }


async def test_handler_sees_error_of_deleted_card() -> None:
    state = FakeTelegram()
    seen: list[BadRequest] = []

    async def edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await context.bot.edit_message_text("late", chat_id=1, message_id=42)
        except BadRequest as error:
            seen.append(error)

    app = offline_builder(state).build()
    app.add_handler(CommandHandler("edit", edit))
    async with app:
        await feed(app, private_message("/edit"))
    assert [e.message for e in seen] == ["Message to edit not found"]


async def test_blocked_chat_raises_forbidden() -> None:
    state = FakeTelegram()
    state.blocked_chats.add(77)
    async with offline_builder(state).build() as app:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await app.bot.send_message(77, "hello")
        await app.bot.send_message(78, "hello")
    assert state.calls_to("sendMessage")[0].response == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }


async def test_file_download_and_document_upload() -> None:
    state = FakeTelegram()
    state.add_file(b"phone\n+6281234567890\n", file_id="doc-1", file_path="documents/file_7.csv")
    update = document_message(file_id="doc-1", file_size=22)
    async with offline_builder(state).build() as app:
        file = await app.bot.get_file("doc-1")
        assert file.file_path == "https://api.telegram.org/file/bot123:ABC/documents/file_7.csv"
        assert await file.download_as_bytearray() == bytearray(b"phone\n+6281234567890\n")
        with pytest.raises(BadRequest, match="Invalid file_id"):
            await app.bot.get_file("nope")

        sent = await app.bot.send_document(
            1,
            b"id,state\n1,delivered\n",
            filename="report.csv",
            caption="<i>Report</i>",
            parse_mode="HTML",
        )
        assert sent.document is not None
        assert sent.document.file_name == "report.csv"
        assert sent.caption == "Report"
        again = await app.bot.get_file(sent.document.file_id)
        assert await again.download_as_bytearray() == bytearray(b"id,state\n1,delivered\n")

    upload = state.calls_to("sendDocument")[0].params["document"]
    assert (upload.file_name, upload.content, upload.mime_type) == (
        "report.csv",
        b"id,state\n1,delivered\n",
        "text/csv",
    )
    parsed = Update.de_json(update, None)
    assert parsed.message is not None
    assert parsed.message.document is not None
    assert parsed.message.document.file_size == 22


async def test_builders_deserialise() -> None:
    state = FakeTelegram()
    async with offline_builder(state).build() as app:
        doc = document_message(caption="/send now")
        photo = photo_message(caption="look", chat_id=-100123)
        reply = private_message("/send 0812", reply_to=doc)
        press = callback_query("refresh:1", message_chat_id=1, message_id=3, user_id=2)
        updates = [Update.de_json(u, app.bot) for u in (doc, photo, reply, press)]

    assert updates[0].message is not None
    assert updates[0].message.caption_entities[0].type == "bot_command"
    assert updates[1].message is not None
    assert updates[1].message.photo[-1].width == 1280
    assert updates[1].effective_chat is not None
    assert updates[1].effective_chat.type == "supergroup"
    message = updates[2].message
    assert message is not None
    assert message.reply_to_message is not None
    assert message.reply_to_message.document is not None
    assert message.entities[0].length == len("/send")
    query = updates[3].callback_query
    assert query is not None
    assert (query.data, query.from_user.id) == ("refresh:1", 2)
    assert isinstance(query.message, Message)
    assert query.message.message_id == 3


async def test_admins_commands_and_injected_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without PTB_TIMEDELTA, constructing RetryAfter itself emits a PTBDeprecationWarning.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    state = FakeTelegram()
    state.chat_admins[-100123] = {10, 11}
    async with offline_builder(state).build() as app:
        owner = await app.bot.get_chat_member(-100123, 10)
        admin = await app.bot.get_chat_member(-100123, 11)
        member = await app.bot.get_chat_member(-100123, 12)
        assert [owner.status, admin.status, member.status] == [
            "creator",
            "administrator",
            "member",
        ]
        chat = await app.bot.get_chat(-100123)
        assert chat.title == "Team"

        await app.bot.set_my_commands([("send", "Send a message"), ("status", "Status")])
        assert [c.command for c in await app.bot.get_my_commands()] == ["send", "status"]
        with pytest.raises(BadRequest, match="Bot_command_invalid"):
            await app.bot.set_my_commands([("Send", "uppercase is invalid")])
        await app.bot.delete_my_commands()
        assert await app.bot.get_my_commands() == ()

        state.fail_next("sendMessage", retry_after=3)
        with pytest.raises(RetryAfter) as flood:
            await app.bot.send_message(1, "x")
        assert flood.value.retry_after == dt.timedelta(seconds=3)
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await app.bot.send_message(1, "a <br> b", parse_mode="HTML")
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="y" * 65)]])
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await app.bot.send_message(1, "x", reply_markup=markup)


def test_render_text_matches_telegram() -> None:
    assert render_text("  <b>Send 3</b> via <code>nusasms</code>\n", "HTML") == (
        "Send 3 via nusasms",
        [{"offset": 0, "length": 6, "type": "bold"}, {"offset": 11, "length": 7, "type": "code"}],
    )
    assert render_text("1 &lt; 2 &amp; 🙂 <i>x</i>", "HTML")[1] == [
        {"offset": 11, "length": 1, "type": "italic"}
    ]
    with pytest.raises(Exception, match="Unmatched end tag"):
        render_text("<b>x</i>", "HTML")


async def test_offline_polling_long_polls() -> None:
    state = FakeTelegram()
    got: list[str] = []
    done = asyncio.Event()

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        assert update.effective_message.text is not None
        got.append(update.effective_message.text)
        done.set()

    app = offline_builder(state).build()
    app.add_handler(CommandHandler("ping", ping))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(timeout=1)
        await app.start()
        state.push_update(private_message("/ping"))
        await asyncio.wait_for(done.wait(), 2)
        await app.updater.stop()
        await app.stop()
    assert got == ["/ping"]
    assert len(state.calls_to("getUpdates")) < 10  # long polling, not a busy loop


async def test_http_server_with_real_ptb_client() -> None:
    async with BotApiServer(token="123:ABC") as server:
        state = server.state
        state.add_file(b"csv bytes", file_id="f1", file_path="documents/a b.csv")
        builder = ApplicationBuilder().token("123:ABC").base_url(server.base_url)
        app = builder.base_file_url(server.file_url).build()
        async with app:
            me = await app.bot.get_me()
            assert (me.id, me.username) == (BOT_ID, "chatops_test_bot")

            sent = await app.bot.send_message(-100123, "<b>hi</b> 123", parse_mode="HTML")
            assert (sent.text, sent.chat.type) == ("hi 123", "supergroup")
            call = await server.wait_for("sendMessage")
            assert call.params == {
                "chat_id": -100123,
                "text": "<b>hi</b> 123",
                "parse_mode": "HTML",
            }

            await app.bot.send_document(5, b"\x00\x01binary", filename="x.bin")
            upload = state.calls_to("sendDocument")[0].params["document"]
            assert upload.content == b"\x00\x01binary"

            file = await app.bot.get_file("f1")
            assert await file.download_as_bytearray() == bytearray(b"csv bytes")

            assert await app.bot.get_updates(timeout=0) == ()
            update_id = server.push_update(private_message("/ping"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            [update] = await app.bot.get_updates(timeout=1)
            assert loop.time() - started < 0.5
            assert update.update_id == update_id
            assert update.message is not None
            assert update.message.text == "/ping"

            started = loop.time()
            assert await app.bot.get_updates(offset=update_id + 1, timeout=1) == ()
            assert loop.time() - started >= 0.9

            await app.bot.set_webhook("https://example.invalid/hook")
            with pytest.raises(Conflict):
                await app.bot.get_updates(timeout=0)
            await app.bot.delete_webhook()

        # (Bot, not Application: a failed Application.initialize() leaves the bot's httpx
        # client open, while Bot.__aenter__ shuts it down again.)
        with pytest.raises(InvalidToken, match="rejected by the server"):
            async with Bot("999:WRONG", base_url=server.base_url):
                pass
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{server.base_url}123:ABC/sendMessage", json={"chat_id": 3, "text": "json body"}
            )
            assert answer.status_code == 200
            assert answer.json()["result"]["text"] == "json body"
            missing = await client.get(f"{server.file_url}123:ABC/nope")
            assert (missing.status_code, missing.json()["description"]) == (404, "Not Found")


async def test_server_stops_promptly_during_long_poll() -> None:
    server = BotApiServer()
    await server.start()
    async with httpx.AsyncClient() as client:
        poll = asyncio.create_task(
            client.post(f"{server.base_url}{server.token}/getUpdates", data={"timeout": "30"})
        )
        await asyncio.sleep(0.2)  # the request reaches the server and starts waiting
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop()
        answer = await poll
        assert loop.time() - started < 1.5
        assert answer.json() == {"ok": True, "result": []}


def test_threaded_server_from_sync_code() -> None:
    with ThreadedBotApiServer() as server:
        mark = server.state.mark()
        body = json.dumps({"chat_id": 4, "text": "sync"}).encode()
        request = urllib.request.Request(  # noqa: S310 - a 127.0.0.1 URL built above
            f"{server.base_url}{server.token}/sendMessage",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            assert json.loads(response.read())["result"]["chat"]["id"] == 4
        call = server.wait_for("sendMessage", lambda c: c.params["text"] == "sync", since=mark)
        assert call.params["chat_id"] == 4
        assert server.env()["TELEGRAM_BASE_URL"] == server.base_url


async def test_inline_mode_answers_posted_results_and_membership() -> None:
    state = FakeTelegram()
    state.chat_admins[-100123] = {10}
    state.chat_members[-100123] = {11}
    async with offline_builder(state).build() as app:
        statuses = [(await app.bot.get_chat_member(-100123, u)).status for u in (10, 11, 12)]
        assert statuses == ["creator", "member", "left"]

        def article(ident: str, text: str = "<b>Card</b>") -> InlineQueryResultArticle:
            return InlineQueryResultArticle(
                ident,
                f"Title {ident}",
                InputTextMessageContent(text, parse_mode="HTML"),
                reply_markup=KEYBOARD,
            )

        update = inline_query("12", user_id=11)
        query_id = update["inline_query"]["id"]
        await app.bot.answer_inline_query(
            query_id, [article("1"), article("2")], cache_time=5, is_personal=True
        )
        assert [r["id"] for r in state.inline_results(query_id)] == ["1", "2"]
        call = state.calls_to("answerInlineQuery")[-1]
        assert (call.params["cache_time"], call.params["is_personal"]) == (5, True)
        with pytest.raises(BadRequest, match="Results_too_much"):
            await app.bot.answer_inline_query("q", [article(str(i)) for i in range(51)])
        with pytest.raises(BadRequest, match="Result_id_invalid"):
            await app.bot.answer_inline_query("q", [article("1"), article("1")])
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await app.bot.answer_inline_query("q", [article("1", "a <br> b")])

        inline_id = state.post_inline_result(query_id, "2")
        assert state.inline_messages[inline_id]["text"] == "Card"
        assert await app.bot.edit_message_text(
            "<i>New</i>", inline_message_id=inline_id, parse_mode="HTML"
        )
        assert state.inline_messages[inline_id]["text"] == "New"
        assert "reply_markup" not in state.inline_messages[inline_id]
        with pytest.raises(BadRequest, match="not modified"):
            await app.bot.edit_message_text(
                "<i>New</i>", inline_message_id=inline_id, parse_mode="HTML"
            )
        with pytest.raises(BadRequest, match="Message_id_invalid"):
            await app.bot.edit_message_text("x", inline_message_id="nope")

        press = Update.de_json(
            inline_callback_query("msg:refresh:1", inline_message_id=inline_id), app.bot
        )
        assert press is not None
        assert press.callback_query is not None
        assert press.callback_query.inline_message_id == inline_id
        assert press.callback_query.message is None
