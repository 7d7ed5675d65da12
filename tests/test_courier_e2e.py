"""End to end: ``python -m bot`` against courier + identity fakes served over HTTP on 127.0.0.1.

As a new user would: connect (and pick the number with the offered button), text, read the
status, post a bulk message, send an e-mail, confirm a multicast, list the numbers and ask for
the balance. The password never reaches the log.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e_support import fake_servers, process_env, text_of
from tests.fakes.courier import INDIVIDUAL, ORG, PASSWORD, PHONE_B1, USERNAME, FakeCourier
from tests.fakes.httpserver import serve
from tests.fakes.telegram import callback_query, private_message

pytestmark = pytest.mark.e2e
TOKEN = "4243:E2E-courier-token"
USER = 1  # the private chat of private_message()'s default user
CONNECT = f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG}"


async def test_the_real_process_does_courier_end_to_end(tmp_path: Path) -> None:
    courier = FakeCourier()
    log_path = tmp_path / "bot.log"
    async with fake_servers(TOKEN) as (server, _nusa, nusasms_base), serve(courier) as base:
        env = process_env(
            tmp_path,
            server,
            nusasms_base,
            COURIER_BASE_URL=f"{base}/courier",
            COURIER_IDENTITY_URL=f"{base}/identity",
        )
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=tmp_path, env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                await server.wait_for("setMyCommands", timeout=30)

                async def say(text: str, expect: str, method: str = "sendMessage") -> str:
                    since = server.state.mark()
                    server.push_update(private_message(text))
                    call = await server.wait_for(
                        method, lambda c: expect in text_of(c), timeout=15, since=since
                    )
                    return text_of(call)

                async def press(expect: str, label: str) -> str:
                    (asking,) = [
                        c
                        for c in server.state.calls_to("sendMessage")
                        if expect in text_of(c) and c.params.get("reply_markup")
                    ][-1:]
                    buttons = asking.params["reply_markup"]["inline_keyboard"]
                    (data,) = [
                        b["callback_data"] for row in buttons for b in row if b["text"] == label
                    ]
                    since = server.state.mark()
                    server.push_update(
                        callback_query(
                            data,
                            message_chat_id=USER,
                            message_id=int(asking.result["message_id"]),
                            message=asking.result,
                        )
                    )
                    edit = await server.wait_for("editMessageText", timeout=15, since=since)
                    return text_of(edit)

                await say(CONNECT, "Pick what this chat sends from")
                picked = await press("Pick what this chat sends from", PHONE_B1)
                assert f"sends from <code>{PHONE_B1}</code>" in picked, picked

                card = await say("/send courier:sms 6281234567890 Your visit is at 9", "Send 1")
                assert "accepted" in card, card
                (text,) = courier.texts.values()
                assert text.attributes["from"] == PHONE_B1
                courier.set_text_status(text.id, "delivered")
                assert "delivered" in await say("/status 1", "delivered")

                card = await say(f"/send courier:bulk {INDIVIDUAL} Clinic closed today", "Send 2")
                assert "courier:bulk" in card, card
                assert len(courier.bulk) == 1

                card = await say("/send courier:email ana@example.com Hello | Body text", "Send 3")
                (email,) = courier.emails.values()
                assert email.attributes["status"] == "sent"

                await say("/multicast welcome-1 firstName=Ana", "Nothing is sent until")
                assert not courier.multicasts
                sent = await press("Nothing is sent until", "Send")
                assert "Multicast sent" in sent, sent
                assert len(courier.multicasts) == 1

                assert PHONE_B1 in await say("/senders courier", "courier senders")
                assert "no balance endpoint" in await say("/balance courier", "balance")
            finally:
                process.send_signal(signal.SIGINT)
                code = await asyncio.wait_for(process.wait(), timeout=20)
    output = log_path.read_text()
    assert code == 0, output
    assert PASSWORD not in output, "the courier password leaked into the log"
