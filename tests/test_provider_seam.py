"""The adapters' direct path (``Caller`` → ``ProviderClient.send_direct``) against httpx's own.

Adapters build their requests themselves and hand them to the transport. These tests hold that
path to what ``httpx.AsyncClient.request`` would have sent (method, URL, every header, body),
and run the standard failure table through it, in memory and over a real socket.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from aiolimiter import AsyncLimiter

from providers.base import Media, OutgoingMessage
from providers.errors import ProviderError
from providers.http import ProviderClient, make_http_client
from providers.nusasms import NusaSmsClient, NusaSmsSettings
from providers.nusasms_sms import NusaSmsSmsClient, SmsCredentials
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
        wa = NusaSmsClient(
            http, api_key=KEY, limiter=AsyncLimiter(1000, 1), settings=settings(base)
        )
        sms = NusaSmsSmsClient(
            http, credentials=CREDS, limiter=AsyncLimiter(1000, 1), settings=settings(base)
        )
        yield wa, sms


def new_fake(**kwargs: str) -> FakeNusaSms:
    return FakeNusaSms(api_key=KEY, sms_user=CREDS.user, sms_password=CREDS.password, **kwargs)


def plain(fake: FakeNusaSms) -> httpx.AsyncClient:
    """The client httpx's own path runs through: what the direct path must match."""
    return httpx.AsyncClient(
        transport=httpx.MockTransport(fake),
        timeout=httpx.Timeout(20.0, connect=5.0),
        headers={"User-Agent": "chatops-bridge/0.1"},
    )


def direct(fake: FakeNusaSms) -> ProviderClient:
    return make_http_client(transport=httpx.MockTransport(fake))


def seen(fake: FakeNusaSms) -> list[tuple[str, str, list[tuple[str, str]], bytes]]:
    """Every request the fake got, its own random refs blanked out."""
    refs = [*fake.messages, *fake.sms_messages]
    result = []
    for request in fake.requests:
        url = str(request.url)
        for ref in refs:
            url = url.replace(ref, "REF")
        headers = sorted((k.lower(), v) for k, v in request.headers.multi_items())
        result.append((request.method, url, headers, request.content))
    return result


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
async def test_the_direct_path_sends_what_httpx_would(name: str, call: Call) -> None:
    fakes = new_fake(), new_fake()
    for http in (plain(fakes[0]), direct(fakes[1])):
        async with clients(http) as (wa, sms):
            await call(wa, sms)
    by_httpx, by_us = (seen(fake) for fake in fakes)
    assert by_us == by_httpx
    assert by_us, name


async def test_the_direct_path_carries_the_documented_headers() -> None:
    fake = new_fake()
    async with clients(direct(fake)) as (wa, _):
        await wa.send(OutgoingMessage("wa", "6281234567890", "hi"))
    [request] = fake.requests
    assert request.headers["APIKey"] == KEY
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "chatops-bridge/0.1"
    assert request.headers["Content-Length"] == str(len(request.content))
    assert ("APIKey", KEY) in [(k.decode(), v.decode()) for k, v in request.headers.raw]
    assert request.extensions["timeout"] == httpx.Timeout(20.0, connect=5.0).as_dict()


async def test_a_status_url_is_quoted_and_a_media_body_is_base64() -> None:
    fake = new_fake()
    async with clients(direct(fake)) as (wa, _):
        with pytest.raises(ProviderError):
            await wa.status("a/b?c")
        await wa.send(OutgoingMessage("wa", "6281234567890", "", Media("x.pdf", b"\x00\x01")))
    assert fake.requests[0].url.raw_path.endswith(b"/whatsapp/status/a%2Fb%3Fc")
    assert fake.json_body(1)["media_base64"] == base64.b64encode(b"\x00\x01").decode()


@pytest.mark.parametrize(("setup", "expected", "maybe_sent", "fragment"), FAILURES)
async def test_send_failures_on_the_direct_path(
    setup: Callable[[FakeNusaSms], None],
    expected: type[ProviderError],
    maybe_sent: bool,
    fragment: str,
) -> None:
    fake = new_fake(retry_after="0")
    setup(fake)
    async with clients(direct(fake)) as (wa, _):
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
