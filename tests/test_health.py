"""``/healthz`` and ``/metrics`` over real HTTP on 127.0.0.1: webhook port and METRICS_PORT."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_application
from bot.config import Settings
from bot.health import Check, TelegramCheck, check_database
from bot.lifecycle import serve_polling
from bot.ops import health, ops_server, wants_own_port
from bot.probe import health_port, probe
from bot.webhooks import WebhookServer
from storage.db import Database, create_engine
from tests.conftest import NUSA_KEY, Bot, make_settings, providers_transport, start_bot, stop_bot
from tests.fakes.courier import FakeCourier
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import FakeParrotica
from tests.fakes.telegram import FakeTelegram, OfflineRequest, private_message
from tests.secret_watch import secret
from tests.test_database_errors import closed_port

TOKEN = secret("777:health-check-token")
TO = "6281234567890"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
async def served(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A started bot whose webhook server listens on 127.0.0.1 (``bot.http`` talks to it)."""
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, webhook_url="https://h.test")
    bot = await start_bot(settings, tg, nusa)
    server = WebhookServer(bot.app, TOKEN)
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            bot.http = http  # type: ignore[attr-defined]
            yield bot
    finally:
        await server.stop()
        await stop_bot(bot)


def http_of(bot: Bot) -> httpx.AsyncClient:
    client: httpx.AsyncClient = bot.http  # type: ignore[attr-defined]
    return client


async def test_healthz_is_200_when_database_and_telegram_answer(served: Bot) -> None:
    answer = await http_of(served).get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "database": {"ok": True}, "telegram": {"ok": True}}


async def test_healthz_is_503_naming_the_database_when_it_is_gone(served: Bot) -> None:
    gone = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/chat")
    kept = served.services.repo.db
    try:
        served.services.repo.db = Database(gone)  # the server went away under the bot
        answer = await http_of(served).get("/healthz")
    finally:
        served.services.repo.db = kept
        await gone.dispose()
    assert answer.status_code == 503
    body = answer.json()
    assert body["ok"] is False
    assert body["telegram"] == {"ok": True}
    assert body["database"]["ok"] is False
    assert body["database"]["error"].startswith("unreachable (")
    assert (await http_of(served).get("/healthz")).status_code == 200, "back when it is"


async def test_healthz_is_503_naming_telegram_without_leaking_the_token(served: Bot) -> None:
    # Telegram's error text carries a URL with the token in it: it must not be repeated.
    served.tg.fail_next("getMe", 502, f"Bad Gateway: https://api.telegram.org/bot{TOKEN}/getMe")
    answer = await http_of(served).get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["database"] == {"ok": True}
    assert answer.json()["telegram"] == {"ok": False, "error": "unreachable (NetworkError)"}
    assert TOKEN not in answer.text
    assert "777" not in answer.text


async def test_a_refused_token_is_named_as_such(served: Bot) -> None:
    served.app.bot_data.telegram_check = TelegramCheck(ttl=0)
    served.tg.fail_next("getMe", 401, "Unauthorized")
    answer = await http_of(served).get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["telegram"] == {"ok": False, "error": "the bot token was refused"}
    assert (await http_of(served).get("/healthz")).status_code == 200, "asked again: ttl 0"


async def test_telegram_is_asked_at_most_once_per_ttl(served: Bot) -> None:
    now = [1000.0]
    served.app.bot_data.telegram_check = TelegramCheck(ttl=15, clock=lambda: now[0])
    before = len(served.tg.calls_to("getMe"))
    for _ in range(5):
        assert (await http_of(served).get("/healthz")).status_code == 200
    assert len(served.tg.calls_to("getMe")) == before + 1
    served.tg.fail_next("getMe", 502, "Bad Gateway")
    now[0] += 14
    assert (await http_of(served).get("/healthz")).status_code == 200, "still the cached answer"
    now[0] += 2
    assert (await http_of(served).get("/healthz")).status_code == 503, "asked again after 15 s"
    assert len(served.tg.calls_to("getMe")) == before + 2


async def test_a_database_that_does_not_answer_in_time_is_unhealthy() -> None:
    class Stuck:
        async def ping(self) -> None:
            await asyncio.Event().wait()

    check = await check_database(Stuck(), seconds=0.05)  # type: ignore[arg-type]
    assert check == Check(False, "no answer within 0.05 s")


