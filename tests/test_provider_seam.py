"""The adapters on the shared client of ``make_http_client``: what goes out, and failures.

Every NusaSMS call is sent through the client the bot builds (over ``MockTransport`` here):
each request carries the client's ``User-Agent`` and timeouts, the WhatsApp API's ``APIKey``
(added by :class:`providers.nusasms.APIKeyAuth`) and the SMS login only in a body or a
``command`` query, never both. The standard failure table runs in memory and over a real socket.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import httpx
import pytest

from providers.base import Media, OutgoingMessage
from providers.errors import ProviderError
from providers.http import USER_AGENT, make_http_client
from providers.nusasms import APIKeyAuth, NusaSmsClient, NusaSmsSettings
from providers.nusasms_sms import NusaSmsSmsClient, SmsCredentials
from providers.ratelimit import SlotPacer
from tests.fakes.httpserver import serve
from tests.fakes.nusasms import FakeNusaSms
from tests.test_nusasms_client import FAILURES

KEY = "test-api-key"
CREDS = SmsCredentials("sms-user", "p&ss word+é")
Call = Callable[[NusaSmsClient, NusaSmsSmsClient], Awaitable[object]]


def settings(base: str = "http://nusasms.test") -> NusaSmsSettings:
    return NusaSmsSettings(
        base_url=f"{base}/nusasms_api/1.0",
        sms_base_url=f"{base}/api",
        min_interval=0.0,
        max_rate_limit_retries=2,
    )


@asynccontextmanager
async def clients(
    http: httpx.AsyncClient, base: str = "http://nusasms.test"
) -> AsyncIterator[tuple[NusaSmsClient, NusaSmsSmsClient]]:
    async with http:
        wa = NusaSmsClient(http, api_key=KEY, limiter=SlotPacer(0), settings=settings(base))
        sms = NusaSmsSmsClient(
            http, credentials=CREDS, limiter=SlotPacer(0), settings=settings(base)
        )
        yield wa, sms


def new_fake(**kwargs: str) -> FakeNusaSms:
    return FakeNusaSms(api_key=KEY, sms_user=CREDS.user, sms_password=CREDS.password, **kwargs)


def shared(fake: FakeNusaSms) -> httpx.AsyncClient:
    """The client the bot builds, over the fake."""
    return make_http_client(transport=httpx.MockTransport(fake))


async def _send_then_status(wa: NusaSmsClient) -> object:
    result = await wa.send(OutgoingMessage(channel="wa", to="6281234567890", text="hi"))
    return await wa.status(result.ref)


async def _sms_then_report(sms: NusaSmsSmsClient) -> object:
    result = await sms.send_plain("6281234567890", "hi")
    return await sms.delivery_report(result.ref)


CALLS: list[tuple[str, Call]] = [
    ("wa-text", lambda wa, _: wa.send(OutgoingMessage("wa", "6281234567890", 'Halo 😀 "q"'))),
    (
        "wa-media",
        lambda wa, _: wa.send(
            OutgoingMessage("wa", "6281234567890", "cap", Media("a.png", b"\x89PNG..."))
        ),
    ),
    ("wa-status", lambda wa, _: _send_then_status(wa)),
    ("wa-verify", lambda wa, _: wa.verify()),
    ("wa-balance", lambda wa, _: wa.balances()),
    ("wa-phone-check", lambda wa, _: wa.phone_check(["6281234567890"], callback_url="http://cb")),
    ("sms-plain", lambda _, sms: sms.send_plain("6281234567890", "Kode 1234 ✅ a&b=c", otp=True)),
    ("sms-group", lambda _, sms: sms.send_group("Example", "Rapat jam 9")),
    ("sms-credits", lambda _, sms: sms.credits()),
    ("sms-delivery-report", lambda _, sms: _sms_then_report(sms)),
]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[name for name, _ in CALLS])
async def test_every_call_sends_the_documented_request(name: str, call: Call) -> None:
    fake = new_fake()
    async with clients(shared(fake)) as (wa, sms):
        await call(wa, sms)
    assert fake.requests, name
    for request in fake.requests:
        raw = [(k.decode(), v.decode()) for k, v in request.headers.raw]
        assert request.headers["User-Agent"] == USER_AGENT
        assert request.extensions["timeout"] == httpx.Timeout(20.0, connect=5.0).as_dict()
        if request.url.path.startswith("/nusasms_api/"):
            assert ("APIKey", KEY) in raw  # spelled as documented
            assert request.headers["Accept"] == "application/json"
            if request.method == "POST":
                assert request.headers["Content-Type"] == "application/json"
                assert request.headers["Content-Length"] == str(len(request.content))
            continue
        assert "APIKey" not in request.headers
        query = dict(request.url.params)
        if request.method == "POST":  # sendsms: the login in the form body only
            assert query == {"output": "json"}
            assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
            form = dict(parse_qsl(request.content.decode()))
            assert (form["user"], form["password"]) == (CREDS.user, CREDS.password)
        else:  # command: GET with the login in the query, as documented
            assert request.content == b""
            assert (query["user"], query["password"], query["output"]) == (
                CREDS.user,
                CREDS.password,
                "json",
            )


def test_the_api_key_auth_hides_the_key() -> None:
    assert KEY not in repr(APIKeyAuth(KEY))


async def test_a_status_url_is_quoted_and_a_media_body_is_base64() -> None:
    fake = new_fake()
    async with clients(shared(fake)) as (wa, _):
        with pytest.raises(ProviderError):
            await wa.status("a/b?c")
        await wa.send(OutgoingMessage("wa", "6281234567890", "", Media("x.pdf", b"\x00\x01")))
    assert fake.requests[0].url.raw_path.endswith(b"/whatsapp/status/a%2Fb%3Fc")
    assert fake.json_body(1)["media_base64"] == base64.b64encode(b"\x00\x01").decode()


@pytest.mark.parametrize(("setup", "expected", "maybe_sent", "fragment"), FAILURES)
async def test_send_failures_in_memory(
    setup: Callable[[FakeNusaSms], None],
    expected: type[ProviderError],
    maybe_sent: bool,
    fragment: str,
) -> None:
    fake = new_fake(retry_after="0")
    setup(fake)
    async with clients(shared(fake)) as (wa, _):
        with pytest.raises(expected) as caught:
            await wa.send(OutgoingMessage("wa", "6281234567890", "hi"))
    assert type(caught.value) is expected
    assert caught.value.maybe_sent is maybe_sent
    assert fragment.lower() in caught.value.message.lower()
    assert fake.sent == []


NETWORK_FAILURES = [p for p in FAILURES if p.id not in {"connect-error", "read-timeout"}]


@pytest.mark.parametrize(("setup", "expected", "maybe_sent", "fragment"), NETWORK_FAILURES)
async def test_send_failures_over_a_real_socket(
    setup: Callable[[FakeNusaSms], None],
    expected: type[ProviderError],
    maybe_sent: bool,
    fragment: str,
) -> None:
    fake = new_fake(retry_after="0")
    setup(fake)
    async with serve(fake) as base, clients(make_http_client(timeout=5.0), base) as (wa, _):
        with pytest.raises(expected) as caught:
            await wa.send(OutgoingMessage("wa", "6281234567890", "hi"))
    assert type(caught.value) is expected
    assert caught.value.maybe_sent is maybe_sent
    assert fragment.lower() in caught.value.message.lower()
    assert fake.sent == []


async def test_wa_and_sms_over_a_real_socket() -> None:
    fake = new_fake()
    async with serve(fake) as base, clients(make_http_client(timeout=5.0), base) as (wa, sms):
        sent = await wa.send(OutgoingMessage("wa", "6281234567890", "Halo 😀"))
        fake.set_status(sent.ref, "R")
        report = await wa.status(sent.ref)
        plain_sms = await sms.send_plain("6281234567890", "Kode ✅ a&b")
        credits = await sms.credits()
    assert report.provider_status == "R"
    assert fake.sent[0].message == "Halo 😀"
    assert fake.sms_sent[0].messageid == plain_sms.ref
    assert fake.sms_sent[0].text == "Kode ✅ a&b"
    assert credits.amount >= 0
