"""The update inbox: stored before Telegram forgets an update, deleted once handled, replayed.

The store on its own (``storage/inbox.py``), then the real Application: the row of a handled
update goes (also when its handler failed), a row a crash left is replayed at start (a
``/send`` reaches the provider once and gets its card; one already carded sends and posts
nothing), polling stores each batch before the next ``getUpdates`` confirms it, and the
webhook stores an update before it answers 200.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram.error import Conflict

from bot import inbox as bot_inbox
from bot.app import build_application
from bot.callbacks import ProviderCallback
from bot.inbox import replay
from bot.lifecycle import serve_polling
from bot.webhooks import SECRET_HEADER, WebhookServer, telegram_path, telegram_secret_token
from storage.db import Database, create_engine, migrate
from storage.inbox import Inbox
from storage.models import InboxUpdate
from storage.repo import Repository
from tests.conftest import NUSA_KEY, USER, Bot, make_settings
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, OfflineRequest, feed, private_message

TOKEN = "123:ABC"
CARD = re.compile(r"(?m)^Send (\d+) via ")


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 5) -> None:
    """Wait (real time) for the application to get somewhere."""
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def stored(update: dict[str, Any]) -> tuple[int, str]:
    return int(update["update_id"]), json.dumps(update)


def cards(bot: Bot, since: int = 0) -> list[str]:
    return [t for t in bot.replies_since(since, USER) if CARD.search(t)]


async def pending_ids(inbox: Inbox) -> list[int]:
    return [row.update_id for row in await inbox.pending()]


# -- the store ------------------------------------------------------------------------------


async def test_the_store_adds_once_lists_in_order_and_forgets(repo: Repository) -> None:
    inbox = repo.inbox
    assert await inbox.add([(7, "{}"), (3, '{"a": 1}'), (3, "dup in the batch")]) == [7, 3]
    assert await inbox.add([(3, "again"), (9, "{}")]) == [9]  # 3 is kept as it was
    rows = await inbox.pending()
    assert [(r.update_id, r.data) for r in rows] == [(3, '{"a": 1}'), (7, "{}"), (9, "{}")]
    assert all(isinstance(r, InboxUpdate) and r.received_at.tzinfo for r in rows)
    await inbox.done(7)
    await inbox.done(7)  # twice is harmless
    assert await pending_ids(inbox) == [3, 9]
    assert await inbox.add([]) == []
    big = 2**40  # update ids are 64-bit
    assert await inbox.add([(big, "{}")]) == [big]
    assert await pending_ids(inbox) == [3, 9, big]


# -- handled updates leave the inbox ----------------------------------------------------------


async def test_a_handled_update_leaves_no_row(bot: Bot) -> None:
    inbox = bot.services.repo.inbox
    await bot.connect()
    ok = private_message("/send nusasms:wa 6281234567890 Hi")
    failing = private_message("/send 12345 Hi")  # the handler raises; the error handler answers
    await inbox.add([stored(ok), stored(failing)])
    await feed(bot.app, ok)
    await feed(bot.app, failing)
    assert "not a valid phone number" in (bot.tg.last_text(USER) or "")
    assert await pending_ids(inbox) == []


async def test_an_update_cut_off_by_a_stop_stays_for_the_next_start(bot: Bot) -> None:
    inbox = bot.services.repo.inbox
    update = private_message("/help")
    await inbox.add([stored(update)])
    in_flight = bot.app.bot_data.in_flight
    assert in_flight is not None
    in_flight.cut_off()  # what a stop does once its grace is over
    await feed(bot.app, update)
    assert await pending_ids(inbox) == [update["update_id"]]


async def test_provider_callbacks_are_not_inbox_updates(bot: Bot) -> None:
    inbox = bot.services.repo.inbox
    await inbox.add([(1, "{}")])
    await bot.app.process_update(ProviderCallback("nusasms", "status", {"x": "1"}))
    assert await pending_ids(inbox) == [1]


# -- replay at start ------------------------------------------------------------------------


async def replayed(bot: Bot) -> int | None:
    """Start the application as a run does and replay; returns once the inbox is empty."""
    inbox = bot.services.repo.inbox
    await bot.app.start()
    try:
        last = await replay(bot.app)

        async def empty() -> bool:
            return await inbox.pending() == []

        await eventually(empty, "the replayed updates to be handled")
    finally:
        await bot.app.stop()
    return last


async def test_an_update_stored_but_never_handled_is_replayed_at_start(bot: Bot) -> None:
    await bot.connect()
    update = private_message("/send nusasms:wa 6281234567890 Kept through a crash")
    bot.tg.register_update(update)  # Telegram knows the message (the card replies to it)
    await bot.services.repo.inbox.add([stored(update)])
    mark = bot.tg.mark()
    assert await replayed(bot) == update["update_id"]
    assert [m.message for m in bot.nusa.sent] == ["Kept through a crash"]
    assert len(cards(bot, mark)) == 1


async def test_a_replayed_send_already_carded_sends_and_posts_nothing(bot: Bot) -> None:
    await bot.connect()
    update = private_message("/send nusasms:wa 6281234567890 Only once")
    await bot.services.repo.inbox.add([stored(update)])
    await feed(bot.app, update)  # handled; then the process died before deleting the row
    assert len(cards(bot)) == 1
    await bot.services.repo.inbox.add([stored(update)])
    mark = bot.tg.mark()
    await replayed(bot)
    assert len(bot.nusa.sent) == 1
    assert bot.replies_since(mark, USER) == []  # no second card, no "already processed" note


# -- polling: stored before the next getUpdates confirms --------------------------------------


async def test_polling_confirms_nothing_it_could_not_store(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_inbox, "RETRY_FIRST", 0.02)
    monkeypatch.setattr(bot_inbox, "POLL_TIMEOUT", timedelta(seconds=1))
    add = Inbox.add
    attempts: list[int] = []
    database_down = True

    async def flaky_add(self: Inbox, updates: Any) -> list[int]:
        attempts.append(len(updates))
        if database_down:
            raise OSError("the database is down")
        return await add(self, updates)

    monkeypatch.setattr(Inbox, "add", flaky_add)
    settings = make_settings(tmp_path)
    app = build_application(
        settings,
        request=OfflineRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve_polling(app, stop, grace=1))
    try:
        update_id = tg.push_update(private_message("/help"))

        async def tried() -> bool:
            return len(attempts) >= 3

        await eventually(tried, "the store to be retried")
        offsets = [c.params.get("offset") for c in tg.calls_to("getUpdates")]
        assert all(o is None or int(o) <= update_id for o in offsets), offsets
        assert tg.calls_to("sendMessage") == []  # not handled either: nothing to replay yet
        database_down = False

        async def answered() -> bool:
            return bool(tg.calls_to("sendMessage"))

        await eventually(answered, "the update to be handled")

        async def confirmed() -> bool:
            return any(
                int(c.params.get("offset") or 0) == update_id + 1
                for c in tg.calls_to("getUpdates")
            )

        await eventually(confirmed, "the stored update to be confirmed")
        services = app.bot_data.services
        assert services is not None

        async def forgotten() -> bool:
            return await services.repo.inbox.pending() == []

        await eventually(forgotten, "the handled update to leave the inbox")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert tg.updates == []  # the clean stop confirmed what was stored


async def test_polling_replays_first_and_takes_no_second_copy(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    settings = make_settings(tmp_path)
    app = build_application(
        settings,
        request=OfflineRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
    )
    # A crash: Telegram still has the update (never confirmed), and so has the inbox.
    update = private_message("/help")
    update["update_id"] = tg.push_update(update)
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        await Inbox(Database(engine)).add([stored(update)])
    finally:
        await engine.dispose()

    stop = asyncio.Event()
    mark = tg.mark()
    task = asyncio.create_task(serve_polling(app, stop, grace=1))
    try:

        async def answered() -> bool:
            return any(
                c.method == "sendMessage" and "/send" in str(c.result.get("text"))
                for c in tg.calls[mark:]
            )

        await eventually(answered, "the replayed /help to be answered")
        await asyncio.sleep(0.3)  # time for a second copy to come from getUpdates
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    replies = [c for c in tg.calls[mark:] if c.method == "sendMessage" and c.ok]
    assert len(replies) == 1, [c.result.get("text") for c in replies]


# -- webhook: stored before 200 ---------------------------------------------------------------


async def test_the_webhook_stores_an_update_before_answering_200(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = bot.services.repo.inbox
    server = WebhookServer(bot.app, TOKEN)
    port = await server.start("127.0.0.1", 0)
    path = "/" + telegram_path(TOKEN)
    headers = {SECRET_HEADER: telegram_secret_token(TOKEN)}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            update = private_message("/help")
            answer = await http.post(path, json=update, headers=headers)
            assert answer.status_code == 200
            # Nothing consumes the queue here (the application was not started): stored, queued.
            assert await pending_ids(inbox) == [update["update_id"]]
            assert bot.app.update_queue.qsize() == 1
            again = await http.post(path, json=update, headers=headers)  # Telegram retried
            assert again.status_code == 200
            assert bot.app.update_queue.qsize() == 1  # the first copy is the one handled

            async def broken(_self: Inbox, _updates: Any) -> list[int]:
                raise OSError("the database is down")

            monkeypatch.setattr(Inbox, "add", broken)
            refused = await http.post(path, json=private_message("/help"), headers=headers)
            assert refused.status_code == 500  # Telegram sends it again later
            assert bot.app.update_queue.qsize() == 1
    finally:
        await server.stop()


async def test_credentials_never_reach_the_inbox(bot: Bot) -> None:
    inbox = bot.services.repo.inbox
    server = WebhookServer(bot.app, TOKEN)
    port = await server.start("127.0.0.1", 0)
    path = "/" + telegram_path(TOKEN)
    headers = {SECRET_HEADER: telegram_secret_token(TOKEN)}
    secret_bearing = [
        private_message(f"/connect nusasms api_key={NUSA_KEY}"),
        private_message(NUSA_KEY),  # the answer to a guided /connect's prompt
        private_message(f"/send 6281234567890 api_key={NUSA_KEY}"),
    ]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for update in secret_bearing:
                answer = await http.post(path, json=update, headers=headers)
                assert answer.status_code == 200
    finally:
        await server.stop()
    assert await inbox.pending() == []
    assert bot.app.update_queue.qsize() == len(secret_bearing)  # handled all the same


async def test_polling_backs_off_on_network_errors_and_ends_on_a_conflict(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_inbox, "RETRY_FIRST", 0.02)
    monkeypatch.setattr(bot_inbox, "POLL_TIMEOUT", timedelta(seconds=0.1))
    app = build_application(
        make_settings(tmp_path),
        request=OfflineRequest(tg),
        provider_transport=httpx.MockTransport(nusa),
        rate_limit=False,
    )
    tg.fail_next("getUpdates", 502, "Bad Gateway", times=2)  # retried, not fatal
    tg.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    with pytest.raises(Conflict):
        await asyncio.wait_for(serve_polling(app, asyncio.Event(), grace=1), 10)
    assert len(tg.calls_to("getUpdates")) == 3
    assert not app.running  # stopped and closed as usual
    assert app.bot_data.resources is None
