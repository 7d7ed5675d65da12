"""One contract, every adapter: the same table of sends and failures against each provider.

Each row builds the adapter the way the bot does (the registry's ``ProviderSpec.build`` with a
``ProviderEnvironment`` on an ``httpx.AsyncClient``) over that vendor's stateful fake, and
runs the same checks: a send, a send to many (one request per recipient, or per chunk of the
declared ``recipients_per_request``), refused credentials, refused input, a 429 with
``Retry-After``, a 5xx, a timeout before and after the provider took the request, a body that
is not JSON, and a status word the bot does not know (kept verbatim, no state change).

courier logs in first (its identity service is served by the same fake): an unaimed planned
failure meets the login, so refused credentials, 429s, timeouts before the request and a body
that is not JSON are tested at the login there, and the 5xx is aimed at the send itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from providers.base import BulkProvider, DeliveryState, OutgoingMessage, Provider, SendResult
from providers.courier.adapter import CourierSettings
from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    ValidationError,
)
from providers.nusasms import NusaSmsSettings
from providers.parrotica.adapter import ParroticaSettings
from providers.ratelimit import AccountLimiters
from providers.registry import REGISTRY, ProviderEnvironment
from tests.fakes.courier import ACCOUNT_A, NUMBER_A1, ORG, PASSWORD, USERNAME, FakeCourier
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER, FakeParrotica

NUSA = "http://nusasms.test"


@dataclass(frozen=True)
class Case:
    """One adapter and how to steer its fake."""

    route: str
    fake: Callable[[], Any]
    credentials: dict[str, str]
    sent: Callable[[Any], int]  # messages the fake holds (recipients, for a bulk API)
    send_path: str  # a substring of the send request's path
    refuse_input: Callable[[Any], None]  # the next send is refused as malformed
    unknown_status: Callable[[Any, str], None]  # the message ``ref`` gets a word nobody knows

    def __str__(self) -> str:
        return self.route


def _parrotica_sent(fake: FakeParrotica) -> int:
    return sum(len(m.numbers) + len(m.contact_ids) for m in fake.messages.values())


CASES = [
    Case(
        "nusasms:wa",
        lambda: FakeNusaSms(retry_after="0"),
        {"api_key": "test-api-key"},
        lambda fake: len(fake.sent),
        "whatsapp/message",
        lambda fake: fake.fail_next(
            422,
            {"detail": [{"loc": ["body", "destination"], "msg": "bad number", "type": "x"}]},
            path_contains="whatsapp/message",
        ),
        lambda fake, ref: fake.set_status(ref, "Z"),
    ),
    Case(
        "nusasms:sms",
        lambda: FakeNusaSms(retry_after="0"),
        {"api_key": "test-api-key", "sms_user": "sms-user", "sms_password": "sms-password"},
        lambda fake: len(fake.sms_sent),
        "sendsms/plain",
        lambda fake: fake.sms_status_next("-6"),
        lambda fake, ref: fake.set_sms_dr(ref, "TELEPORTED"),
    ),
    Case(
        "parrotica:sms",
        FakeParrotica,
        {"api_key": DEFAULT_KEY, "user_id": DEFAULT_USER},
        _parrotica_sent,
        "/message/",
        lambda fake: fake.fail_next(400, {"status": "error", "code": 400, "message": "bad"}),
        lambda fake, ref: fake.set_state(int(ref), "teleported"),
    ),
    Case(
        "courier:sms",
        FakeCourier,
        {
            "username": USERNAME,
            "password": PASSWORD,
            "organization_id": ORG,
            "account_id": ACCOUNT_A,
            "number_id": NUMBER_A1,
        },
        lambda fake: len(fake.texts),
        "/v1/texts/",
        lambda fake: fake.fail_next(
            422,
            {"errors": [{"status": 422, "code": "invalid", "detail": "not E.164"}]},
            path_contains="/v1/texts/",
        ),
        lambda fake, ref: fake.set_text_status(ref, "teleported"),
    ),
]


class AfterProcessing:
    """A transport that lets the fake take the next matching request, then loses the answer."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.armed: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self.fake(request)
        if self.armed is not None and self.armed in request.url.path:
            self.armed = None
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


@dataclass
class Rig:
    """An adapter under test with its fake and transport."""

    case: Case
    fake: Any
    transport: AfterProcessing
    adapter: Provider

    async def send(self, recipients: Sequence[str], text: str = "Hello") -> list[SendResult]:
        """Send as the bot's sender does: per request size the adapter declares."""
        route = self.case.route.split(":")[1]
        template = OutgoingMessage(channel=route, to="", text=text)
        size = self.adapter.capabilities.per_request(route)
        if size > 1:
            assert isinstance(self.adapter, BulkProvider)
            results: list[SendResult] = []
            for start in range(0, len(recipients), size):
                results += await self.adapter.send_many(template, recipients[start : start + size])
            return results
        return [
            await self.adapter.send(OutgoingMessage(channel=route, to=to, text=text))
            for to in recipients
        ]

    def send_requests(self) -> int:
        """How many send requests reached the fake."""
        return sum(
            self.case.send_path in r.url.path and r.method == "POST" for r in self.fake.requests
        )


