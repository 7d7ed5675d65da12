"""The courier adapter and its registry entry.

Numbers and /senders, each channel's send and status, multicasts, and the e-mail's two steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from providers.base import (
    STATUS_CALLBACK,
    SUBJECT,
    BalanceKind,
    BulkProvider,
    DeliveryState,
    Multicaster,
    MulticastRequest,
    OutgoingMessage,
    SenderDirectory,
)
from providers.courier import Courier, CourierSettings, build_courier
from providers.courier.facts import MAX_BULK_RECIPIENTS
from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    ValidationError,
)
from providers.ratelimit import AccountLimiters
from providers.registry import (
    REGISTRY,
    UnknownRoute,
    command_route,
    parse_route,
    provider_environment,
    untracked_channels,
)
from tests.fakes.courier import (
    ACCOUNT_A,
    ACCOUNT_B,
    GROUP,
    INDIVIDUAL,
    NUMBER_A1,
    NUMBER_B1,
    NUMBER_B2,
    ORG,
    PASSWORD,
    PHONE_A1,
    PHONE_B1,
    USERNAME,
    FakeCourier,
)

SETTINGS = CourierSettings(
    base_url="http://courier.test/courier", identity_url="http://identity.test/identity"
)
CHOSEN = {"account_id": ACCOUNT_A, "number_id": NUMBER_A1}


@pytest.fixture
def fake() -> FakeCourier:
    return FakeCourier()


@asynccontextmanager
async def adapter(fake: FakeCourier, **creds: str) -> AsyncIterator[Courier]:
    values = {"username": USERNAME, "password": PASSWORD, "organization_id": ORG, **creds}
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        built = build_courier(http, values, settings=SETTINGS, limiters=AccountLimiters())
        yield built
        await built.aclose()


def sms(to: str = "15551234567", text: str = "Hello", **options: str) -> OutgoingMessage:
    return OutgoingMessage(channel="sms", to=to, text=text, options=options)


def email(to: str = "ada@example.org", subject: str = "Results") -> OutgoingMessage:
    return OutgoingMessage("email", to, "All clear.", options={SUBJECT: subject})


def only_account_a(fake: FakeCourier) -> None:
    """Leave the organization one account with one number."""
    del fake.accounts[ACCOUNT_B]


# -- what it declares ----------------------------------------------------------------------------


async def test_capabilities_and_protocols(fake: FakeCourier) -> None:
    caps = Courier.capabilities
    assert caps.senders
    assert caps.multicast
    assert caps.balance == BalanceKind.NONE
    assert caps.per_request("bulk") == MAX_BULK_RECIPIENTS
    assert caps.per_request("sms") == caps.per_request("email") == 1
    async with adapter(fake) as courier:
        assert isinstance(courier, SenderDirectory)
        assert isinstance(courier, BulkProvider)
        assert isinstance(courier, Multicaster)


def test_registry_entry() -> None:
    spec = REGISTRY["courier"]
    assert spec.display == "courier"
    assert [c.name for c in spec.channels] == ["sms", "bulk", "email", "multicast"]
    sms_channel, bulk, mail, multicast = spec.channels
    assert sms_channel.sms
    assert sms_channel.max_text == 1600
    assert sms_channel.reports_delivery
    assert not bulk.phone_recipients
    assert bulk.recipient_kinds == ("individual", "group")
    assert bulk.read_recipient is not None
    assert bulk.read_recipient(INDIVIDUAL).startswith("ind")
    assert bulk.recipient_noun == "individual or group ids"
    assert mail.subject
    assert not mail.phone_recipients
    assert mail.recipient_noun == "e-mail addresses"
    assert multicast.command == "multicast"
    assert not multicast.phone_recipients
    assert {("courier", "bulk"), ("courier", "email"), ("courier", "multicast")} <= (
        untracked_channels()
    )
    assert [f.key for f in spec.credentials] == [
        "username",
        "password",
        "organization_id",
        "account_id",
        "number_id",
    ]
    assert [f.key for f in spec.credentials if f.secret] == ["password"]
    assert [f.key for f in spec.credentials if not f.required] == ["account_id", "number_id"]
    assert spec.check_key == "password"
    assert str(parse_route("courier")) == "courier:sms"
    assert str(parse_route("courier:email")) == "courier:email"
    with pytest.raises(UnknownRoute, match="/multicast"):
        parse_route("courier:multicast")
    assert [str(r) for r in command_route("multicast")] == ["courier:multicast"]


async def test_the_environment_reads_the_courier_settings() -> None:
    async with httpx.AsyncClient() as http:
        env = provider_environment(
            http,
            {"courier_base_url": "http://c.test/courier", "courier_identity_url": "http://i.test"},
        )
        defaults = provider_environment(http, {})
    assert (env.courier.base_url, env.courier.identity_url) == (
        "http://c.test/courier",
        "http://i.test",
    )
    assert defaults.courier.base_url == "https://api.carium.com/courier"
    assert defaults.courier.identity_url == "https://api.carium.com/identity"
    assert defaults.courier.min_interval == 0


# -- verify and numbers ---------------------------------------------------------------------------


async def test_verify_with_a_chosen_number_names_it(fake: FakeCourier) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        info = await courier.verify()
    assert info.account == f"{USERNAME} @ Sunrise Care"
    assert info.details == f"organization Sunrise Care; texts from {PHONE_A1}"


async def test_verify_without_a_choice_says_to_pick_one(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        info = await courier.verify()
    assert "pick the number to send from with /senders courier" in info.details


async def test_a_chosen_number_that_does_not_exist_is_refused(fake: FakeCourier) -> None:
    async with adapter(fake, account_id=ACCOUNT_A, number_id=NUMBER_B1) as courier:
        with pytest.raises(ValidationError, match=f"no number {NUMBER_B1}"):
            await courier.verify()
    async with adapter(fake, number_id="not-a-uuid") as courier:
        with pytest.raises(ValidationError, match="number id"):
            await courier.verify()


async def test_a_missing_organization_and_a_wrong_password_have_their_own_texts(
    fake: FakeCourier,
) -> None:
    async with adapter(fake, organization_id="deadbeef-0000-4000-8000-000000000000") as courier:
        with pytest.raises(AuthError, match=r"no organization deadbeef-.* visible to this user"):
            await courier.verify()
    async with adapter(fake, password="wrong") as courier:
        with pytest.raises(AuthError, match="refused the user name or password"):
            await courier.verify()


async def test_senders_are_every_number_with_what_picking_it_stores(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        senders = await courier.senders()
        current = await courier.sender_id()
    assert [(s.value, dict(s.stores), s.usable) for s in senders] == [
        (PHONE_A1, {"account_id": ACCOUNT_A, "number_id": NUMBER_A1}, True),
        (PHONE_B1, {"account_id": ACCOUNT_B, "number_id": NUMBER_B1}, True),
        ("+15550100003", {"account_id": ACCOUNT_B, "number_id": NUMBER_B2}, False),
    ]
    assert senders[2].status == "no sms, voice"
    assert current == ""  # two numbers can text and none is chosen


async def test_the_chosen_number_is_the_sender(fake: FakeCourier) -> None:
    async with adapter(fake, account_id=ACCOUNT_B, number_id=NUMBER_B1) as courier:
        assert await courier.sender_id() == PHONE_B1


async def test_a_chosen_number_gone_at_courier_can_be_picked_again(fake: FakeCourier) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        del fake.numbers[NUMBER_A1]
        assert await courier.sender_id() == ""
        assert len(await courier.senders()) == 2
        with pytest.raises(ValidationError, match=f"no number {NUMBER_A1}"):
            await courier.verify()


async def test_the_only_number_is_used_without_a_choice(fake: FakeCourier) -> None:
    only_account_a(fake)
    async with adapter(fake) as courier:
        assert await courier.sender_id() == PHONE_A1
        result = await courier.send(sms())
    assert fake.texts[result.ref].attributes["number-id"] == NUMBER_A1


async def test_a_chosen_account_with_one_number_is_enough(fake: FakeCourier) -> None:
    async with adapter(fake, account_id=ACCOUNT_A) as courier:
        await courier.send(sms())
    (text,) = fake.texts.values()
    assert text.attributes["account-id"] == ACCOUNT_A


async def test_a_text_with_several_numbers_and_none_chosen_is_refused(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        with pytest.raises(ValidationError, match="pick the number to send from with /senders"):
            await courier.send(sms())
    assert not fake.texts


async def test_no_number_that_can_text_is_said_so(fake: FakeCourier) -> None:
    fake.numbers.clear()
    async with adapter(fake) as courier:
        assert "no number that can send texts" in (await courier.verify()).details
        with pytest.raises(ValidationError, match="no number that can send texts"):
            await courier.send(sms())


# -- sms ----------------------------------------------------------------------------------------


async def test_a_text_goes_out_in_e164_with_its_callback(fake: FakeCourier) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        result = await courier.send(
            sms("15551234567", **{STATUS_CALLBACK: "https://bot.example/cb/courier/status/x"})
        )
    text = fake.texts[result.ref]
    assert text.attributes["target"] == "+15551234567"
    assert text.attributes["callback-status-url"] == "https://bot.example/cb/courier/status/x"
    assert (result.state, result.provider_status) == (DeliveryState.ACCEPTED, "accepted")
    # Both ids chosen: no look-up of accounts or numbers before the send.
    assert not fake.requests_to("text-account")


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("queued", DeliveryState.ACCEPTED),
        ("sent", DeliveryState.SENT),
        ("delivered", DeliveryState.DELIVERED),
        ("read", DeliveryState.READ),
        ("undelivered", DeliveryState.UNDELIVERED),
        ("failed", DeliveryState.FAILED),
        ("canceled", DeliveryState.ABORTED),
    ],
)
async def test_a_text_status_is_polled(fake: FakeCourier, word: str, state: DeliveryState) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        result = await courier.send(sms())
        fake.set_text_status(result.ref, word, error="30003" if state.is_failure else None)
        report = await courier.status(result.ref, channel="sms")
    assert (report.state, report.provider_status) == (state, word)
    if state.is_failure:
        assert report.detail == "30003"


async def test_an_unknown_text_status_is_kept_and_moves_nothing(fake: FakeCourier) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        result = await courier.send(sms())
        fake.set_text_status(result.ref, "partially_delivered")
        report = await courier.status(result.ref, channel="sms")
    assert report.provider_status == "partially_delivered"
    assert not DeliveryState.ACCEPTED.can_become(report.state)
    assert "does not know" in report.detail


# -- bulk -----------------------------------------------------------------------------------------


async def test_a_bulk_send_is_one_request_and_one_ref_for_all(fake: FakeCourier) -> None:
    recipients = [f"individual:{INDIVIDUAL}", f"group:{GROUP}", INDIVIDUAL.upper()]
    async with adapter(fake) as courier:
        results = await courier.send_many(OutgoingMessage("bulk", "", "Closed Friday"), recipients)
        report = await courier.status(results[0].ref, channel="bulk")
    assert len(fake.requests_to("/v1/messaging-bulk-messages/", "POST")) == 1
    (bulk,) = fake.bulk.values()
    assert bulk.attributes["individual-ids"] == [INDIVIDUAL, INDIVIDUAL]
    assert bulk.attributes["individual-group-ids"] == [GROUP]
    assert {r.ref for r in results} == {bulk.id}
    assert len(results) == 3
    assert (report.state, report.provider_status) == (DeliveryState.SENT, "posted")


async def test_a_bulk_recipient_that_is_not_an_id_is_refused(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        with pytest.raises(ValidationError, match="individual:<id> or group:<id>"):
            await courier.send_many(OutgoingMessage("bulk", "", "x"), ["contact:12"])
    assert not fake.requests


async def test_a_draft_bulk_message_reads_as_accepted(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        (result,) = await courier.send_many(OutgoingMessage("bulk", "", "x"), [INDIVIDUAL])
        fake.bulk[result.ref].attributes.update({"draft": True, "posted-time": None})
        report = await courier.status(result.ref, channel="bulk")
    assert (report.state, report.provider_status) == (DeliveryState.ACCEPTED, "draft")


# -- e-mail ---------------------------------------------------------------------------------------


async def test_an_email_is_a_draft_then_sent(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        result = await courier.send(email("Ada@Example.ORG"))
        report = await courier.status(result.ref, channel="email")
    stored = fake.emails[result.ref]
    assert stored.attributes["to"] == ["Ada@example.org"]
    assert stored.attributes["status"] == "sent"
    assert (result.state, result.provider_status) == (DeliveryState.SENT, "sent")
    assert (report.state, report.provider_status) == (DeliveryState.SENT, "sent")
    assert "no look-up" in report.detail


async def test_an_email_status_without_memory_moves_nothing(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        report = await courier.status("c0c0c0c0-0000-4000-8000-000000000999", channel="email")
    assert report.state == DeliveryState.ACCEPTED
    assert not DeliveryState.SENT.can_become(report.state)
    assert not fake.requests  # nothing to ask


async def test_an_email_refused_at_the_send_step_leaves_a_known_draft(fake: FakeCourier) -> None:
    fake.fail_next(422, {"errors": [{"detail": "mailbox quota exceeded"}]}, path_contains="/send/")
    async with adapter(fake) as courier:
        with pytest.raises(ValidationError) as refused:
            await courier.send(email())
    (draft,) = fake.emails.values()
    assert draft.attributes["status"] == "draft"
    assert f"draft {draft.id}" in refused.value.message
    assert "did NOT send it" in refused.value.message
    assert "mailbox quota exceeded" in refused.value.message
    assert not refused.value.maybe_sent


async def test_an_email_whose_send_answer_is_lost_may_have_gone(fake: FakeCourier) -> None:
    fake.raise_next(
        lambda r: httpx.ReadTimeout("slow", request=r), after=True, path_contains="/send/"
    )
    async with adapter(fake) as courier:
        with pytest.raises(ProviderUnavailable) as lost:
            await courier.send(email())
    (sent,) = fake.emails.values()
    assert lost.value.maybe_sent
    assert f"draft {sent.id}" in lost.value.message
    assert "may have gone out" in lost.value.message


async def test_an_email_send_step_rate_limited_keeps_its_retry_after(fake: FakeCourier) -> None:
    for _ in range(4):
        fake.fail_next(429, path_contains="/send/", headers={"Retry-After": "0"})
    async with adapter(fake) as courier:
        with pytest.raises(RateLimited) as limited:
            await courier.send(email())
    assert "did NOT send it" in limited.value.message
    assert limited.value.retry_after == 0
    assert not limited.value.maybe_sent


async def test_an_email_failing_at_the_draft_creates_nothing(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        with pytest.raises(ValidationError, match="subject"):
            await courier.send(email(subject=" "))
        with pytest.raises(ValidationError, match="not an e-mail address"):
            await courier.send(email(to="ada@"))
        fake.fail_next(500, path_contains="/v1/user-emails/")
        with pytest.raises(ProviderUnavailable) as failed:
            await courier.send(email())
    assert "draft" not in failed.value.message
    assert not fake.emails


# -- multicast ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "value", "filter_type", "filter_value"),
    [
        ("", None, "all-participants", {}),
        ("all-participants", None, "all-participants", {}),
        ("individual-group", GROUP, "individual-group", {"individual-group-id": GROUP}),
        ("tag", "diabetes", "tag", {"value": "diabetes"}),
        ("custom", '{"tags": ["a", "b"]}', "custom", {"tags": ["a", "b"]}),
    ],
)
async def test_a_multicast_body(
    fake: FakeCourier,
    audience: str,
    value: str | None,
    filter_type: str,
    filter_value: dict[str, object],
) -> None:
    async with adapter(fake) as courier:
        result = await courier.multicast(
            MulticastRequest("flu-shot", audience, value, {"clinic": "North"})
        )
    attributes = fake.json_body()["data"]["attributes"]
    assert attributes == {
        "template-id": "flu-shot",
        "filter-type": filter_type,
        "filter-value": filter_value,
        "organization-id": ORG,
        "data": {"clinic": "North"},
    }
    assert (result.state, result.provider_status) == (DeliveryState.ACCEPTED, "queued")


async def test_a_multicast_value_that_is_broken_json_is_refused(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        with pytest.raises(ValidationError, match="JSON object"):
            await courier.multicast(MulticastRequest("t", "custom", "{broken"))
    assert not fake.requests


async def test_a_multicast_status_known_and_unknown(fake: FakeCourier) -> None:
    async with adapter(fake) as courier:
        result = await courier.multicast(MulticastRequest("t", "all-participants"))
        fake.set_multicast_status(result.ref, "completed")
        done = await courier.status(result.ref, channel="multicast")
        fake.set_multicast_status(result.ref, "Throttled-By-Carrier")
        odd = await courier.status(result.ref, channel="multicast")
    assert (done.state, done.provider_status) == (DeliveryState.SENT, "completed")
    assert (odd.state, odd.provider_status) == (DeliveryState.ACCEPTED, "Throttled-By-Carrier")


async def test_an_unknown_template_is_courier_refusal_with_detail(fake: FakeCourier) -> None:
    fake.templates = {"flu-shot"}
    async with adapter(fake) as courier:
        with pytest.raises(ValidationError, match="template-id: Unknown template nope"):
            await courier.multicast(MulticastRequest("nope", "all-participants"))


# -- the rest ------------------------------------------------------------------------------------


async def test_channels_it_does_not_send_on(fake: FakeCourier) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        with pytest.raises(ValidationError, match="/multicast"):
            await courier.send(OutgoingMessage("multicast", "x", "y"))
        with pytest.raises(ValidationError, match="one recipient a request"):
            await courier.send_many(sms(), ["15551234567", "15557654321"])
        with pytest.raises(ValidationError, match="no channel"):
            await courier.status(NUMBER_A1, channel="fax")
        assert await courier.balances() == []
    assert not fake.requests


async def test_closing_forgets_the_token(fake: FakeCourier) -> None:
    async with adapter(fake, **CHOSEN) as courier:
        await courier.verify()
        await courier.aclose()
        await courier.verify()
    assert fake.logins == 2
