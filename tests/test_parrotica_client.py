"""ParroticaClient and its vendor facts, against the stateful fake through MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from providers.base import DeliveryState
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
from providers.parrotica import (
    DEFAULT_PATHS,
    MESSAGE_STATES,
    ApiKeyAuth,
    IdSource,
    ParroticaClient,
    read_state,
    resolve_paths,
)
from providers.parrotica.facts import (
    envelope_failed,
    parse_id,
    read_id,
    recipient_batches,
    wire_ids,
)
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER, FakeParrotica
from tests.secret_watch import secret

BASE_URL = "http://parrotica.test"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeParrotica:
    return FakeParrotica(now=clock)


@asynccontextmanager
async def connect(
    fake: FakeParrotica,
    clock: Clock,
    *,
    api_key: str = DEFAULT_KEY,
    user_id: str = DEFAULT_USER,
    paths: Mapping[str, str] | None = None,
    base_url: str = BASE_URL,
) -> AsyncIterator[ParroticaClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        # One answer per call: the 429 mapping itself (retries: tests/test_provider_contract.py).
        yield ParroticaClient(
            http,
            api_key=api_key,
            user_id=user_id,
            base_url=base_url,
            paths=paths,
            clock=clock,
            rate_limit_retries=0,
        )


# -- the path table ----------------------------------------------------------------------------


def test_default_paths_are_the_documented_table() -> None:
    assert dict(DEFAULT_PATHS) == {
        "activity": "/api/v1/activity/{userId}",
        "contacts": "/api/v1/contact/{userId}",
        "contact": "/api/v1/contact/{userId}/{id}",
        "contact_summary": "/api/v1/contact/{userId}/summary",
        "groups": "/api/v1/group/{userId}",
        "messages": "/api/v1/message/{userId}",
        "message": "/api/v1/message/{userId}/{id}",
        "reschedule": "/api/v1/message/{userId}/reschedule",
        "senderids": "/api/v1/senderid/{userId}",
        "transactions": "/api/v1/transaction/{userId}",
    }
    assert resolve_paths(None) == DEFAULT_PATHS
    assert resolve_paths("  ") == DEFAULT_PATHS


def test_override_from_json_text_replaces_only_its_key() -> None:
    table = resolve_paths('{"messages": "/api/v2/message/{userId}"}')
    assert table["messages"] == "/api/v2/message/{userId}"
    assert table["message"] == DEFAULT_PATHS["message"]


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"mesages": "/x/{userId}"}, "'mesages'"),
        ({"groups": "/api/v1/group"}, "'groups'"),
        ({"message": "/api/v1/message/{userId}"}, "{id}"),
        ({"groups": "/api/v1/group/{userId}/{id}"}, "may not contain {id}"),
        ({"groups": "api/v1/group/{userId}"}, "starting with '/'"),
        ({"groups": 7}, "'groups'"),
        ({"groups": "/g/{userId"}, "'groups'"),
        ("not json", "not valid JSON"),
        ('["messages"]', "JSON object"),
    ],
)
def test_bad_overrides_are_a_value_error_naming_the_problem(
    overrides: Mapping[str, object] | str, names: str
) -> None:
    with pytest.raises(ValueError, match="PARROTICA_PATHS") as caught:
        resolve_paths(overrides)
    assert names in str(caught.value)


async def test_client_refuses_bad_paths_at_construction(fake: FakeParrotica, clock: Clock) -> None:
    with pytest.raises(ValueError, match="'contact'"):
        async with connect(fake, clock, paths={"contact": "/c/{userId}"}):
            pass  # pragma: no cover


async def test_overridden_paths_are_used(clock: Clock) -> None:
    paths = {"messages": "/api/v2/msg/{userId}", "senderids": "/api/v2/senders/{userId}"}
    fake = FakeParrotica(now=clock, paths=paths)
    async with connect(fake, clock, paths=paths) as client:
        senders = await client.sender_ids()
        outcome = await client.send("hi", sender_id="ABC123", numbers=["+15551234567"])
    assert [s.sender_id for s in senders] == ["ABC123", "XYZ789"]
    assert outcome.message_id == 1001
    assert [r.url.path for r in fake.requests] == [
        f"/api/v2/senders/{DEFAULT_USER}",
        f"/api/v2/msg/{DEFAULT_USER}",
    ]


async def test_base_url_prefix_is_kept_and_user_id_is_quoted(clock: Clock) -> None:
    fake = FakeParrotica(now=clock, user_id="team a/b")
    async with connect(fake, clock, user_id="team a/b", base_url="http://gw.test/parrotica/") as c:
        await c.groups()
    assert fake.requests[0].url.raw_path == b"/parrotica/api/v1/group/team%20a%2Fb"


# -- the envelope rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "body", "failed"),
    [
        (200, {"status": "success", "code": 200, "message": "ok"}, False),
        (201, {"status": "status", "code": 0.8008281904610115, "message": "message"}, False),
        (200, {"message": "no status at all"}, False),
        (200, {"status": "Error", "code": 200}, True),
        (200, {"status": "FAIL"}, True),
        (200, {"status": "failed"}, True),
        (200, {"status": "false"}, True),
        (200, {"status": False}, True),
        (200, {"status": "success", "code": 404}, True),
        (200, {"status": "success", "code": "500"}, True),
        (200, {"status": "success", "code": 399.9}, False),
        (500, {"status": "success", "code": 200}, True),
        (302, {}, True),
    ],
)
def test_envelope_rule(http_status: int, body: dict[str, object], failed: bool) -> None:
    assert envelope_failed(http_status, body) is failed


# -- the status table --------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "expected"), [(w, s) for w, (s, _) in MESSAGE_STATES.items()])
def test_status_table_row(word: str, expected: DeliveryState) -> None:
    reading = read_state(word)
    assert reading.state == expected
    assert reading.provider_status == word
    assert reading.known
    assert reading.detail


def test_status_words_are_matched_without_case_or_hyphens() -> None:
    assert read_state(" In-Progress ").state == DeliveryState.ACCEPTED
    assert read_state("DELIVERED").state == DeliveryState.DELIVERED
    assert read_state("DELIVERED").provider_status == "DELIVERED"


def test_status_table_covers_the_final_states() -> None:
    states = {state for state, _ in MESSAGE_STATES.values()}
    assert {
        DeliveryState.ACCEPTED,
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.UNDELIVERED,
        DeliveryState.EXPIRED,
        DeliveryState.ABORTED,
    } <= states


def test_unknown_word_is_kept_verbatim_and_changes_nothing() -> None:
    reading = read_state("Parked-By-Carrier", "active")
    assert reading.state is None
    assert not reading.known
    assert reading.provider_status == "Parked-By-Carrier"
    assert "Parked-By-Carrier" in reading.detail


def test_status_word_is_asked_when_state_is_unknown_or_empty() -> None:
    assert read_state("weird", "delivered").state == DeliveryState.DELIVERED
    assert read_state("", "failed").provider_status == "failed"
    assert read_state("", "").state is None


# -- ids and recipients per request ------------------------------------------------------------


def test_ids_from_the_server_accept_integral_floats_only() -> None:
    assert read_id(1001) == 1001
    assert read_id(1001.0) == 1001
    assert read_id("1001") == 1001
    for bad in (6.027456183070403, True, None, "abc"):
        with pytest.raises(UnexpectedResponse):
            read_id(bad)


def test_ids_from_the_caller_must_be_positive_ints() -> None:
    assert wire_ids([1, 2], what="contact ids") == [1, 2]
    for bad in (12.5, True, 0, -3, "7"):
        with pytest.raises(ValidationError, match="contact ids"):
            wire_ids([bad], what="contact ids")  # type: ignore[list-item]
    assert parse_id(" 42 ") == 42
    with pytest.raises(ValidationError, match="not a Parrotica"):
        parse_id("4x")


def test_chunk_size_is_a_class_attribute_of_100() -> None:
    assert ParroticaClient.MAX_RECIPIENTS_PER_REQUEST == 100
    numbers = [f"+1555{i:07d}" for i in range(1000)]
    batches = ParroticaClient.batches(numbers)
    assert len(batches) == 10
    assert all(len(b) <= 100 for b in batches)
    assert [n for b in batches for n in b.numbers] == numbers


def test_batches_keep_every_kind_of_recipient() -> None:
    batches = recipient_batches(["+15550000009"] * 3, [1, 2], [4004], size=4)
    assert [len(b) for b in batches] == [4, 2]
    assert batches[0].numbers == ("+15550000009",) * 3
    assert batches[0].contact_ids == (1,)
    assert batches[1].contact_ids == (2,)
    assert batches[1].group_ids == (4004,)


async def test_send_refuses_more_than_a_chunk_before_any_request(
    fake: FakeParrotica, clock: Clock
) -> None:
    numbers = [f"+1555{i:07d}" for i in range(101)]
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="at most 100"):
            await client.send("hi", sender_id="ABC123", numbers=numbers)
    assert fake.requests == []


# -- auth and account --------------------------------------------------------------------------


async def test_verify_names_the_account_and_sends_the_key_as_a_header(
    fake: FakeParrotica, clock: Clock
) -> None:
    async with connect(fake, clock) as client:
        info = await client.verify()
    assert info.account == f"user {DEFAULT_USER}"
    assert info.details == "sender IDs: ABC123, XYZ789"
    request = fake.requests[0]
    assert request.headers["x-api-key"] == DEFAULT_KEY
    assert DEFAULT_KEY not in str(request.url)


async def test_wrong_key_is_auth_error_without_the_key(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock, api_key=secret("wrong-secret")) as client:
        with pytest.raises(AuthError) as caught:
            await client.verify()
    assert caught.value.code == "401"
    assert "Invalid API key" in caught.value.message
    assert "wrong-secret" not in caught.value.message


async def test_wrong_user_id_is_auth_error_403(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock, user_id="someone-else") as client:
        with pytest.raises(AuthError) as caught:
            await client.contact_summary()
    assert caught.value.code == "403"


@pytest.mark.parametrize(
    ("api_key", "user_id", "field"), [("k", " ", "user_id"), ("", "u", "api")]
)
async def test_missing_credentials_fail_at_construction(
    api_key: str, user_id: str, field: str
) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(AuthError, match=field):
            ParroticaClient(http, api_key=api_key, user_id=user_id, base_url=BASE_URL)


def test_auth_repr_hides_the_key() -> None:
    assert DEFAULT_KEY not in repr(ApiKeyAuth(DEFAULT_KEY))


async def test_provider_text_never_echoes_the_key(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(400, {"status": "error", "message": f"key {DEFAULT_KEY} is suspended"})
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError) as caught:
            await client.groups()
    assert DEFAULT_KEY not in caught.value.message
    assert "***" in caught.value.message


async def test_sender_ids_transactions_and_activity(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        await client.send("hi", sender_id="ABC123", group_ids=[4004])
        senders = await client.sender_ids()
        transactions = await client.transactions()
        activity = await client.activity()
    assert [(s.id, s.sender_id, s.status) for s in senders] == [
        (1, "ABC123", "approved"),
        (2, "XYZ789", "pending"),
    ]
    assert [(t.action, t.amount, t.unit) for t in transactions] == [
        ("credit", 500.0, "sms"),
        ("debit", 2.0, "sms"),
    ]
    assert transactions[1].created_at == START
    assert activity[-1].action == "message.create"
    assert "1001" in activity[-1].description


# -- send --------------------------------------------------------------------------------------


async def test_send_now_returns_the_id_from_the_answer(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        outcome = await client.send(
            "Halo", sender_id="ABC123", numbers=["+15551234567"], contact_ids=[1], group_ids=[4004]
        )
    assert outcome.message_id == 1001
    assert outcome.found_by is IdSource.RESPONSE
    assert outcome.state == DeliveryState.ACCEPTED
    assert outcome.to_send_result().ref == "1001"
    body = fake.json_body()
    assert body == {
        "content": "Halo",
        "senderId": "ABC123",
        "numbers": ["+15551234567"],
        "contactids": [1],
        "groupids": [4004],
    }
    assert fake.messages[1001].state == "pending"


async def test_ids_are_integers_on_the_wire(fake: FakeParrotica, clock: Clock) -> None:
    fake.ids_as_floats = True  # the server writes 1001.0; the client still sends 1001
    async with connect(fake, clock) as client:
        outcome = await client.send("x", sender_id="ABC123", contact_ids=[1], group_ids=[4004])
        assert outcome.message_id == 1001
        message = await client.get_message(outcome.message_id)
    raw = fake.requests[0].content.decode()
    assert '"contactids":[1]' in raw.replace(" ", "")
    assert '"groupids":[4004]' in raw.replace(" ", "")
    assert "1.0" not in raw
    assert fake.requests[1].url.path.endswith("/1001")
    assert message.id == 1001
    assert message.contact_ids == (1,)
    assert message.group_ids == (4004,)


async def test_schedule_sends_a_utc_scheduled_at(fake: FakeParrotica, clock: Clock) -> None:
    when = datetime(2026, 3, 1, 18, 30, tzinfo=UTC) + timedelta(hours=0)
    async with connect(fake, clock) as client:
        outcome = await client.send(
            "later", sender_id="ABC123", numbers=["+15551234567"], scheduled_at=when
        )
    assert fake.json_body()["scheduledAt"] == "2026-03-01T18:30:00Z"
    assert outcome.scheduled_at == when
    assert fake.messages[1001].state == "scheduled"
    assert fake.messages[1001].scheduled_at == when


async def test_past_scheduled_at_is_refused_before_any_request(
    fake: FakeParrotica, clock: Clock
) -> None:
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="in the past"):
            await client.send(
                "x", sender_id="ABC123", numbers=["+15551234567"], scheduled_at=START
            )
        with pytest.raises(ValidationError, match="time zone"):
            await client.send(
                "x",
                sender_id="ABC123",
                numbers=["+15551234567"],
                scheduled_at=datetime(2030, 1, 1, 9, 0),
            )
    assert fake.requests == []


async def test_fake_refuses_a_past_scheduled_at_too(clock: Clock) -> None:
    """The server's 400 (e.g. clocks apart) reaches the chat as a ValidationError."""
    fake = FakeParrotica(now=lambda: START)
    clock.now = START - timedelta(hours=1)  # the client's clock is an hour behind
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="scheduledAt must be in the future"):
            await client.send(
                "x",
                sender_id="ABC123",
                numbers=["+15551234567"],
                scheduled_at=START - timedelta(minutes=30),
            )
    assert fake.messages == {}
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"content": "  "}, "empty"),
        ({"sender_id": ""}, "sender ID"),
        ({"numbers": []}, "no recipients"),
        ({"numbers": ["0812-bad"]}, "international format"),
        ({"numbers": "+15551234567"}, "list"),
        ({"contact_ids": [1.0]}, "contact ids"),
        ({"group_ids": [0]}, "group ids"),
    ],
)
async def test_bad_send_input_is_refused_before_any_request(
    fake: FakeParrotica, clock: Clock, kwargs: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {
        "content": "hi",
        "sender_id": "ABC123",
        "numbers": ["+15551234567"],
    } | kwargs
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match=match):
            await client.send(**args)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_unknown_contact_is_rejected_with_the_providers_words(
    fake: FakeParrotica, clock: Clock
) -> None:
    async with connect(fake, clock) as client:
        with pytest.raises(MessageRejected) as caught:
            await client.send("x", sender_id="ABC123", contact_ids=[99])
    assert caught.value.message == "Parrotica: contact not found: 99 (HTTP 404)."
    assert not caught.value.maybe_sent
    assert fake.messages == {}


