"""The webhook server over real HTTP on 127.0.0.1: Telegram updates and provider callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import build_application
from bot.callbacks import ProviderCallback, callback_path, callback_url
from bot.webhooks import (
    SECRET_HEADER,
    WebhookServer,
    public_urls,
    serve_webhook_mode,
    telegram_path,
    telegram_secret_token,
)
from providers.base import DeliveryState
from storage.messages import NewMessage, StateChange
from storage.models import Batch
from tests.conftest import NUSA_KEY, USER, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, OfflineRequest, private_message
from tests.tracking_support import (
    FakeClock,
    batch_of,
    card_text,
    history_states,
    message_row,
    start_tracked_bot,
    tracker_of,
)

TOKEN = "123:ABC"
PUBLIC = "https://bot.example/hook"


@dataclass
class Served:
    bot: Bot
    http: httpx.AsyncClient
    clock: FakeClock

    def url(self, provider: str, kind: str) -> str:
        return "/" + callback_path(TOKEN, provider, kind)


@pytest.fixture
async def served(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Served]:
    clock = FakeClock()
    bot = await start_tracked_bot(make_settings(tmp_path, webhook_url=PUBLIC), tg, nusa, clock)
    await bot.app.start()  # consume update_queue like production
    server = WebhookServer(bot.app, TOKEN)
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield Served(bot, http, clock)
    finally:
        await server.stop()
        await bot.app.stop()
        await stop_bot(bot)


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Wait (briefly, real time) for the application to process a queued update."""
    for _ in range(300):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def sent_message(served: Served) -> str:
    bot = served.bot
    await bot.connect()
    reply = await bot.private("/send nusasms:wa 6281234567890 Hello")
    assert "accepted" in reply
    return bot.nusa.sent[-1].ref_no


async def state_is(bot: Bot, message_id: int, state: str) -> bool:
    return (await message_row(bot, message_id)).state == state


async def test_nusasms_push_moves_the_message_and_the_card(served: Served) -> None:
    ref = await sent_message(served)
    answer = await served.http.post(
        served.url("nusasms", "status"), json={"ref_no": ref, "status": "D"}
    )
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
    await eventually(lambda: state_is(served.bot, 1, "delivered"), "the receipt")
    served.clock.advance(5)
    await tracker_of(served.bot).tick()
    batch = await batch_of(served.bot)
    assert "delivered" in card_text(served.bot, USER, batch.card_message_id)
    assert (await history_states(served.bot, 1))[-1] == "delivered"


async def test_duplicate_and_late_receipts_never_move_backwards(served: Served) -> None:
    ref = await sent_message(served)
    url = served.url("nusasms", "status")
    for body in (
        {"ref_no": ref, "status": "D"},
        {"ref_no": ref, "status": "S"},  # late
        {"ref_no": ref, "status": "D"},  # duplicate
        {"data": {"ref_no": ref, "status": "delivered"}},  # the envelope shape, again
    ):
        assert (await served.http.post(url, json=body)).status_code == 200
    await asyncio.sleep(0)
    await eventually(lambda: _queue_empty(served), "the callbacks")
    await eventually(lambda: state_is(served.bot, 1, "delivered"), "the receipt")
    # Updates are processed concurrently, so "S" may land before "D" (a forward move) or
    # after it (ignored); never after delivered, and each state at most once.
    states = await history_states(served.bot, 1)
    assert states in (
        ["queued", "accepted", "delivered"],
        ["queued", "accepted", "sent", "delivered"],
    ), states

    form = await served.http.post(url, data={"ref_no": ref, "status": "R"})
    assert form.status_code == 200
    await eventually(lambda: state_is(served.bot, 1, "read"), "the form receipt")
    assert await history_states(served.bot, 1) == [*states, "read"]


async def _queue_empty(served: Served) -> bool:
    return served.bot.app.update_queue.empty()


async def test_bad_callbacks_are_refused_with_the_reason(served: Served) -> None:
    url = served.url("nusasms", "status")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b"not json", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"json": {"status": "D"}}, 400, "no message reference"),
        ({"json": {"ref_no": "x"}}, 400, "no status"),
        ({"json": []}, 400, "non-empty"),
        ({"json": ["D"]}, 400, "JSON object"),
        ({"content": b"{" + b" " * 70_000 + b"}"}, 400, "larger than"),
    ]
    for kwargs, status, reason in cases:
        answer = await served.http.post(url, **kwargs)
        assert answer.status_code == status, kwargs
        assert reason in answer.json()["error"], answer.json()
    wrong = url[:-4] + "0000"
    assert (await served.http.post(wrong, json={"ref_no": "x", "status": "D"})).status_code == 404
    other_kind = served.url("nusasms", "status").replace("/status/", "/phone_check/")
    assert (await served.http.post(other_kind, json={"a": 1})).status_code == 404
    assert served.bot.app.update_queue.empty()


async def test_unknown_status_words_are_accepted_but_ignored(served: Served) -> None:
    ref = await sent_message(served)
    answer = await served.http.post(
        served.url("nusasms", "status"), json=[{"ref_no": ref, "status": "Z"}]
    )
    assert answer.status_code == 200
    await eventually(lambda: _queue_empty(served), "the callback")
    await asyncio.sleep(0.05)
    assert await history_states(served.bot, 1) == ["queued", "accepted"]


