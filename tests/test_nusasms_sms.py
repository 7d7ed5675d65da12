"""The SMS v3 / command client and the channel-routing adapter against the NusaSMS fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from urllib.parse import parse_qsl

import httpx
import pytest

from providers.base import DeliveryState, OutgoingMessage
from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    ValidationError,
)
from providers.nusasms import NusaSmsSettings, pacing_interval
from providers.nusasms_adapter import NusaSms, build_nusasms
from providers.nusasms_sms import NusaSmsSmsClient, SmsCredentials, parse_results
from providers.ratelimit import AccountLimiters, SlotPacer
from tests.fakes.nusasms import FakeNusaSms

SMS_BASE = "http://nusasms.test/api"
SETTINGS = NusaSmsSettings(
    base_url="http://nusasms.test/nusasms_api/1.0",
    sms_base_url=SMS_BASE,
    min_interval=0.05,
    max_rate_limit_retries=2,
)
CREDS = SmsCredentials("sms-user", "sms-password")


@asynccontextmanager
async def sms_client(
    fake: FakeNusaSms, creds: SmsCredentials = CREDS
) -> AsyncIterator[NusaSmsSmsClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield NusaSmsSmsClient(http, credentials=creds, limiter=SlotPacer(0), settings=SETTINGS)


@asynccontextmanager
async def adapter(fake: FakeNusaSms, **creds: str) -> AsyncIterator[NusaSms]:
    values = {"api_key": "test-api-key", "sms_user": "sms-user", "sms_password": "sms-password"}
    values.update(creds)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        settings = NusaSmsSettings(
            base_url=SETTINGS.base_url, sms_base_url=SMS_BASE, min_interval=0.0
        )
        yield build_nusasms(http, values, limiters=AccountLimiters(), settings=settings)


def form_of(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


async def test_plain_sms_is_a_form_post_asking_for_json() -> None:
    fake = FakeNusaSms()
    async with sms_client(fake) as client:
        result = await client.send_plain("6281234567890", "Halo")
    request = fake.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/v3/sendsms/plain"
    assert dict(request.url.params) == {"output": "json"}  # no password in the URL
    assert form_of(request) == {
        "user": "sms-user",
        "password": "sms-password",
        "SMSText": "Halo",
        "GSM": "6281234567890",
    }
    [sms] = fake.sms_sent
    assert result.ref == sms.messageid
    assert result.state is DeliveryState.ACCEPTED
    assert not sms.unicode
    assert not sms.otp


async def test_unicode_is_set_only_when_the_text_is_not_gsm7_and_otp_on_request() -> None:
    fake = FakeNusaSms()
    async with sms_client(fake) as client:
        await client.send_plain("6281234567890", "Kode 1234 ✅", otp=True)
        await client.send_plain("6281234567890", "Kode {1234} €")  # extension chars are GSM-7
    first, second = fake.sms_sent
    assert (first.unicode, first.otp) == (True, True)
    assert (second.unicode, second.otp) == (False, False)
    assert form_of(fake.requests[0])["otp"] == "Y"


async def test_group_send_returns_the_campaign() -> None:
    fake = FakeNusaSms()
    async with sms_client(fake) as client:
        result = await client.send_group("Example", "Rapat jam 9")
    [campaign] = fake.sms_campaigns
    assert form_of(fake.requests[0])["group"] == "Example"
    assert result.ref == campaign.campaign_name
    assert "campaign" in result.detail


XML_OK = (
    '<?xml version="1.0" encoding="UTF-8"?> <results> <result> <status>0</status> '
    "<messageid>175041319203754627</messageid> <destination>6285100803380</destination> "
    "</result> </results>"
)


async def test_an_xml_answer_is_still_understood() -> None:
    fake = FakeNusaSms()
    fake.fail_next(200, XML_OK.encode(), headers={"Content-Type": "text/xml"})
    async with sms_client(fake) as client:
        result = await client.send_plain("6285100803380", "hi")
    assert result.ref == "175041319203754627"


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0"?><results><result><status>-5</status><messageid></messageid>'
        "</result></results>",
        '{ "results": [{ "status": "-5", "messageid": "", "destination": "6285100803380" }] }',
        '{"results": {"status": -5}}',
    ],
)
async def test_vendor_status_codes_are_read_from_xml_and_json(body: str) -> None:
    fake = FakeNusaSms()
    fake.fail_next(200, body)
    async with sms_client(fake) as client:
        with pytest.raises(AuthError, match="status -5 INVALID_USER_OR_PASS"):
            await client.send_plain("6285100803380", "hi")


def test_xml_in_a_declared_legacy_encoding() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><results><result><status>0</status>'
    body += "<note>Café</note></result></results>"
    rows = parse_results(httpx.Response(200, content=body.encode("latin-1")))
    assert rows == [{"status": "0", "note": "Café"}]


def test_parse_results_reads_the_documented_examples() -> None:
    group_xml = (
        '<?xml version="1.0" encoding="UTF-8"?> <results> <result> <status>-55</status> '
        "<campaign_name>Group-Api-Campaign-cf27252-5101</campaign_name> <group>Example</group>"
        " </result> </results>"
    )
    rows = parse_results(httpx.Response(200, text=group_xml))
    assert rows == [
        {"status": "-55", "campaign_name": "Group-Api-Campaign-cf27252-5101", "group": "Example"}
    ]
    rows = parse_results(httpx.Response(200, json={"value": 1500.0, "expiredDate": "2027-01-31"}))
    assert rows == [{"value": "1500", "expiredDate": "2027-01-31"}]


@pytest.mark.parametrize(
    "body",
    [
        "<results><result><status>0</status>",  # truncated
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><results>&a;</results>',
        "Internal error",
        '{"results": "nope"}',
    ],
)
async def test_unreadable_or_hostile_bodies_are_unexpected(body: str) -> None:
    fake = FakeNusaSms()
    fake.fail_next(200, body)
    async with sms_client(fake) as client:
        with pytest.raises(UnexpectedResponse) as caught:
            await client.send_plain("6281234567890", "hi")
    assert caught.value.maybe_sent  # the request may have been processed: never resent


async def test_a_429_is_retried_after_its_delay() -> None:
    fake = FakeNusaSms()
    fake.fail_next(429, {"detail": "Too Many Requests"}, headers={"Retry-After": "0"})
    async with sms_client(fake) as client:
        result = await client.send_plain("6281234567890", "hi")
    assert result.ref == fake.sms_sent[0].messageid
    assert len(fake.requests) == 2


async def test_repeated_429s_give_up_as_rate_limited() -> None:
    fake = FakeNusaSms()
    for _ in range(3):
        fake.fail_next(429, {"detail": "slow down"}, headers={"Retry-After": "0"})
    async with sms_client(fake) as client:
        with pytest.raises(RateLimited):
            await client.send_plain("6281234567890", "hi")
    assert fake.sms_sent == []


@pytest.mark.parametrize(
    ("status", "error", "maybe_sent"),
    [(401, AuthError, False), (422, ValidationError, False), (502, ProviderUnavailable, True)],
)
async def test_http_errors_are_mapped(
    status: int, error: type[Exception], maybe_sent: bool
) -> None:
    fake = FakeNusaSms()
    fake.fail_next(status, {"detail": [{"loc": ["query", "GSM"], "msg": "bad", "type": "x"}]})
    async with sms_client(fake) as client:
        with pytest.raises(error) as caught:
            await client.send_plain("6281234567890", "hi")
    assert getattr(caught.value, "maybe_sent", False) is maybe_sent


async def test_credits_and_their_expiry() -> None:
    fake = FakeNusaSms()
    fake.credit.sms_balance = 4321
    async with sms_client(fake) as client:
        balance = await client.credits()
    assert (balance.name, balance.amount) == ("SMS API credits", 4321)
    request = fake.requests[0]
    assert (request.method, request.url.path) == ("GET", "/api/command")
    assert request.url.params["cmd"] == "CREDITS"
    assert request.url.params["output"] == "json"
    fake.fail_next(200, {"value": "12.5", "expiredDate": "2027-01-31"})
    async with sms_client(fake) as client:
        balance = await client.credits()
    assert (balance.amount, balance.expires) == (12.5, date(2027, 1, 31))


async def test_wrong_sms_login_is_an_auth_error() -> None:
    fake = FakeNusaSms()
    async with sms_client(fake, SmsCredentials("sms-user", "wrong")) as client:
        with pytest.raises(AuthError, match="user name or password is invalid"):
            await client.credits()


@pytest.mark.parametrize(
    ("dr", "state"),
    [
        ("SENT", DeliveryState.SENT),
        ("DELIVERED", DeliveryState.DELIVERED),
        ("NOT_DELIVERED", DeliveryState.UNDELIVERED),
        ("FAILED", DeliveryState.FAILED),
        ("EXPIRED", DeliveryState.EXPIRED),
        ("22", DeliveryState.DELIVERED),
        ("something new", DeliveryState.ACCEPTED),
    ],
)
async def test_delivery_reports_map_to_states(dr: str, state: DeliveryState) -> None:
    fake = FakeNusaSms()
    async with sms_client(fake) as client:
        sent = await client.send_plain("6281234567890", "hi")
        fake.set_sms_dr(sent.ref, dr)
        report = await client.delivery_report(sent.ref)
    assert report.state is state
    assert report.provider_status == dr
    assert fake.requests[-1].url.params["ref_no"] == sent.ref


async def test_a_report_for_an_unknown_message_is_a_provider_error() -> None:
    fake = FakeNusaSms()
    async with sms_client(fake) as client:
        with pytest.raises(ProviderUnavailable, match="status -1"):
            await client.delivery_report("123")


# -- the adapter routes by channel -------------------------------------------------------------


async def test_the_adapter_routes_by_channel() -> None:
    fake = FakeNusaSms()
    async with adapter(fake) as nusa:
        wa = await nusa.send(OutgoingMessage("wa", "6281234567890", "wa text"))
        sms = await nusa.send(OutgoingMessage("sms", "6281234567890", "sms", options={"otp": "Y"}))
        group = await nusa.send(OutgoingMessage("smsgroup", "Example", "group text"))
        sms_report = await nusa.status(sms.ref, channel="sms")
        group_report = await nusa.status(group.ref, channel="smsgroup")
        wa_report = await nusa.status(wa.ref, channel="wa")
    assert fake.sent[0].message == "wa text"
    assert fake.sms_sent[0].otp
    assert fake.sms_campaigns[0].group == "Example"
    assert sms_report.state is DeliveryState.SENT
    assert group_report.state is DeliveryState.ACCEPTED  # no report for campaigns; no call
    assert wa_report.state is DeliveryState.ACCEPTED
    assert [r.url.path.rsplit("/", 1)[-1] for r in fake.requests][-2:] == [
        "command",
        wa.ref,
    ]


async def test_the_adapter_needs_the_sms_login_for_sms() -> None:
    fake = FakeNusaSms()
    async with adapter(fake, sms_user="", sms_password="") as nusa:
        with pytest.raises(AuthError, match="needs sms_user and sms_password"):
            await nusa.send(OutgoingMessage("sms", "6281234567890", "hi"))
        assert [b.name for b in await nusa.balances()] == ["WA", "SMS", "HLR", "SIM", "PULSA"]
    assert fake.sms_sent == []


async def test_verify_checks_the_sms_login_too() -> None:
    fake = FakeNusaSms()
    async with adapter(fake) as nusa:
        info = await nusa.verify()
        balances = await nusa.balances()
    assert "SMS API ok" in info.details
    assert balances[-1].name == "SMS API credits"
    async with adapter(fake, sms_password="wrong") as nusa:
        with pytest.raises(AuthError, match="status -5"):
            await nusa.verify()
    async with adapter(fake, sms_password="") as nusa:
        with pytest.raises(ValidationError, match="together"):
            await nusa.verify()


async def test_sms_and_whatsapp_are_paced_per_login() -> None:
    limiters = AccountLimiters()
    values = {"api_key": "k", "sms_user": "u", "sms_password": "p"}
    async with httpx.AsyncClient() as http:
        one = build_nusasms(http, values, limiters=limiters, settings=SETTINGS)
        two = build_nusasms(http, values, limiters=limiters, settings=SETTINGS)
    assert one.sms is not None
    assert two.sms is not None
    # Two chats (two adapters) with the same logins share the same limiters.
    assert one.wa._limiter is two.wa._limiter
    assert one.sms._limiter is two.sms._limiter
    assert one.sms._limiter is not one.wa._limiter
    assert one.wa._limiter.interval == pytest.approx(pacing_interval(0.05))  # type: ignore[attr-defined]
    assert pacing_interval(0.05) > 0.05
    assert pacing_interval(0) == 0
