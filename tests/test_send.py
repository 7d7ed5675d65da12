"""/send: recipients, routes, idempotency, and a specific reply for every bad input."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlmodel import select

from storage.models import Batch, Message
from tests.conftest import GROUP, USER, Bot
from tests.fakes.telegram import feed, private_message


async def _messages(bot: Bot) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(Message.id)))  # type: ignore[arg-type]


async def test_send_to_several_recipients_in_all_number_forms(bot: Bot) -> None:
    await bot.connect()
    await bot.private("/country ID")
    reply = await bot.private(
        "/send nusasms:wa +62 812-3456-7890, 081234567891,6281234567892 Hello\nteam"
    )
    assert "accepted 3" in reply, reply
    assert [m.destination for m in bot.nusa.sent] == [
        "6281234567890",
        "6281234567891",
        "6281234567892",
    ]
    assert all(m.message == "Hello\nteam" for m in bot.nusa.sent)
    stored = await _messages(bot)
    assert {m.state for m in stored} == {"accepted"}
    assert all(m.provider_ref for m in stored)


async def test_default_route_is_used_and_duplicates_collapse(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private("/send 6281234567890,+6281234567890 Hi")
    assert "nusasms:wa" in reply
    assert len(bot.nusa.sent) == 1


async def test_same_update_twice_sends_once(bot: Bot) -> None:
    await bot.connect()
    update = private_message("/send 6281234567890 Only once")
    await feed(bot.app, update)
    mark = bot.tg.mark()
    await feed(bot.app, update)  # replayed from the inbox after a crash: handled again
    assert len(bot.nusa.sent) == 1
    assert bot.replies_since(mark, USER) == []  # its card is out: nothing that reads as a 2nd
    async with bot.services.repo.db.read() as s:
        assert len(list(await s.exec(select(Batch)))) == 1


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/send", "Usage"),
        ("/send 6281234567890", "text is empty"),
        ("/send 12345 Hi", "not a valid phone number"),
        ("/send 081234567890 Hi", "set the chat's country"),
        ("/send twilio:sms 6281234567890 Hi", "Unknown provider"),
        ("/send nusasms:fax 6281234567890 Hi", "no channel"),
        ("/send nusasms:wa", "No recipient"),
        ("/send 6281234567890,12 Hi", "Nothing was sent"),
        ("/send 6281234567890 " + "x" * 5000, "at most 4096"),
    ],
)
async def test_bad_input_gets_a_specific_reply_and_stores_nothing(
    bot: Bot, command: str, expected: str
) -> None:
    await bot.connect()
    reply = await bot.private(command)
    assert expected in reply, reply
    assert bot.nusa.sent == []
    assert await _messages(bot) == []


async def test_send_without_credentials(bot: Bot) -> None:
    reply = await bot.private("/send nusasms:wa 6281234567890 Hi")
    assert "not connected in this chat" in reply
    assert "/connect nusasms" in reply
    assert await _messages(bot) == []


async def test_send_without_default_route(bot: Bot) -> None:
    reply = await bot.private("/send 6281234567890 Hi")
    assert "no default route" in reply
    assert "(/send nusasms:wa …) or set it with /use nusasms:wa." in reply
    assert "through NusaSMS, Parrotica or courier from this chat" in await bot.private("/help")


def _read_timeout(r: httpx.Request) -> Exception:
    return httpx.ReadTimeout("timed out", request=r)


def _connect_error(r: httpx.Request) -> Exception:
    return httpx.ConnectError("refused", request=r)


@pytest.mark.parametrize(
    ("status", "body", "state", "says"),
    [
        (401, {"error": True, "message": "Invalid API Key"}, "failed", "refused the credentials"),
        (
            422,
            {"detail": [{"loc": ["body", "destination"], "msg": "bad value", "type": "x"}]},
            "failed",
            "destination: bad value",
        ),
        (500, "boom", "unknown", "may or may not have been sent"),
        (503, "down", "failed", "temporarily unavailable"),
        (200, "<html>not json</html>", "unknown", "not JSON"),
        (201, {"error": False, "data": {}}, "unknown", "no ref_no"),
        (200, {"error": True, "message": "Invalid WA Sender"}, "failed", "Invalid WA Sender"),
    ],
)
async def test_provider_failures_leave_a_clear_state(
    bot: Bot, status: int, body: object, state: str, says: str
) -> None:
    await bot.connect()
    bot.nusa.fail_next(status, body, path_contains="/whatsapp/")  # type: ignore[arg-type]
    reply = await bot.private("/send 6281234567890 Hi")
    assert state in reply, reply
    assert says in reply, reply
    (message,) = await _messages(bot)
    assert message.state == state
    assert says in message.detail


async def test_rate_limit_is_retried_not_reported(bot: Bot) -> None:
    await bot.connect()
    bot.nusa.fail_next(429, {"error": True, "message": "Too Many Requests"})
    reply = await bot.private("/send 6281234567890 Hi")
    assert "accepted" in reply
    assert len(bot.nusa.sent) == 1


@pytest.mark.parametrize(
    ("factory", "state"), [(_read_timeout, "unknown"), (_connect_error, "failed")]
)
async def test_transport_errors(
    bot: Bot, factory: Callable[[httpx.Request], Exception], state: str
) -> None:
    await bot.connect()
    bot.nusa.raise_next(factory, path_contains="/whatsapp/")
    reply = await bot.private("/send 6281234567890 Hi")
    (message,) = await _messages(bot)
    assert message.state == state
    assert state in reply


async def test_auth_failure_stops_a_bulk_send_early(bot: Bot) -> None:
    await bot.connect()
    bot.nusa.api_keys.clear()  # the key was revoked at the provider
    numbers = ",".join(f"62812345678{i:02d}" for i in range(30))
    reply = await bot.private(f"/send {numbers} Hi")
    assert "failed 30" in reply
    whatsapp_calls = [r for r in bot.nusa.requests if "/whatsapp/" in r.url.path]
    assert len(whatsapp_calls) < 30  # stopped calling once the key was refused
    assert all(m.state == "failed" for m in await _messages(bot))


async def test_status_of_unknown_or_foreign_message(bot: Bot) -> None:
    await bot.connect()
    await bot.private("/send 6281234567890 Hi")
    assert "no message #99" in await bot.private("/status 99")
    assert "not a message id" in await bot.private("/status abc")
    # another chat cannot see it
    assert "no message #1" in await bot.private("/status 1", user_id=2)


async def test_status_list_history_and_export(bot: Bot) -> None:
    await bot.connect()
    assert "No messages yet" in await bot.private("/status")
    assert "nothing to export" in await bot.private("/export")
    await bot.private("/send 6281234567890 First")
    await bot.private("/send 6281234567891 Second")
    listing = await bot.private("/status")
    assert listing.index("#2") < listing.index("#1")
    assert "Second" in await bot.private("/history 1")
    assert "1 to 100" in await bot.private("/history 0")
    await bot.private("/export")
    (upload,) = bot.tg.calls_to("sendDocument")
    content = upload.params["document"].content.decode("utf-8-sig")
    assert content.splitlines()[0].startswith("id,created_at_utc,route")
    assert "6281234567891" in content


async def test_status_poll_shows_provider_error_without_losing_history(bot: Bot) -> None:
    await bot.connect()
    await bot.private("/send 6281234567890 Hi")
    bot.nusa.fail_next(500, "boom", path_contains="/whatsapp/status")
    reply = await bot.private("/status 1")
    assert "accepted" in reply
    assert "Could not ask NusaSMS" in reply


async def test_viewer_cannot_send_in_a_group(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role 7 viewer")
    reply = await bot.group("/send nusasms:wa 6281234567890 Hi", user_id=7)
    assert "needs the operator role" in reply
    assert "you are viewer" in reply


async def test_group_member_without_admin_cannot_change_roles(bot: Bot) -> None:
    reply = await bot.group("/role 8 admin", user_id=7)
    assert "needs the admin role" in reply


async def test_each_send_is_audited_without_its_text(bot: Bot) -> None:
    from storage.models import AuditEntry

    await bot.connect()
    await bot.private("/send 6281234567890,6281234567891 Secret plans")
    async with bot.services.repo.db.read() as s:
        entries = list(await s.exec(select(AuditEntry).where(AuditEntry.action == "send")))
    assert [(e.user_id, e.detail) for e in entries] == [
        (USER, "send 1: 2 recipient(s) via nusasms:wa")
    ]
