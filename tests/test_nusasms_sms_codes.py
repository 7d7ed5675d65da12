"""Every documented SMS v3 status code: its error class, and its meaning in the chat reply."""

from __future__ import annotations

import pytest
from sqlmodel import select

from providers.errors import (
    AuthError,
    InsufficientCredit,
    MessageRejected,
    ProviderError,
    ProviderUnavailable,
    UnexpectedResponse,
    ValidationError,
)
from providers.nusasms_codes import SMS_STATUSES, sms_error
from storage.models import Message
from tests.conftest import NUSA_KEY, Bot

# The "Response Status" table of shared/api-docs/nusasms.txt, plus -55 from the group example.
DOCUMENTED: list[tuple[str, type[ProviderError] | None, str]] = [
    ("0", None, ""),
    ("-1", ProviderUnavailable, "error in processing the request"),
    ("-2", InsufficientCredit, "not enough credits"),
    ("-3", MessageRejected, "network is not covered"),
    ("-5", AuthError, "user name or password is invalid"),
    ("-6", ValidationError, "destination number is missing"),
    ("-7", InsufficientCredit, "balance has expired"),
    ("-10", MessageRejected, "OTP route"),
    ("-11", MessageRejected, "not recognised by NusaSMS"),
    ("-12", ValidationError, "text is missing"),
    ("-13", MessageRejected, "not recognised by NusaSMS"),
    ("-22", ValidationError, "syntax error"),
    ("-23", ProviderUnavailable, "general error"),
    ("-26", ProviderUnavailable, "general API error"),
    ("-27", ValidationError, "scheduling parameter"),
    ("-28", ValidationError, "push URL"),
    ("-30", ValidationError, "APPID"),
    ("-33", ValidationError, "duplicated message id"),
    ("-34", MessageRejected, "sender name is not allowed"),
    ("-40", AuthError, "whitelist"),
    ("-55", ValidationError, "group does not exist or has no contacts"),
    ("-77", MessageRejected, "spam pattern"),
    ("-78", MessageRejected, "daily limit for this number reached"),
    ("-88", MessageRejected, "operator rejected"),
    ("-99", ProviderUnavailable, "error in processing the request"),
]


def test_the_table_covers_exactly_the_documented_codes() -> None:
    assert set(SMS_STATUSES) == {code for code, _, _ in DOCUMENTED}


@pytest.mark.parametrize(("code", "error", "meaning"), DOCUMENTED)
def test_each_code_maps_to_its_error(
    code: str, error: type[ProviderError] | None, meaning: str
) -> None:
    found = sms_error(code)
    if error is None:
        assert found is None
        return
    assert type(found) is error
    assert found is not None
    assert meaning in found.message
    assert f"status {code}" in found.message
    assert found.code == code
    # The vendor said it did not process the request: failed, never "maybe sent".
    assert not found.maybe_sent


async def connect_sms(bot: Bot) -> None:
    reply = await bot.private(
        f"/connect nusasms api_key={NUSA_KEY} sms_user=sms-user sms_password=sms-password"
    )
    assert "connected" in reply, reply


@pytest.mark.parametrize(("code", "error", "meaning"), DOCUMENTED)
async def test_each_code_reaches_the_chat_with_its_meaning(
    bot: Bot, code: str, error: type[ProviderError] | None, meaning: str
) -> None:
    await connect_sms(bot)
    bot.nusa.sms_status_next(code)
    reply = await bot.private("/send nusasms:sms 6281234567890 Halo")
    async with bot.services.repo.db.read() as s:
        [message] = list(await s.exec(select(Message)))
    if error is None:
        assert "accepted" in reply, reply
        assert message.state == "accepted"
        assert message.provider_ref == bot.nusa.sms_sent[0].messageid
        return
    assert "failed" in reply, reply
    assert meaning in reply, reply
    assert f"status {code}" in reply
    assert message.state == "failed"
    assert meaning in message.detail
    assert bot.nusa.sms_sent == []


async def test_an_undocumented_code_leaves_the_message_unknown(bot: Bot) -> None:
    await connect_sms(bot)
    bot.nusa.sms_status_next("-42")
    reply = await bot.private("/send nusasms:sms 6281234567890 Halo")
    assert "unknown" in reply, reply
    assert "undocumented status '-42'" in reply
    assert isinstance(sms_error("-42"), UnexpectedResponse)


async def test_a_fatal_code_stops_a_bulk_send(bot: Bot) -> None:
    await connect_sms(bot)
    bot.nusa.credit.sms_balance = 0
    await bot.private("/send nusasms:sms 6281234567890,6281234567891,6281234567892 Halo")
    async with bot.services.repo.db.read() as s:
        messages = list(await s.exec(select(Message)))
    assert [m.state for m in messages] == ["failed"] * 3
    assert sum("not attempted" in m.detail for m in messages) == 2
    assert bot.nusa.sms_sent == []
    sends = [r for r in bot.nusa.requests if r.url.path.endswith("/sendsms/plain")]
    assert len(sends) == 1  # the other two were never sent to NusaSMS
