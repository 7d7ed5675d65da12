"""NusaSmsClient against the stateful NusaSMS fake through ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import httpx
import pytest

from providers.base import DeliveryState, Media, OutgoingMessage
from providers.errors import (
    AuthError,
    InsufficientCredit,
    MessageRejected,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    ValidationError,
)
from providers.nusasms import NusaSmsClient, NusaSmsSettings
from providers.ratelimit import AccountLimiters, SlotPacer
from tests.fakes.nusasms import DEV_TESTING_API_KEY, FakeNusaSms

BASE_URL = "http://nusasms.test/nusasms_api/1.0"
KEY = "test-api-key"
GROUP_ID = "628123456789-1234567890"


def unpaced() -> SlotPacer:
    """A pacer that never makes a test wait."""
    return SlotPacer(0)


@asynccontextmanager
async def nusasms_client(
    fake: FakeNusaSms,
    *,
    api_key: str = KEY,
    limiter: SlotPacer | None = None,
    max_retries: int = 3,
) -> AsyncIterator[NusaSmsClient]:
    """A client wired to ``fake``; the AsyncClient is closed on exit."""
    settings = NusaSmsSettings(
        base_url=BASE_URL, min_interval=0.05, max_rate_limit_retries=max_retries
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield NusaSmsClient(http, api_key=api_key, limiter=limiter or unpaced(), settings=settings)


def text(to: str = "6281234567890", body: str = "Halo dari bot") -> OutgoingMessage:
    return OutgoingMessage(channel="wa", to=to, text=body)


# -- account -----------------------------------------------------------------------------------


async def test_verify_accepts_the_key_and_names_the_account() -> None:
    fake = FakeNusaSms()
    fake.userid = "acme-ops"
    async with nusasms_client(fake) as client:
        info = await client.verify()
    assert info.account == "acme-ops"
    assert info.details == f"client {fake.credit.id_client}"
    assert fake.requests[0].headers["APIKey"] == KEY
    assert fake.requests[0].url.path == "/nusasms_api/1.0/auth/api_key"


async def test_verify_with_a_wrong_key_raises_auth_error() -> None:
    fake = FakeNusaSms()
    async with nusasms_client(fake, api_key="wrong") as client:
        with pytest.raises(AuthError) as caught:
            await client.verify()
    assert caught.value.code == "401"
    assert "Invalid API Key" in caught.value.message
    assert not caught.value.maybe_sent


async def test_balances_are_parsed_with_expiry_dates() -> None:
    fake = FakeNusaSms()
    fake.credit.wa_balance = 120
    fake.credit.wa_expired_date = "2026-03-31"
    fake.credit.sms_balance = 4500.5
    fake.credit.sms_expired_date = "2026-12-01"
    fake.credit.hlr_balance = None  # absent balances are skipped, not reported as zero
    fake.credit.pulsa_balance = 25000
    async with nusasms_client(fake) as client:
        balances = {b.name: b for b in await client.balances()}
    assert set(balances) == {"WA", "SMS", "SIM", "PULSA"}
    assert balances["WA"].amount == 120
    assert balances["WA"].expires == date(2026, 3, 31)
    assert balances["SMS"].amount == 4500.5
    assert balances["SMS"].expires == date(2026, 12, 1)
    assert balances["SIM"].expires is None
    assert balances["PULSA"].unit == "IDR"
    assert balances["PULSA"].amount == 25000


# -- sending -----------------------------------------------------------------------------------


async def test_send_text_posts_the_documented_body() -> None:
    fake = FakeNusaSms()
    async with nusasms_client(fake) as client:
        result = await client.send(text(body="Halo 😀"))
    assert fake.requests[0].url.path.endswith("/whatsapp/message")
    assert fake.json_body() == {
        "destination": "6281234567890",
        "is_group": False,
        "message": "Halo 😀",
    }
    [stored] = fake.sent
    assert result.ref == stored.ref_no
    assert result.state is DeliveryState.ACCEPTED
    assert (stored.destination, stored.message, stored.is_group) == (
        "6281234567890",
        "Halo 😀",
        False,
    )


async def test_send_to_a_group_id_sets_is_group() -> None:
    fake = FakeNusaSms()
    async with nusasms_client(fake) as client:
        await client.send(text(to=GROUP_ID))
    assert fake.json_body()["is_group"] is True
    assert fake.sent[0].is_group is True
    assert fake.sent[0].destination == GROUP_ID


async def test_send_deducts_wa_credit_and_refs_are_unique() -> None:
    fake = FakeNusaSms()
    fake.credit.wa_balance = 10
    async with nusasms_client(fake) as client:
        refs = {(await client.send(text(body=f"n{i}"))).ref for i in range(3)}
    assert len(refs) == 3
    assert fake.credit.wa_balance == 7


async def test_send_media_posts_base64_file_name_and_caption() -> None:
    fake = FakeNusaSms()
    content = b"%PDF-1.4 fake invoice"
    message = OutgoingMessage(
        channel="wa",
        to="6281234567890",
        text="Invoice March",
        media=Media(file_name="invoice.pdf", content=content),
    )
    async with nusasms_client(fake) as client:
        result = await client.send(message)
    assert fake.requests[0].url.path.endswith("/whatsapp/media")
    body = fake.json_body()
    assert base64.b64decode(body["media_base64"]) == content
    assert body["file_name"] == "invoice.pdf"
    assert body["caption"] == "Invoice March"
    assert "message" not in body
    [stored] = fake.sent
    assert (stored.kind, stored.media, stored.caption) == ("media", content, "Invoice March")
    assert result.ref == stored.ref_no
    assert fake.credit.wa_balance == 998  # media costs 2 WA credits


async def test_media_of_a_forbidden_type_is_a_validation_error_naming_the_field() -> None:
    fake = FakeNusaSms()
    message = OutgoingMessage(
        channel="wa", to="6281234567890", text="", media=Media("run.exe", b"MZ")
    )
    async with nusasms_client(fake) as client:
        with pytest.raises(ValidationError) as caught:
            await client.send(message)
    assert caught.value.code == "422"
    assert "file_name" in caught.value.message
    assert fake.sent == []


async def test_media_over_the_size_limit_is_refused() -> None:
    fake = FakeNusaSms()
    big = OutgoingMessage(
        channel="wa", to="6281234567890", text="", media=Media("big.png", b"\0" * (513 * 1024))
    )
    async with nusasms_client(fake) as client:
        with pytest.raises(ValidationError, match="media_base64"):
            await client.send(big)
    assert fake.sent == []


async def test_send_without_wa_credit_is_insufficient_credit() -> None:
    fake = FakeNusaSms()
    fake.credit.wa_balance = 0
    async with nusasms_client(fake) as client:
        with pytest.raises(InsufficientCredit):
            await client.send(text())
    assert fake.sent == []


# -- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letter", "state"),
    [
        ("U", DeliveryState.ACCEPTED),
        ("Q", DeliveryState.ACCEPTED),
        ("S", DeliveryState.SENT),
        ("D", DeliveryState.DELIVERED),
        ("R", DeliveryState.READ),
        ("A", DeliveryState.ABORTED),
        ("F", DeliveryState.FAILED),
    ],
)
async def test_status_letters_map_to_delivery_states(letter: str, state: DeliveryState) -> None:
    moment = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    fake = FakeNusaSms(now=lambda: moment)
    async with nusasms_client(fake) as client:
        sent = await client.send(text())
        fake.set_status(sent.ref, letter)
        report = await client.status(sent.ref, channel="wa")
    assert fake.requests[-1].url.path.endswith(f"/whatsapp/status/{sent.ref}")
    assert report.ref == sent.ref
    assert report.state is state
    assert report.provider_status == letter
    assert report.at == moment


async def test_status_reports_the_latest_date_the_provider_gives() -> None:
    moments = iter(datetime(2026, 1, 1, 10, m, tzinfo=UTC) for m in range(10))
    fake = FakeNusaSms(now=lambda: next(moments))
    async with nusasms_client(fake) as client:
        sent = await client.send(text())  # created 10:00
        fake.set_status(sent.ref, "S")  # sent 10:01
        fake.set_status(sent.ref, "D")  # delivered 10:02
        report = await client.status(sent.ref)
    assert report.state is DeliveryState.DELIVERED
    assert report.at == datetime(2026, 1, 1, 10, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ref", "state"),
    [
        ("queued", DeliveryState.ACCEPTED),
        ("sent", DeliveryState.SENT),
        ("delivered", DeliveryState.DELIVERED),
        ("read", DeliveryState.READ),
        ("aborted", DeliveryState.ABORTED),
        ("failed", DeliveryState.FAILED),
    ],
)
async def test_dev_server_magic_refs(ref: str, state: DeliveryState) -> None:
    fake = FakeNusaSms(dev_server=True)
    async with nusasms_client(fake, api_key=DEV_TESTING_API_KEY) as client:
        report = await client.status(ref)
    assert report.state is state
    assert report.ref == ref


async def test_magic_refs_are_unknown_on_the_production_fake() -> None:
    fake = FakeNusaSms()
    async with nusasms_client(fake) as client:
        with pytest.raises(ValidationError, match="not found"):
            await client.status("delivered")
    assert fake.requests[0].url.path.endswith("/whatsapp/status/delivered")


@pytest.mark.parametrize("raw", ["X", "PENDING", ""])
async def test_an_unknown_status_does_not_crash(raw: str) -> None:
    fake = FakeNusaSms()
    async with nusasms_client(fake) as client:
        sent = await client.send(text())
        fake.set_status(sent.ref, raw)
        report = await client.status(sent.ref)
    assert report.state is DeliveryState.ACCEPTED
    assert report.provider_status == raw
    assert "unrecognised" in report.detail


async def test_status_of_an_unknown_ref_is_not_found() -> None:
    fake = FakeNusaSms()
    async with nusasms_client(fake) as client:
        with pytest.raises(ValidationError) as caught:
            await client.status("no-such-ref")
    assert caught.value.code == "404"
    assert "Message not found" in caught.value.message


# -- rate limiting -----------------------------------------------------------------------------


async def test_a_429_is_retried_then_succeeds() -> None:
    fake = FakeNusaSms(retry_after="0")
    fake.fail_next(429, {"error": True, "error_code": 429, "message": "Too Many Requests"})
    async with nusasms_client(fake) as client:
        result = await client.send(text())
    assert len(fake.requests) == 2
    assert [m.ref_no for m in fake.sent] == [result.ref]


async def test_the_fakes_own_rate_limit_is_retried_and_counted() -> None:
    # Each request reads the clock once and 30 ms pass between requests: the second send
    # arrives too early (429), its retry 30 ms later is fine.
    ticks = itertools.count(step=0.03)
    fake = FakeNusaSms(min_interval=0.05, retry_after="0", clock=lambda: next(ticks))
    async with nusasms_client(fake) as client:
        await client.send(text(body="one"))
        await client.send(text(body="two"))
    assert fake.rate_limited == 1
    assert len(fake.requests) == 3
    assert [m.message for m in fake.sent] == ["one", "two"]


async def test_the_fake_enforces_its_rate_limit_per_account() -> None:
    now = [100.0]
    fake = FakeNusaSms(min_interval=0.05, dev_server=True, clock=lambda: now[0])
    ok = {"APIKey": KEY}
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url=BASE_URL) as http:
        assert (await http.get("/balance", headers=ok)).status_code == 200
        now[0] += 0.02
        too_soon = await http.get("/balance", headers=ok)
        other_account = await http.get("/balance", headers={"APIKey": DEV_TESTING_API_KEY})
        now[0] += 0.05
        later = await http.get("/balance", headers=ok)
    assert too_soon.status_code == 429
    assert too_soon.headers["Retry-After"] == "1"
    assert too_soon.json()["error"] is True
    assert other_account.status_code == 200  # the limit is per account
    assert later.status_code == 200
    assert fake.rate_limited == 1


async def test_an_unpaced_client_trips_the_fakes_rate_limit() -> None:
    # The control for the next test: without pacing, back-to-back calls are refused.
    fake = FakeNusaSms(min_interval=0.05)
    async with nusasms_client(fake, max_retries=0) as client:
        await client.send(text())
        with pytest.raises(RateLimited) as caught:
            await client.send(text())
    assert fake.rate_limited == 1
    assert caught.value.retry_after == 1.0


async def test_the_shared_account_limiter_never_trips_the_rate_limit() -> None:
    # 5 ms of jitter is forgiven: the limiter's timer and the fake's clock are read at
    # slightly different moments of the same request.
    fake = FakeNusaSms(min_interval=0.05, tolerance=0.005)
    limiters = AccountLimiters()
    async with (
        nusasms_client(fake, limiter=limiters.get("nusasms", KEY, interval=0.05)) as one,
        nusasms_client(fake, limiter=limiters.get("nusasms", KEY, interval=0.05)) as two,
    ):
        for i in range(3):
            await one.send(text(body=f"seq {i}"))
        results = await asyncio.gather(
            *(client.send(text(body=f"par {i}")) for i, client in enumerate([one, two] * 3))
        )
        await two.verify()
    assert fake.rate_limited == 0
    assert len(fake.requests) == 10
    assert len(fake.sent) == 9
    assert len({r.ref for r in results}) == 6


# -- the standard failure table ----------------------------------------------------------------


def canned(status: int, body: dict[str, object] | str | bytes) -> Callable[[FakeNusaSms], None]:
    return lambda fake: fake.fail_next(status, body)


def raising(exc: Callable[[httpx.Request], Exception]) -> Callable[[FakeNusaSms], None]:
    return lambda fake: fake.raise_next(exc)


def always_429(fake: FakeNusaSms) -> None:
    for _ in range(3):
        fake.fail_next(429, {"error": True, "message": "Too Many Requests"})


def envelope_error(message: str) -> dict[str, object]:
    return {"error": True, "error_code": 400, "message": message, "data": None}


FAILURES = [
    pytest.param(
        canned(400, envelope_error("Invalid parameter")),
        ValidationError,
        False,
        "Invalid parameter",
        id="400",
    ),
    pytest.param(
        canned(401, envelope_error("Invalid API Key")), AuthError, False, "Invalid API", id="401"
    ),
    pytest.param(canned(403, {"detail": "Forbidden"}), AuthError, False, "Forbidden", id="403"),
    pytest.param(
        canned(404, {"detail": "Not Found"}), ValidationError, False, "not found", id="404"
    ),
    pytest.param(
        canned(
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "destination"],
                        "msg": "field required",
                        "type": "value_error.missing",
                    }
                ]
            },
        ),
        ValidationError,
        False,
        "destination: field required",
        id="422",
    ),
    pytest.param(always_429, RateLimited, False, "rate limiting", id="429-exhausted"),
    pytest.param(
        canned(500, "Internal Server Error"), ProviderUnavailable, True, "HTTP 500", id="500"
    ),
    pytest.param(
        canned(503, "Service Unavailable"), ProviderUnavailable, False, "HTTP 503", id="503"
    ),
    pytest.param(
        raising(lambda r: httpx.ConnectError("connection refused", request=r)),
        ProviderUnavailable,
        False,
        "could not be reached",
        id="connect-error",
    ),
    pytest.param(
        raising(lambda r: httpx.ReadTimeout("timed out", request=r)),
        ProviderUnavailable,
        True,
        "did not answer in time",
        id="read-timeout",
    ),
    pytest.param(
        raising(lambda r: httpx.RemoteProtocolError("peer closed", request=r)),
        ProviderUnavailable,
        True,
        "broke off",
        id="connection-dropped",
    ),
    pytest.param(
        canned(200, b"<html>gateway</html>"), UnexpectedResponse, True, "not JSON", id="garbage"
    ),
    pytest.param(
        canned(201, {"error": False, "error_code": 0, "message": "ok", "data": {}}),
        UnexpectedResponse,
        True,
        "no ref_no",
        id="no-ref-no",
    ),
    pytest.param(
        canned(200, {"error": True, "message": "Invalid WA Sender", "description": None}),
        MessageRejected,
        False,
        "Invalid WA Sender",
        id="envelope-error",
    ),
    pytest.param(
        canned(200, {"error": True, "message": "Insufficient balance", "data": None}),
        InsufficientCredit,
        False,
        "Insufficient balance",
        id="insufficient-balance",
    ),
]


@pytest.mark.parametrize(("setup", "expected", "maybe_sent", "fragment"), FAILURES)
async def test_send_failures(
    setup: Callable[[FakeNusaSms], None],
    expected: type[ProviderError],
    maybe_sent: bool,
    fragment: str,
) -> None:
    fake = FakeNusaSms(retry_after="0")
    setup(fake)
    async with nusasms_client(fake, max_retries=2) as client:
        with pytest.raises(expected) as caught:
            await client.send(text())
    error = caught.value
    assert type(error) is expected
    assert error.maybe_sent is maybe_sent
    assert error.provider == "NusaSMS"
    assert fragment.lower() in error.message.lower()
    assert fake.sent == []
    assert len(fake.requests) == (3 if expected is RateLimited else 1)