@pytest.fixture(params=CASES, ids=str)
async def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    case: Case = request.param
    fake = case.fake()
    transport = AfterProcessing(fake)
    async with httpx.AsyncClient(transport=httpx.MockTransport(transport)) as http:
        env = ProviderEnvironment(
            http=http,
            limiters=AccountLimiters(),
            nusasms=NusaSmsSettings(
                base_url=f"{NUSA}/nusasms_api/1.0", sms_base_url=f"{NUSA}/api", min_interval=0
            ),
            parrotica=ParroticaSettings(base_url="http://parrotica.test"),
            courier=CourierSettings(
                base_url="http://courier.test/courier", identity_url="http://identity.test"
            ),
        )
        spec = REGISTRY[case.route.split(":")[0]]
        yield Rig(case, fake, transport, spec.build(env, case.credentials))


def numbers(count: int) -> list[str]:
    return [f"62812{i:08d}" for i in range(count)]


async def test_send_ok(rig: Rig) -> None:
    (result,) = await rig.send(numbers(1))
    assert result.state == DeliveryState.ACCEPTED
    assert result.ref
    assert rig.case.sent(rig.fake) == 1


async def test_send_to_many_takes_one_request_per_declared_chunk(rig: Rig) -> None:
    results = await rig.send(numbers(250))
    assert len(results) == 250
    assert all(r.state == DeliveryState.ACCEPTED and r.ref for r in results)
    size = rig.adapter.capabilities.per_request(rig.case.route.split(":")[1])
    assert rig.send_requests() == -(-250 // size)
    assert rig.case.sent(rig.fake) == 250  # each recipient once


async def test_refused_credentials_are_an_auth_error(rig: Rig) -> None:
    rig.fake.fail_next(401, {"message": "Unauthorized"})
    with pytest.raises(AuthError):
        await rig.adapter.verify()


async def test_refused_input_is_a_validation_error_and_sends_nothing(rig: Rig) -> None:
    rig.case.refuse_input(rig.fake)
    with pytest.raises(ValidationError) as refused:
        await rig.send(numbers(1))
    assert not refused.value.maybe_sent
    assert rig.case.sent(rig.fake) == 0


async def test_a_429_is_sent_again_after_its_retry_after_once(rig: Rig) -> None:
    rig.fake.fail_next(
        429,
        {"message": "slow down"},
        path_contains=rig.case.send_path,
        headers={"Retry-After": "0"},
    )
    (result,) = await rig.send(numbers(1))
    assert result.state == DeliveryState.ACCEPTED
    assert rig.case.sent(rig.fake) == 1
    assert rig.send_requests() == 2  # the refused one and its retry


async def test_429s_past_the_retries_are_rate_limited_with_retry_after(rig: Rig) -> None:
    for _ in range(10):
        rig.fake.fail_next(429, {"message": "slow down"}, headers={"Retry-After": "0"})
    with pytest.raises(RateLimited) as limited:
        await rig.send(numbers(1))
    assert limited.value.retry_after == 0
    assert rig.case.sent(rig.fake) == 0


async def test_a_5xx_is_unavailable_and_may_have_been_sent(rig: Rig) -> None:
    rig.fake.fail_next(500, {"message": "boom"}, path_contains=rig.case.send_path)
    with pytest.raises(ProviderUnavailable) as failed:
        await rig.send(numbers(1))
    assert failed.value.maybe_sent


async def test_a_timeout_before_the_request_left_proves_nothing_was_sent(rig: Rig) -> None:
    rig.fake.raise_next(lambda r: httpx.ConnectTimeout("no route", request=r))
    with pytest.raises(ProviderUnavailable) as failed:
        await rig.send(numbers(1))
    assert not failed.value.maybe_sent
    assert rig.case.sent(rig.fake) == 0


async def test_a_timeout_after_the_provider_took_it_is_maybe_sent(rig: Rig) -> None:
    rig.transport.armed = rig.case.send_path
    with pytest.raises(ProviderUnavailable) as failed:
        await rig.send(numbers(1))
    assert failed.value.maybe_sent  # the bot marks it unknown and never resends it
    assert rig.case.sent(rig.fake) == 1


async def test_a_body_that_is_not_json_is_an_unexpected_response(rig: Rig) -> None:
    rig.fake.fail_next(200, "<html>gateway</html>")
    with pytest.raises(UnexpectedResponse):
        await rig.send(numbers(1))


async def test_an_unknown_status_word_is_kept_verbatim_and_moves_nothing(rig: Rig) -> None:
    (result,) = await rig.send(numbers(1))
    rig.case.unknown_status(rig.fake, result.ref)
    channel = rig.case.route.split(":")[1]
    report = await rig.adapter.status(result.ref, channel=channel)
    assert not DeliveryState.ACCEPTED.can_become(report.state)
    assert report.provider_status.lower() in {"z", "teleported"}
