"""End to end in webhook mode: ``python -m bot`` serves Telegram updates and a NusaSMS push.

The fake Bot API and the fake NusaSMS listen on 127.0.0.1; the test plays Telegram (posting
updates to the bot's webhook) and NusaSMS (posting a status callback), then watches the card
being edited through the fake Bot API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from bot.callbacks import callback_path
from bot.webhooks import SECRET_HEADER, telegram_path, telegram_secret_token
from tests.conftest import NUSA_KEY
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import Call, private_message

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]
TOKEN = "4343:E2E-webhook-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def servers() -> AsyncIterator[tuple[BotApiServer, FakeNusaSms, str]]:
    nusa = FakeNusaSms(api_key=NUSA_KEY, retry_after="0")
    async with BotApiServer(token=TOKEN) as server, serve(nusa) as nusasms_base:
        yield server, nusa, nusasms_base


def _text(call: Call) -> str:
    return str(call.params.get("text", ""))


async def test_webhook_process_takes_updates_and_status_callbacks(
    tmp_path: Path, servers: tuple[BotApiServer, FakeNusaSms, str]
) -> None:
    server, nusa, nusasms_base = servers
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NUSASMS_"))}
    env.update(server.env())
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chatops.db'}",
            "NUSASMS_BASE_URL": f"{nusasms_base}/nusasms_api/1.0",
            "NUSASMS_SMS_BASE_URL": f"{nusasms_base}/api",
            "SECRET_KEY": Fernet.generate_key().decode(),
            "WEBHOOK_URL": base,
            "WEBHOOK_LISTEN": "127.0.0.1",
            "WEBHOOK_PORT": str(port),
            "STATUS_POLL_SECONDS": "600",  # the push, not a poll, must move the card
            "LOG_LEVEL": "INFO",
        }
    )
    log_path = tmp_path / "bot.log"
    headers = {SECRET_HEADER: telegram_secret_token(TOKEN)}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            hook = await server.wait_for("setWebhook", timeout=30)
            assert hook.params["url"] == f"{base}/{telegram_path(TOKEN)}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                since = server.state.mark()
                update = private_message(f"/connect nusasms api_key={NUSA_KEY}")
                answer = await http.post(f"/{telegram_path(TOKEN)}", json=update, headers=headers)
                assert answer.status_code == 200
                await server.wait_for(
                    "sendMessage", lambda c: "connected" in _text(c), timeout=15, since=since
                )
                since = server.state.mark()
                update = private_message("/send nusasms:wa 6281234567890 Hello hook")
                await http.post(f"/{telegram_path(TOKEN)}", json=update, headers=headers)
                card = await server.wait_for(
                    "sendMessage", lambda c: "Send 1" in _text(c), timeout=15, since=since
                )
                ref = nusa.sent[-1].ref_no
                push = await http.post(
                    "/" + callback_path(TOKEN, "nusasms", "status"),
                    json={"ref_no": ref, "status": "D"},
                )
                assert push.status_code == 200
                edit = await server.wait_for(
                    "editMessageText", lambda c: "delivered" in _text(c), timeout=15
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