async def test_unknown_group_is_rejected(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        with pytest.raises(MessageRejected, match="group not found: 7"):
            await client.send("x", sender_id="ABC123", group_ids=[7])


async def test_unapproved_sender_is_a_validation_error(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="XYZ789 is not approved") as caught:
            await client.send("x", sender_id="XYZ789", numbers=["+15551234567"])
    assert caught.value.code == "400"


async def test_rate_limit_carries_retry_after(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(429, path_contains="/message/", headers={"Retry-After": "7"})
    async with connect(fake, clock) as client:
        with pytest.raises(RateLimited) as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert caught.value.retry_after == 7.0
    assert fake.messages == {}


@pytest.mark.parametrize(("status", "maybe_sent"), [(500, True), (502, True), (503, False)])
async def test_server_errors_on_send(
    fake: FakeParrotica, clock: Clock, status: int, maybe_sent: bool
) -> None:
    fake.fail_next(status, method="POST")
    async with connect(fake, clock) as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert caught.value.maybe_sent is maybe_sent
    assert caught.value.code == str(status)


async def test_garbage_body_on_send_is_unexpected_and_maybe_sent(
    fake: FakeParrotica, clock: Clock
) -> None:
    fake.garbage_next()
    async with connect(fake, clock) as client:
        with pytest.raises(UnexpectedResponse, match="not JSON") as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert caught.value.maybe_sent


async def test_timeout_after_processing_is_maybe_sent(fake: FakeParrotica, clock: Clock) -> None:
    fake.raise_next(lambda r: httpx.ReadTimeout("slow", request=r), after=True)
    async with connect(fake, clock) as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert caught.value.maybe_sent
    assert list(fake.messages) == [1001]  # it was sent: the caller must mark it unknown


async def test_connect_failure_is_not_sent(fake: FakeParrotica, clock: Clock) -> None:
    fake.raise_next(lambda r: httpx.ConnectError("refused", request=r))
    async with connect(fake, clock) as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert not caught.value.maybe_sent
    assert fake.messages == {}


async def test_failed_envelope_in_a_200_is_refused(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(200, {"status": "failed", "code": 0, "message": "Sender blocked"})
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="Sender blocked") as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert not caught.value.maybe_sent


async def test_body_code_decides_the_error_class(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(200, {"status": "error", "code": 401, "message": "Key revoked"})
    fake.fail_next(200, {"status": "error", "code": 429, "message": "Slow down"})
    async with connect(fake, clock) as client:
        with pytest.raises(AuthError, match="Key revoked"):
            await client.groups()
        with pytest.raises(RateLimited):
            await client.groups()


async def test_insufficient_credit(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(402, {"status": "error", "code": 402, "message": "Insufficient balance"})
    async with connect(fake, clock) as client:
        with pytest.raises(InsufficientCredit, match="Insufficient balance"):
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])


# -- send without data.id: finding the message ------------------------------------------------


async def test_id_is_found_in_the_message_list(fake: FakeParrotica, clock: Clock) -> None:
    fake.send_returns_id = False
    fake.add_message("older text", "ABC123")
    async with connect(fake, clock) as client:
        outcome = await client.send("fresh", sender_id="ABC123", numbers=["+15551234567"])
    assert outcome.message_id == 1002
    assert outcome.found_by is IdSource.MESSAGE_LIST
    assert outcome.state == DeliveryState.ACCEPTED
    assert len(fake.requests_to("messages", "POST")) == 1
    assert len(fake.requests_to("messages", "GET")) == 1


async def test_same_text_outside_the_window_does_not_count(
    fake: FakeParrotica, clock: Clock
) -> None:
    fake.send_returns_id = False
    clock.now = START - timedelta(hours=1)
    fake.add_message("same", "ABC123")
    clock.now = START
    async with connect(fake, clock) as client:
        outcome = await client.send("same", sender_id="ABC123", numbers=["+15551234567"])
    assert outcome.message_id == 1002


async def test_ambiguous_match_is_unknown_and_never_resent(
    fake: FakeParrotica, clock: Clock
) -> None:
    fake.send_returns_id = False
    fake.add_message("same", "ABC123")  # sent a moment ago by someone else
    async with connect(fake, clock) as client:
        outcome = await client.send("same", sender_id="ABC123", numbers=["+15551234567"])
    assert outcome.message_id is None
    assert not outcome.id_known
    assert outcome.state == DeliveryState.UNKNOWN
    assert "2 messages" in outcome.detail
    assert outcome.to_send_result().state == DeliveryState.UNKNOWN
    assert len(fake.requests_to("messages", "POST")) == 1


async def test_no_match_is_unknown(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(201, {"status": "success", "code": 201, "message": "queued"}, method="POST")
    async with connect(fake, clock) as client:
        outcome = await client.send("gone", sender_id="ABC123", numbers=["+15551234567"])
    assert outcome.found_by is IdSource.NONE
    assert "no message" in outcome.detail


async def test_lookup_failure_is_unknown_not_an_error(fake: FakeParrotica, clock: Clock) -> None:
    fake.send_returns_id = False
    fake.fail_next(500, method="GET")
    async with connect(fake, clock) as client:
        outcome = await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert outcome.message_id is None
    assert "could not be looked up" in outcome.detail
    assert len(fake.messages) == 1


async def test_repeated_identical_sends_each_find_their_own_id(
    fake: FakeParrotica, clock: Clock
) -> None:
    fake.send_returns_id = False
    async with connect(fake, clock) as client:
        first = await client.send("same", sender_id="ABC123", numbers=["+15551234567"])
        second = await client.send("same", sender_id="ABC123", numbers=["+15557654321"])
    assert (first.message_id, second.message_id) == (1001, 1002)


# -- messages ----------------------------------------------------------------------------------


async def test_get_message_follows_the_fakes_states(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        outcome = await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
        assert outcome.message_id is not None
        first = await client.get_message(outcome.message_id)
        clock.now = START + timedelta(minutes=1)
        fake.set_state(outcome.message_id, "delivered")
        delivered = await client.get_message(outcome.message_id)
        fake.set_state(outcome.message_id, "on-hold-at-carrier")
        odd = await client.get_message(outcome.message_id)
    assert first.reading.state == DeliveryState.ACCEPTED
    assert first.content == "x"
    assert first.sender_id == "ABC123"
    assert first.created_at == START
    report = delivered.status_report()
    assert report is not None
    assert (report.ref, report.state, report.provider_status) == (
        "1001",
        DeliveryState.DELIVERED,
        "delivered",
    )
    assert report.at == START + timedelta(minutes=1)
    assert odd.status_report() is None
    assert odd.reading.provider_status == "on-hold-at-carrier"


@pytest.mark.parametrize(
    ("word", "state"),
    [("sent", DeliveryState.SENT), ("failed", DeliveryState.FAILED)],
)
async def test_sent_and_failed_states(
    fake: FakeParrotica, clock: Clock, word: str, state: DeliveryState
) -> None:
    mid = fake.add_message("x", "ABC123", state=word)
    async with connect(fake, clock) as client:
        message = await client.get_message(mid)
    assert message.reading.state == state


async def test_unknown_message_is_a_validation_error(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="message not found") as caught:
            await client.get_message(4242)
    assert caught.value.code == "404"


async def test_list_messages_pages(fake: FakeParrotica, clock: Clock) -> None:
    for text in ("a", "b", "c"):
        fake.add_message(text, "ABC123")
    async with connect(fake, clock) as client:
        first = await client.list_messages(page=1, limit=2)
        second = await client.list_messages(page=2, limit=2)
        with pytest.raises(ValidationError):
            await client.list_messages(page=0)
    assert [m.content for m in first.items] == ["c", "b"]
    assert (first.total, first.has_more) == (3, True)
    assert [m.content for m in second.items] == ["a"]
    assert not second.has_more
    assert fake.requests[0].url.params["limit"] == "2"
    assert len(fake.requests) == 2


async def test_reschedule_moves_a_scheduled_message(fake: FakeParrotica, clock: Clock) -> None:
    first = START + timedelta(hours=2)
    later = START + timedelta(days=1)
    async with connect(fake, clock) as client:
        outcome = await client.send(
            "x", sender_id="ABC123", numbers=["+15551234567"], scheduled_at=first
        )
        assert outcome.message_id is not None
        ack = await client.reschedule(outcome.message_id, later)
    assert ack.message == "Message rescheduled"
    assert fake.messages[1001].scheduled_at == later
    assert fake.json_body() == {"messageId": 1001, "scheduleDate": "2026-03-02T09:00:00Z"}
    assert b'"messageId":1001' in fake.requests[-1].content.replace(b" ", b"")


async def test_reschedule_refusals(fake: FakeParrotica, clock: Clock) -> None:
    sent = fake.add_message("x", "ABC123", state="sent")
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="in the past"):
            await client.reschedule(sent, START - timedelta(minutes=1))
        assert fake.requests == []
        with pytest.raises(ValidationError, match="message not found"):
            await client.reschedule(999, START + timedelta(hours=1))
        with pytest.raises(ValidationError, match="Only scheduled"):
            await client.reschedule(sent, START + timedelta(hours=1))


# -- address book ------------------------------------------------------------------------------


async def test_contacts_page_and_get(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        page = await client.contacts(page=1, limit=10)
        ada = await client.get_contact(1)
    assert [(c.id, c.full_name, c.number) for c in page.items] == [
        (1, "Ada Lovelace", "+15550000001"),
        (2, "Grace Hopper", "+15550000002"),
    ]
    assert page.total == 2
    assert ada.full_name == "Ada Lovelace"


async def test_add_contact(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        added = await client.add_contact(" Alan Turing ", "+15550000003")
        with pytest.raises(ValidationError, match="already exists"):
            await client.add_contact("Alan again", "+15550000003")
        with pytest.raises(ValidationError, match="international format"):
            await client.add_contact("Bad", "12-34")
        with pytest.raises(ValidationError, match="name"):
            await client.add_contact(" ", "+15550000004")
    assert added is not None
    assert (added.id, added.full_name) == (3, "Alan Turing")
    assert fake.json_body(0) == {"fullName": "Alan Turing", "number": "+15550000003"}
    assert len(fake.requests) == 2


async def test_delete_contacts(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        ack = await client.delete_contacts([1, 2])
    assert ack.message == "2 contact(s) deleted"
    assert fake.contacts == {}
    assert fake.groups[4004].contact_ids == []
    assert fake.requests[0].method == "DELETE"
    assert fake.json_body() == {"ids": [1, 2]}


async def test_delete_one_contact(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        ack = await client.delete_contact(2)
        with pytest.raises(ValidationError, match="contact not found"):
            await client.delete_contact(2)
    assert ack.message == "Contact deleted"
    assert set(fake.contacts) == {1}
    assert fake.requests[0].method == "DELETE"
    assert fake.requests[0].url.path == f"/api/v1/contact/{DEFAULT_USER}/2"


async def test_delete_unknown_contact(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="contact not found: 99"):
            await client.delete_contacts([1, 99])
        with pytest.raises(ValidationError, match="at least one"):
            await client.delete_contacts([])
        with pytest.raises(ValidationError, match="contact not found"):
            await client.get_contact(77)
    assert set(fake.contacts) == {1, 2}


async def test_contact_summary_and_groups(fake: FakeParrotica, clock: Clock) -> None:
    async with connect(fake, clock) as client:
        summary = await client.contact_summary()
        groups = await client.groups()
    assert summary.total_contacts == 2
    assert summary.counts["totalGroups"] == 1
    assert [(g.id, g.name, g.contact_count) for g in groups] == [(4004, "Customers", 2)]


# -- unreadable answers ------------------------------------------------------------------------


async def test_non_json_answer_is_unexpected(fake: FakeParrotica, clock: Clock) -> None:
    fake.garbage_next()
    async with connect(fake, clock) as client:
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            await client.groups()


async def test_html_500_is_unavailable(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(500, "<html>oops</html>")
    async with connect(fake, clock) as client:
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await client.transactions()


async def test_list_without_data_is_unexpected(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(200, {"status": "success", "code": 200, "message": "ok"})
    fake.fail_next(200, {"status": "success", "data": [{"id": 6.027456183070403}]})
    async with connect(fake, clock) as client:
        with pytest.raises(UnexpectedResponse, match="not a list"):
            await client.sender_ids()
        with pytest.raises(UnexpectedResponse, match="whole number"):
            await client.sender_ids()


async def test_bare_404_points_at_the_path_table(fake: FakeParrotica, clock: Clock) -> None:
    fake.fail_next(404, b"")
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="PARROTICA_PATHS"):
            await client.activity()


async def test_wrong_send_path_is_not_blamed_on_the_recipients(clock: Clock) -> None:
    fake = FakeParrotica(now=clock, paths={"messages": "/api/v2/message/{userId}"})
    async with connect(fake, clock) as client:
        with pytest.raises(ValidationError, match="PARROTICA_PATHS") as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert not isinstance(caught.value, MessageRejected)
    assert "Cannot POST" in caught.value.message


async def test_server_failure_inside_a_200_on_send_is_maybe_sent(
    fake: FakeParrotica, clock: Clock
) -> None:
    fake.fail_next(200, {"status": "error", "code": 500, "message": "Worker crashed"})
    async with connect(fake, clock) as client:
        with pytest.raises(ProviderUnavailable, match="Worker crashed") as caught:
            await client.send("x", sender_id="ABC123", numbers=["+15551234567"])
    assert caught.value.maybe_sent


async def test_read_timeout_on_a_read_is_unavailable(fake: FakeParrotica, clock: Clock) -> None:
    fake.raise_next(lambda r: httpx.ReadTimeout("slow", request=r))
    async with connect(fake, clock) as client:
        with pytest.raises(ProviderUnavailable, match="did not answer in time"):
            await client.contacts()


def test_fake_request_log_decodes_bodies() -> None:
    """The fake's helpers are what the tests above rely on."""
    fake = FakeParrotica()
    request = httpx.Request(
        "POST",
        f"{BASE_URL}/api/v1/contact/{DEFAULT_USER}",
        json={"fullName": "A", "number": "+15550000099"},
        headers={"x-api-key": DEFAULT_KEY},
    )
    response = fake(request)
    assert response.status_code == 201
    assert fake.json_body() == json.loads(request.content)
    assert fake.requests_to("contacts", "POST") == [request]


# -- every method against the standard faults --------------------------------------------------

Call = Callable[[ParroticaClient], Awaitable[object]]
LATER = START + timedelta(hours=3)
METHODS: dict[str, Call] = {
    "verify": lambda c: c.verify(),
    "send": lambda c: c.send("x", sender_id="ABC123", numbers=["+15551234567"]),
    "get_message": lambda c: c.get_message(1001),
    "list_messages": lambda c: c.list_messages(),
    "reschedule": lambda c: c.reschedule(1001, LATER),
    "contacts": lambda c: c.contacts(),
    "get_contact": lambda c: c.get_contact(1),
    "add_contact": lambda c: c.add_contact("Alan", "+15550000003"),
    "delete_contact": lambda c: c.delete_contact(1),
    "delete_contacts": lambda c: c.delete_contacts([1]),
    "contact_summary": lambda c: c.contact_summary(),
    "groups": lambda c: c.groups(),
    "sender_ids": lambda c: c.sender_ids(),
    "transactions": lambda c: c.transactions(),
    "activity": lambda c: c.activity(),
}


@pytest.mark.parametrize("name", METHODS)
async def test_every_method_works_against_the_fake(
    fake: FakeParrotica, clock: Clock, name: str
) -> None:
    fake.add_message("x", "ABC123", state="scheduled")  # 1001, for get/reschedule
    async with connect(fake, clock) as client:
        result = await METHODS[name](client)
    assert result is not None
    assert all(r.headers["x-api-key"] == DEFAULT_KEY for r in fake.requests)
    assert all(f"/{DEFAULT_USER}" in r.url.path for r in fake.requests)


FAULTS: dict[str, tuple[Callable[[FakeParrotica], None], type[Exception], str]] = {
    "401": (lambda f: setattr(f, "api_key", "rotated"), AuthError, "401"),
    "403": (lambda f: setattr(f, "user_id", "other"), AuthError, "403"),
    "429": (lambda f: f.fail_next(429), RateLimited, "429"),
    "500": (lambda f: f.fail_next(500), ProviderUnavailable, "500"),
    "non-json": (lambda f: f.garbage_next(), UnexpectedResponse, ""),
    "connect": (
        lambda f: f.raise_next(lambda r: httpx.ConnectError("refused", request=r)),
        ProviderUnavailable,
        "",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", METHODS)
async def test_every_method_maps_the_standard_faults(
    fake: FakeParrotica, clock: Clock, name: str, fault: str
) -> None:
    fake.add_message("x", "ABC123", state="scheduled")
    arrange, error, code = FAULTS[fault]
    arrange(fake)
    async with connect(fake, clock) as client:
        with pytest.raises(error) as caught:
            await METHODS[name](client)
    assert isinstance(caught.value, ProviderError)
    assert (caught.value.code or "") == code
    assert DEFAULT_KEY not in caught.value.message
    assert len(fake.requests) == 1