async def test_the_webhook_port_serves_metrics(served: Bot) -> None:
    await served.connect()
    await served.private(f"/send nusasms:wa {TO} Hello")
    answer = await http_of(served).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    found = samples(answer.text)
    route = (("outcome", "accepted"), ("route", "nusasms:wa"))
    assert found[("chatops_messages_sent_total", route)] == 1
    assert found[("chatops_provider_request_seconds_count", (("provider", "nusasms"),))] >= 2
    assert found[("chatops_replicas_alive", ())] == 1
    assert found[("chatops_schedule_backlog", ())] == 0
    assert TOKEN not in answer.text
    assert NUSA_KEY not in answer.text
    assert TO not in answer.text, "no recipient in a label"


async def test_metrics_port_serves_metrics_and_health_in_polling_mode(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms
) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, metrics_port=0)
    transport = providers_transport(nusa, FakeParrotica(), FakeCourier())
    app = build_application(
        settings, request=OfflineRequest(tg), provider_transport=transport, rate_limit=False
    )
    stop = asyncio.Event()
    async with ops_server(app, settings, host="127.0.0.1") as server:
        assert server is not None
        assert server.port
        polling = asyncio.create_task(serve_polling(app, stop, grace=1))
        try:
            await tg.wait_for("setMyCommands", timeout=10)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
                assert (await http.get("/healthz")).status_code == 200
                mark = tg.mark()
                tg.push_update(private_message(f"/connect nusasms api_key={NUSA_KEY}"))
                await tg.wait_for(
                    "sendMessage", lambda c: "connected" in str(c.params["text"]), since=mark
                )
                tg.push_update(private_message(f"/send nusasms:wa {TO} Hello"))
                await tg.wait_for(
                    "sendMessage", lambda c: "Send 1" in str(c.params["text"]), since=mark
                )
                answer = await http.get("/metrics")
                assert answer.status_code == 200
                route = (("outcome", "accepted"), ("route", "nusasms:wa"))
                assert samples(answer.text)[("chatops_messages_sent_total", route)] == 1
                assert (await http.get("/telegram/anything")).status_code == 404, "ops only"
        finally:
            stop.set()
            await asyncio.wait_for(polling, 15)
    assert app.bot_data.resources is None


@pytest.mark.parametrize(
    ("values", "own"),
    [
        ({}, False),
        ({"metrics_port": 9100}, True),
        ({"metrics_port": 9100, "webhook_url": "https://h.test"}, True),
        ({"metrics_port": 8443, "webhook_url": "https://h.test"}, False),
        ({"metrics_port": 8080, "webhook_url": "https://h.test", "webhook_port": 8080}, False),
        ({"metrics_port": 0, "webhook_url": "https://h.test", "webhook_port": 0}, True),
    ],
)
def test_metrics_port_gets_its_own_server_unless_it_is_the_webhook_port(
    tmp_path: Path, values: dict[str, object], own: bool
) -> None:
    settings: Settings = make_settings(tmp_path, **values)
    assert wants_own_port(settings) is own


async def test_the_container_probe_follows_healthz(served: Bot) -> None:
    port = str(http_of(served).base_url.port)
    env = {"WEBHOOK_URL": "https://h.test", "WEBHOOK_PORT": port}
    assert await asyncio.to_thread(probe, env) == (
        True,
        '{"ok": true, "database": {"ok": true}, "telegram": {"ok": true}}',
    )
    served.app.bot_data.telegram_check.forget()
    served.tg.fail_next("getMe", 502, "Bad Gateway")
    healthy, said = await asyncio.to_thread(probe, {"METRICS_PORT": port})
    assert not healthy
    assert '"telegram": {"ok": false, "error": "unreachable (NetworkError)"}' in said


def test_the_probe_says_when_nothing_answers() -> None:
    assert probe({}) == (
        False,
        "nothing serves /healthz: set METRICS_PORT (or run in webhook mode)",
    )
    port = closed_port()
    assert probe({"METRICS_PORT": str(port)}, timeout=2) == (
        False,
        f"no answer on port {port}: URLError",
    )
    assert health_port({"WEBHOOK_URL": "https://h.test", "WEBHOOK_PORT": ""}) == "8443"


async def test_a_bot_still_starting_is_not_started_and_asks_nobody(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    app = build_application(make_settings(tmp_path), request=OfflineRequest(tg))
    report = await health(app)
    assert report.as_json() == {
        "ok": False,
        "database": {"ok": False, "error": "not started"},
        "telegram": {"ok": False, "error": "not started"},
    }
    assert tg.calls_to("getMe") == []


async def test_any_failure_of_getme_is_an_answer_not_a_crash() -> None:
    class Stopped:
        async def get_me(self) -> None:
            raise RuntimeError("This HTTPXRequest is not initialized!")

    check = TelegramCheck()
    assert await check(Stopped()) == Check(False, "failing (RuntimeError)")  # type: ignore[arg-type]
