"""End to end: ``python -m bot`` with METRICS_PORT serves /metrics and /healthz in polling mode."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import NUSA_KEY
from tests.e2e_support import fake_servers, process_env, spawn_bot, text_of
from tests.fakes.telegram import private_message
from tests.secret_watch import secret
from tests.test_database_errors import closed_port
from tests.test_health import samples

pytestmark = pytest.mark.e2e
TOKEN = secret("4343:E2E-metrics-token")


async def healthy(http: httpx.AsyncClient, seconds: float) -> httpx.Response:
    """Ask /healthz until it answers 200 (the process is starting)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            answer = await http.get("/healthz")
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass  # not listening yet
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("/healthz never answered 200")
        await asyncio.sleep(0.1)


async def test_the_process_serves_metrics_on_metrics_port(tmp_path: Path) -> None:
    port = closed_port()
    async with fake_servers(TOKEN) as (server, nusa, nusasms_base):
        env = process_env(tmp_path, server, nusasms_base, METRICS_PORT=str(port))
        log_path = tmp_path / "bot.log"
        with log_path.open("wb") as log:
            process = await spawn_bot(tmp_path, env, log)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    health = await healthy(http, 60)
                    assert health.json()["telegram"] == {"ok": True}
                    await server.wait_for("setMyCommands", timeout=30)
                    since = server.state.mark()
                    server.push_update(private_message(f"/connect nusasms api_key={NUSA_KEY}"))
                    await server.wait_for(
                        "sendMessage", lambda c: "connected" in text_of(c), timeout=15, since=since
                    )
                    server.push_update(private_message("/send nusasms:wa 6281234567890 Hi"))
                    await server.wait_for(
                        "sendMessage", lambda c: "Send 1" in text_of(c), timeout=15, since=since
                    )
                    found = samples((await http.get("/metrics")).text)
            finally:
                process.send_signal(signal.SIGINT)
                code = await asyncio.wait_for(process.wait(), timeout=20)
    output = log_path.read_text()
    assert code == 0, output
    route = (("outcome", "accepted"), ("route", "nusasms:wa"))
    assert found[("chatops_messages_sent_total", route)] == 1
    assert found[("chatops_provider_request_seconds_count", (("provider", "nusasms"),))] >= 2
    assert len(nusa.sent) == 1
    assert f"metrics and health on 0.0.0.0:{port}" in output
    assert TOKEN not in output
