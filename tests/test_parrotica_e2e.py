"""End to end: ``python -m bot`` against a Parrotica fake served over HTTP on 127.0.0.1.

As a new user would: connect, send to numbers and an address-book group, pick a sender, read
the address book and activity, ask the status, see the balance, and hand a schedule over.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e_support import fake_servers, process_env, text_of
from tests.fakes.httpserver import serve
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER, FakeParrotica
from tests.fakes.telegram import callback_query, private_message
from tests.secret_watch import secret

pytestmark = pytest.mark.e2e
TOKEN = secret("4242:E2E-parrotica-token")


async def test_the_real_process_does_parrotica_end_to_end(tmp_path: Path) -> None:
    parrotica = FakeParrotica()
    log_path = tmp_path / "bot.log"
    async with fake_servers(TOKEN) as (server, _nusa, nusasms_base), serve(parrotica) as base:
        env = process_env(tmp_path, server, nusasms_base, PARROTICA_BASE_URL=base)
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=tmp_path, env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                await server.wait_for("setMyCommands", timeout=30)

                async def say(text: str, expect: str) -> str:
                    since = server.state.mark()
                    server.push_update(private_message(text))
                    call = await server.wait_for(
                        "sendMessage", lambda c: expect in text_of(c), timeout=15, since=since
                    )
                    return text_of(call)

                await say(f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}",
                          "connected")  # fmt: skip
                # A provider group counts as more than CONFIRM_ABOVE: Send is pressed first.
                since = server.state.mark()
                server.push_update(private_message("/send parrotica 6281234567890,group:4004 Hi"))
                asked = await server.wait_for(
                    "sendMessage",
                    lambda c: "provider group" in text_of(c),
                    timeout=15,
                    since=since,
                )
                assert not parrotica.messages
                send = asked.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
                since = server.state.mark()
                server.push_update(
                    callback_query(send, message_chat_id=1, message_id=asked.result["message_id"])
                )
                card = text_of(
                    await server.wait_for(
                        "sendMessage", lambda c: "Send 1" in text_of(c), timeout=15, since=since
                    )
                )
                assert "accepted 2" in card, card
                (sent,) = parrotica.messages.values()
                assert sent.numbers == ["+6281234567890"]
                assert sent.group_ids == [4004]
                assert "ABC123" in await say("/senders", "senders")
                assert "Ada Lovelace" in await say("/contacts", "Ada")
                assert "Customers" in await say("/groups", "Customers")
                added = await say('/contacts add "Budi Santoso" +6281299990000', "Budi")
                assert "Budi Santoso" in added, added
                assert any(c.number == "+6281299990000" for c in parrotica.contacts.values())
                await say("/activity", "activity")
                parrotica.set_state(sent.id, "delivered")
                assert "delivered" in await say("/status 1", "delivered")
                assert "recent transactions" in await say("/balance", "Parrotica")
                handed = await say("/schedule in 2h parrotica 6281234567891 Later", "Parrotica")
                assert "Parrotica" in handed
                later = max(parrotica.messages.values(), key=lambda m: m.id)
                first_time = later.scheduled_at
                assert first_time is not None
                assert "cannot cancel" in await say("/cancel 1", "cancel")
                since = server.state.mark()
                server.push_update(private_message("/reschedule 1 in 3h"))
                await server.wait_for("sendMessage", lambda c: True, timeout=15, since=since)
                assert later.scheduled_at is not None
                assert later.scheduled_at > first_time  # moved at Parrotica
            finally:
                process.send_signal(signal.SIGINT)
                code = await asyncio.wait_for(process.wait(), timeout=20)
    output = log_path.read_text()
    assert code == 0, output
    assert DEFAULT_KEY not in output, "the Parrotica key leaked into the log"