async def test_courier_status_callback_is_matched_by_provider_ref(served: Served) -> None:
    bot = served.bot
    await bot.private("/start")
    batch = Batch(chat_id=USER, route="courier:sms", text="hi", origin="t:1", created_by=USER)
    message = NewMessage(
        provider="courier",
        channel="sms",
        recipient="+6281234567890",
        text="hi",
        idempotency_key="t:1:0",
    )
    stored = await bot.services.repo.messages.store_send(batch, [message])
    created, _ = stored.batch, stored.new
    text_id = "11111111-2222-3333-4444-555555555555"
    await bot.services.repo.messages.apply_changes(
        [StateChange(1, DeliveryState.ACCEPTED, "send", provider_ref=text_id)]
    )
    body = {
        "data": {
            "id": text_id,
            "type": "texts",
            "attributes": {"status": "undelivered", "error": "30003 unreachable handset"},
        },
        "meta": {},
    }
    answer = await served.http.post(served.url("courier", "status"), json=body)
    assert answer.status_code == 200
    await eventually(lambda: state_is(bot, 1, "undelivered"), "the courier receipt")
    row = await message_row(bot, 1)
    assert row.detail == "30003 unreachable handset"
    assert created.id == 1

    twilio = await served.http.post(
        served.url("courier", "status"),
        data={"MessageSid": text_id, "MessageStatus": "delivered"},
    )
    assert twilio.status_code == 200
    await eventually(lambda: _queue_empty(served), "the twilio-shaped receipt")
    await asyncio.sleep(0.05)
    assert (await message_row(bot, 1)).state == "undelivered", "a failure is final"


async def test_any_issued_callback_kind_reaches_the_update_queue(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    app = build_application(make_settings(tmp_path), request=OfflineRequest(tg))
    server = WebhookServer(app, TOKEN)
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            path = "/" + callback_path(TOKEN, "nusasms", "phone_check")
            body = {"phone_number": "6281234567890", "status": "registered"}
            assert (await http.post(path, json=body)).status_code == 200
            query = await http.get(
                "/" + callback_path(TOKEN, "parrotica", "inbound"), params={"a": "1"}
            )
            assert query.status_code == 200
            health = await http.get("/healthz")  # the bot's resources were never started
            assert health.status_code == 503
            assert health.json()["database"] == {"ok": False, "error": "not started"}
    finally:
        await server.stop()
    first = app.update_queue.get_nowait()
    second = app.update_queue.get_nowait()
    assert first == ProviderCallback("nusasms", "phone_check", body)
    assert second == ProviderCallback("parrotica", "inbound", {"a": "1"})


async def test_telegram_updates_need_the_secret_header(served: Served) -> None:
    path = "/" + telegram_path(TOKEN)
    update = private_message("/help")
    refused = await served.http.post(path, json=update, headers={SECRET_HEADER: "guess"})
    assert refused.status_code == 403
    mark = served.bot.tg.mark()
    accepted = await served.http.post(
        path, json=update, headers={SECRET_HEADER: telegram_secret_token(TOKEN)}
    )
    assert accepted.status_code == 200
    reply = await served.bot.tg.wait_for("sendMessage", since=mark, timeout=5)
    assert "/send" in reply.result["text"]
    bad = await served.http.post(
        path,
        content=b"[1,2",
        headers={SECRET_HEADER: telegram_secret_token(TOKEN), "Content-Type": "application/json"},
    )
    assert bad.status_code == 400


async def test_webhook_mode_lifecycle(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> None:
    settings = make_settings(
        tmp_path, webhook_url=PUBLIC, webhook_listen="127.0.0.1", webhook_port=0
    )
    app = build_application(
        settings,
        request=OfflineRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
    )
    server = WebhookServer(app, TOKEN)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_webhook_mode(app, settings, stop, server=server, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        assert tg.webhook_url == f"{PUBLIC}/{telegram_path(TOKEN)}"
        call = tg.calls_to("setWebhook")[-1]
        assert call.params["secret_token"] == telegram_secret_token(TOKEN)
        resources = app.bot_data.resources
        assert resources is not None
        assert resources.tracker is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            assert (await http.get("/healthz")).status_code == 200
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert app.bot_data.resources is None, "post_shutdown closed everything"
    assert not app.running


def test_public_urls_name_the_callbacks(tmp_path: Path) -> None:
    urls = public_urls(make_settings(tmp_path, webhook_url=PUBLIC + "/"))
    assert urls["nusasms status callback"] == callback_url(PUBLIC, TOKEN, "nusasms", "status")
    assert urls["courier status callback"].startswith(f"{PUBLIC}/callbacks/courier/status/")
    assert TOKEN not in "".join(urls.values())
    assert NUSA_KEY not in "".join(urls.values())


async def test_phone_check_callbacks_are_validated(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    app = build_application(make_settings(tmp_path), request=OfflineRequest(tg))
    server = WebhookServer(app, TOKEN)
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            path = "/" + callback_path(TOKEN, "nusasms", "phone_check")
            refused = await http.post(path, json={"hello": "world"})
            accepted = await http.post(path, json=[{"phone": "6281234567890", "status": "valid"}])
    finally:
        await server.stop()
    assert refused.status_code == 400
    assert "no phone number" in refused.json()["error"]
    assert accepted.status_code == 200
    assert app.update_queue.qsize() == 1
