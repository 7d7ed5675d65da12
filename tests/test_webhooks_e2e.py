"""End to end in webhook mode: ``python -m bot`` serves Telegram updates and a NusaSMS push.

The fake Bot API and the fake NusaSMS listen on 127.0.0.1; the test plays Telegram (posting
updates to the bot's webhook) and NusaSMS (posting a status callback), then watches the card
being edited through the fake Bot API.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.callbacks import callback_path
from bot.webhooks import SECRET_HEADER, telegram_path, telegram_secret_token
from tests.conftest import NUSA_KEY
from tests.e2e_support import Servers, fake_servers, process_env, spawn_bot, text_of
from tests.fakes.telegram import private_message
from tests.secret_watch import secret

pytestmark = pytest.mark.e2e
TOKEN = secret("4343:E2E-webhook-token")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    async with fake_servers(TOKEN) as started:
        yield started


async def test_webhook_process_takes_updates_and_status_callbacks(
    tmp_path: Path, servers: Servers
) -> None:
    server, nusa, nusasms_base = servers
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(
        tmp_path,
        server,
        nusasms_base,
        WEBHOOK_URL=base,
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
        STATUS_POLL_SECONDS="600",  # the push, not a poll, must move the card
    )
    log_path = tmp_path / "bot.log"
    headers = {SECRET_HEADER: telegram_secret_token(TOKEN)}
    with log_path.open("wb") as log:
        process = await spawn_bot(tmp_path, env, log)
        try:
            hook = await server.wait_for("setWebhook", timeout=30)
            assert hook.params["url"] == f"{base}/{telegram_path(TOKEN)}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                since = server.state.mark()
                update = private_message(f"/connect nusasms api_key={NUSA_KEY}")
                answer = await http.post(f"/{telegram_path(TOKEN)}", json=update, headers=headers)
                assert answer.status_code == 200
                await server.wait_for(
                    "sendMessage", lambda c: "connected" in text_of(c), timeout=15, since=since
                )
                since = server.state.mark()
                update = private_message("/send nusasms:wa 6281234567890 Hello hook")
                await http.post(f"/{telegram_path(TOKEN)}", json=update, headers=headers)
                card = await server.wait_for(
                    "sendMessage", lambda c: "Send 1" in text_of(c), timeout=15, since=since
                )
                ref = nusa.sent[-1].ref_no
                push = await http.post(
                    "/" + callback_path(TOKEN, "nusasms", "status"),
                    json={"ref_no": ref, "status": "D"},
                )
                assert push.status_code == 200
                edit = await server.wait_for(
                    "editMessageText", lambda c: "delivered" in text_of(c), timeout=15
                )
                assert edit.params["message_id"] == card.result["message_id"]
        finally:
            process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(process.wait(), timeout=20)
    output = log_path.read_text()
    assert code == 0, output
    assert "webhook mode: listening" in output
    assert TOKEN not in output
    assert telegram_path(TOKEN).rsplit("/", 1)[-1] not in output, "a webhook secret was logged"
