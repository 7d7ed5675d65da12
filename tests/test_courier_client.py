"""CourierClient against the stateful courier + identity fake through MockTransport.

The login (one, reused; again once after a 401; shared by concurrent requests), the answer
mapping (JSON:API errors with their detail, 404, 422, 429, 5xx, malformed bodies, transport
failures and ``maybe_sent``), paging, and the body of every call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest

from providers.courier import CourierClient
from providers.courier.facts import MAX_BULK_RECIPIENTS, PAGE_LIMIT
from providers.errors import (
    AuthError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    ValidationError,
)
from providers.http import make_http_client
from tests.fakes.courier import (
    ACCOUNT_A,
    ACCOUNT_B,
    GROUP,
    INDIVIDUAL,
    NUMBER_A1,
    NUMBER_B2,
    ORG,
    PASSWORD,
    PHONE_A1,
    USERNAME,
    FakeCourier,
)
from tests.fakes.httpserver import serve

BASE = "http://courier.test/courier"
IDENTITY = "http://identity.test/identity"
MISSING = "deadbeef-0000-4000-8000-000000000000"


@pytest.fixture
def fake() -> FakeCourier:
    return FakeCourier()


def slow(fake: FakeCourier) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    """The fake taking a moment per request, so concurrent requests really overlap."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return fake(request)

    return handler


@asynccontextmanager
async def connect(
    fake: FakeCourier,
    *,
    password: str = PASSWORD,
    retries: int = 0,
    paths: Mapping[str, str] | None = None,
    overlap: bool = False,
) -> AsyncIterator[CourierClient]:
    handler = slow(fake) if overlap else fake
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        # One answer per call unless a test asks for 429 retries.
        yield CourierClient(
            http,
            username=USERNAME,
            password=password,
            base_url=BASE,
            identity_url=IDENTITY,
            paths=paths,
            rate_limit_retries=retries,
        )


async def send(client: CourierClient, target: str = "15551234567", number: str = NUMBER_A1):
    account = ACCOUNT_A if number == NUMBER_A1 else ACCOUNT_B
    return await client.send_text(
        account_id=account,
        number_id=number,
        organization_id=ORG,
        target=target,
        message="Your appointment is at 9:00",
    )


# -- login ---------------------------------------------------------------------------------------


async def test_logs_in_once_and_sends_the_token_as_bearer(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        await client.text_accounts(ORG)
    (login, *calls) = fake.requests
    assert str(login.url) == f"{IDENTITY}/v1/login/"
    assert json.loads(login.content) == {"username": USERNAME, "password": PASSWORD}
    assert fake.logins == 1
    for call in calls:
        assert call.headers["Authorization"].startswith("Bearer tok-")
        assert call.headers["Accept"] == "application/vnd.api+json"
        assert PASSWORD not in str(call.url)
        assert PASSWORD.encode() not in call.content


async def test_an_expired_token_means_one_new_login_and_the_request_sent_once(
    fake: FakeCourier,
) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        fake.expire_tokens()
        text = await send(client)
    assert fake.logins == 2
    assert list(fake.texts) == [text.id]  # taken once
    posts = fake.requests_to("/v1/texts/", "POST")
    assert len(posts) == 2  # the refused one (401) and the one after the new login


async def test_concurrent_requests_on_an_expired_token_share_one_login(
    fake: FakeCourier,
) -> None:
    async with connect(fake, overlap=True) as client:
        texts = [await send(client, f"1555000000{i}") for i in range(5)]
        fake.expire_tokens()
        got = await asyncio.gather(*(client.get_text(t.id) for t in texts))
    assert [t.id for t in got] == [t.id for t in texts]
    assert fake.logins == 2  # the first one, and one for all five


async def test_concurrent_first_requests_share_one_login(fake: FakeCourier) -> None:
    async with connect(fake, overlap=True) as client:
        await asyncio.gather(*(client.organization(ORG) for _ in range(5)))
    assert fake.login_attempts == 1


async def test_a_second_401_is_an_auth_error_and_no_loop(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        for _ in range(3):
            fake.fail_next(401, path_contains="/v1/texts/")
        with pytest.raises(AuthError, match="refused the login"):
            await send(client)
    assert fake.logins == 2  # one new login, not one per 401
    assert len(fake.requests_to("/v1/texts/")) == 2
    assert not fake.texts


async def test_a_password_changed_meanwhile_fails_the_new_login_once(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        fake.users[USERNAME] = "changed-at-carium"
        fake.expire_tokens()
        with pytest.raises(AuthError, match="refused the user name or password"):
            await send(client)
    assert fake.login_attempts == 2
    assert len(fake.requests_to("/v1/texts/")) == 1  # the 401; never sent again
    assert not fake.texts


async def test_a_wrong_password_is_told_plainly_and_never_shown(fake: FakeCourier) -> None:
    async with connect(fake, password="hunter2-wrong") as client:
        with pytest.raises(AuthError) as refused:
            await client.verify(ORG)
    assert "courier refused the user name or password" in refused.value.message
    assert "hunter2-wrong" not in refused.value.message
    assert "hunter2-wrong" not in repr(client.auth)
    assert not refused.value.maybe_sent
    assert [r.url.path for r in fake.requests] == ["/identity/v1/login/"]


async def test_concurrent_requests_with_a_wrong_password_try_one_login(fake: FakeCourier) -> None:
    async with connect(fake, password="nope", overlap=True) as client:
        results = await asyncio.gather(
            *(client.organization(ORG) for _ in range(4)), return_exceptions=True
        )
    assert all(isinstance(r, AuthError) for r in results)
    assert fake.login_attempts == 1


async def test_other_login_failures_show_the_identity_services_message(fake: FakeCourier) -> None:
    fake.fail_next(
        403,
        {"errors": [{"status": 403, "detail": "totp-code is required"}]},
        path_contains="login",
    )
    async with connect(fake) as client:
        with pytest.raises(AuthError, match="totp-code is required"):
            await client.verify(ORG)
        fake.fail_next(502, {"errors": [{"detail": "identity is down"}]}, path_contains="login")
        with pytest.raises(ProviderUnavailable, match="identity is down") as down:
            await client.verify(ORG)
        assert not down.value.maybe_sent
        fake.fail_next(200, {"refresh-token": "x"}, path_contains="login")
        with pytest.raises(UnexpectedResponse, match="without an access token") as odd:
            await client.verify(ORG)
        assert not odd.value.maybe_sent
        fake.fail_next(429, path_contains="login", headers={"Retry-After": "7"})
        with pytest.raises(RateLimited) as limited:
            await client.verify(ORG)
        assert limited.value.retry_after == 7


async def test_a_login_token_inside_a_jsonapi_document_is_read(fake: FakeCourier) -> None:
    fake.tokens["tok-wrapped"] = USERNAME
    fake.fail_next(
        201,
        {"data": {"type": "tokens", "attributes": {"access-token": "tok-wrapped"}}},
        path_contains="login",
    )
    async with connect(fake) as client:
        await client.organization(ORG)
    assert fake.requests[-1].headers["Authorization"] == "Bearer tok-wrapped"


async def test_the_password_is_scrubbed_from_courier_details(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        fake.fail_next(
            422, {"errors": [{"detail": f"bad body {PASSWORD}"}]}, path_contains="accounts"
        )
        with pytest.raises(ValidationError) as refused:
            await client.text_accounts(ORG)
    assert PASSWORD not in refused.value.message
    assert "***" in refused.value.message


# -- the organization --------------------------------------------------------------------------


async def test_verify_names_the_user_and_organization(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        info = await client.verify(ORG)
    assert info.account == f"{USERNAME} @ Sunrise Care"
    assert fake.requests[-1].url.path == f"/courier/v1/organizations/{ORG}/"


async def test_a_missing_organization_has_its_own_reply(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        with pytest.raises(AuthError) as refused:
            await client.verify(MISSING)
    assert refused.value.message == f"courier has no organization {MISSING} visible to this user."
    fake.fail_next(403, {"errors": [{"detail": "no access"}]}, path_contains="/organizations/")
    async with connect(fake) as client:
        with pytest.raises(AuthError, match="no organization"):
            await client.verify(ORG)


async def test_a_malformed_id_is_refused_before_any_request(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        with pytest.raises(ValidationError, match="organization id"):
            await client.organization("acme")
        with pytest.raises(ValidationError, match="text id"):
            await client.get_text("12")
    assert not fake.requests


# -- accounts, numbers, paging -----------------------------------------------------------------


async def test_text_accounts_and_numbers_are_read(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        accounts = await client.text_accounts(ORG)
        numbers = await client.text_numbers(ACCOUNT_B)
    assert {a.id for a in accounts} == {ACCOUNT_A, ACCOUNT_B}
    assert fake.requests[1].url.params["organization-id"] == ORG
    assert [(n.phone_number, n.can_text) for n in numbers] == [
        ("+15550100002", True),
        ("+15550100003", False),
    ]
    assert numbers[1].capabilities == "no sms, voice"


async def test_lists_are_walked_page_by_page(fake: FakeCourier) -> None:
    for i in range(2 * PAGE_LIMIT + 30):
        fake.add_number(ACCOUNT_A, f"+1555020{i:04d}")
    async with connect(fake) as client:
        numbers = await client.text_numbers(ACCOUNT_A)
    assert len(numbers) == 2 * PAGE_LIMIT + 31
    pages = fake.requests_to("/v1/text-account-numbers/")
    assert [r.url.params["page[offset]"] for r in pages] == ["0", "100", "200"]
    assert {r.url.params["page[limit]"] for r in pages} == {str(PAGE_LIMIT)}


async def test_an_exact_multiple_of_the_page_asks_one_empty_page_more(fake: FakeCourier) -> None:
    for i in range(PAGE_LIMIT - 1):
        fake.add_number(ACCOUNT_A, f"+1555030{i:04d}")
    async with connect(fake) as client:
        assert len(await client.text_numbers(ACCOUNT_A)) == PAGE_LIMIT
    assert len(fake.requests_to("/v1/text-account-numbers/")) == 2


# -- texts ---------------------------------------------------------------------------------------


async def test_a_text_goes_out_as_a_jsonapi_document(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        text = await client.send_text(
            account_id=ACCOUNT_A,
            number_id=NUMBER_A1,
            organization_id=ORG,
            target="15551234567",
            message="Hello",
            callback_status_url="https://bot.example/callbacks/courier/status/abc",
        )
    post = fake.requests_to("/v1/texts/", "POST")[0]
    assert post.url.path == "/courier/v1/texts/"
    assert json.loads(post.content) == {
        "data": {
            "type": "texts",
            "attributes": {
                "account-id": ACCOUNT_A,
                "number-id": NUMBER_A1,
                "organization-id": ORG,
                "target": "+15551234567",
                "message": "Hello",
                "callback-status-url": "https://bot.example/callbacks/courier/status/abc",
            },
        }
    }
    assert (text.status, text.sender, text.target) == ("accepted", PHONE_A1, "+15551234567")


async def test_a_text_status_moves_and_unknown_words_stay_verbatim(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        text = await send(client)
        fake.set_text_status(text.id, "undelivered", error="30005 unknown destination")
        moved = await client.get_text(text.id)
        fake.set_text_status(text.id, "Teleported")
        odd = await client.get_text(text.id)
    assert (moved.status, moved.error) == ("undelivered", "30005 unknown destination")
    assert moved.reading.state is not None
    assert moved.reading.state.is_failure
    assert odd.reading.state is None
    assert odd.reading.provider_status == "Teleported"


async def test_an_unknown_text_id_is_named(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        with pytest.raises(ValidationError) as missing:
            await client.get_text(MISSING)
    assert missing.value.message.startswith(f"courier has no text {MISSING} visible")
    assert missing.value.code == "404"


async def test_a_422_shows_courier_detail_and_the_attribute(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        with pytest.raises(ValidationError) as refused:
            await send(client, number=NUMBER_B2)
    assert "number-id: Number" in refused.value.message
    assert "cannot send SMS" in refused.value.message
    assert not refused.value.maybe_sent
    assert not fake.texts


async def test_a_bad_number_or_empty_text_is_refused_before_any_request(
    fake: FakeCourier,
) -> None:
    async with connect(fake) as client:
        with pytest.raises(ValidationError, match="international format"):
            await send(client, target="0812-abc")
        with pytest.raises(ValidationError, match="at most 1600"):
            await client.send_text(
                account_id=ACCOUNT_A,
                number_id=NUMBER_A1,
                organization_id=ORG,
                target="15551234567",
                message="x" * 1601,
            )
    assert not fake.requests


async def test_texts_are_listed_by_target_for_reconciliation(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        first = await send(client, "15551234567")
        await send(client, "15557654321")
        found = await client.list_texts(ACCOUNT_A, target="15551234567")
        capped = await client.list_texts(ACCOUNT_A, max_items=1)
    assert [t.id for t in found] == [first.id]
    listing = fake.requests_to("/v1/texts/", "GET")[0]
    assert listing.url.params["filter[target]"] == "+15551234567"
    assert listing.url.params["account-id"] == ACCOUNT_A
    assert len(capped) == 1


# -- failures -----------------------------------------------------------------------------------


async def test_a_body_that_is_not_jsonapi_is_an_unexpected_response(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        fake.garbage_next(path_contains="/organizations/")
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            await client.organization(ORG)
        fake.fail_next(200, {"data": [{"id": ORG}]}, path_contains="/organizations/")
        with pytest.raises(UnexpectedResponse, match="no data object"):
            await client.organization(ORG)
        fake.fail_next(200, {"data": [{"type": "text-accounts"}]}, path_contains="accounts")
        with pytest.raises(UnexpectedResponse, match="without an id"):
            await client.text_accounts(ORG)
        fake.fail_next(200, {"data": {"id": "x", "attributes": []}}, path_contains="/texts/")
        with pytest.raises(UnexpectedResponse, match="attributes"):
            await send(client)


async def test_a_429_is_rate_limited_with_its_retry_after(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        fake.fail_next(429, path_contains="/v1/texts/", headers={"Retry-After": "2.5"})
        with pytest.raises(RateLimited) as limited:
            await send(client)
    assert limited.value.retry_after == 2.5
    assert not fake.texts


async def test_a_429_is_sent_again_after_its_retry_after(fake: FakeCourier) -> None:
    async with connect(fake, retries=2) as client:
        fake.fail_next(429, path_contains="/v1/texts/", headers={"Retry-After": "0"})
        await send(client)
    assert len(fake.requests_to("/v1/texts/", "POST")) == 2
    assert len(fake.texts) == 1


@pytest.mark.parametrize(
    ("status", "maybe_sent"),
    [(500, True), (502, True), (503, False)],
)
async def test_a_5xx_on_a_send_is_unavailable(
    fake: FakeCourier, status: int, maybe_sent: bool
) -> None:
    async with connect(fake) as client:
        fake.fail_next(status, path_contains="/v1/texts/")
        with pytest.raises(ProviderUnavailable) as failed:
            await send(client)
        assert failed.value.maybe_sent is maybe_sent
        fake.fail_next(500, path_contains="/organizations/")
        with pytest.raises(ProviderUnavailable) as read_failed:
            await client.organization(ORG)
        assert not read_failed.value.maybe_sent  # a read creates nothing


async def test_a_403_names_the_refusal(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        fake.fail_next(
            403, {"errors": [{"detail": "missing scope texts:write"}]}, path_contains="/texts/"
        )
        with pytest.raises(AuthError, match="missing scope texts:write"):
            await send(client)


async def test_timeouts_before_and_after_the_request_left(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        await client.organization(ORG)
        fake.raise_next(
            lambda r: httpx.ConnectTimeout("no route", request=r), path_contains="/texts/"
        )
        with pytest.raises(ProviderUnavailable) as before:
            await send(client)
        assert not before.value.maybe_sent
        assert not fake.texts
        fake.raise_next(
            lambda r: httpx.ReadTimeout("slow", request=r), after=True, path_contains="/texts/"
        )
        with pytest.raises(ProviderUnavailable) as after:
            await send(client)
        assert after.value.maybe_sent
        assert len(fake.texts) == 1  # taken; the bot marks it unknown and never resends


# -- bulk messages, multicasts, e-mails -----------------------------------------------------------


async def test_a_bulk_message_is_one_request_with_its_ids(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        bulk = await client.create_bulk_message(
            message="Clinic closed Friday", individual_ids=[INDIVIDUAL], group_ids=[GROUP]
        )
        again = await client.get_bulk_message(bulk.id)
    (post,) = fake.requests_to("/v1/messaging-bulk-messages/", "POST")
    assert json.loads(post.content)["data"] == {
        "type": "messaging-bulk-messages",
        "attributes": {
            "draft": False,
            "individual-ids": [INDIVIDUAL],
            "individual-group-ids": [GROUP],
            "message": "Clinic closed Friday",
        },
    }
    assert again.posted_time
    assert again.draft is False
    assert (again.individual_ids, again.group_ids) == ((INDIVIDUAL,), (GROUP,))


async def test_a_bulk_message_over_the_limit_is_refused_before_sending(fake: FakeCourier) -> None:
    too_many = [f"11111111-2222-4333-8444-{i:012d}" for i in range(MAX_BULK_RECIPIENTS + 1)]
    async with connect(fake) as client:
        with pytest.raises(ValidationError, match=f"at most {MAX_BULK_RECIPIENTS}"):
            await client.create_bulk_message(message="x", individual_ids=too_many, group_ids=[])
        with pytest.raises(ValidationError, match="no recipients"):
            await client.create_bulk_message(message="x", individual_ids=[], group_ids=[])
    assert not fake.requests


async def test_a_multicast_body_and_status(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        started = await client.create_multicast(
            template_id="flu-shot-reminder",
            filter_type="individual-group",
            filter_value={"individual-group-id": GROUP},
            organization_id=ORG,
            data={"clinic": "North"},
        )
        fake.set_multicast_status(started.id, "completed")
        done = await client.get_multicast(started.id)
    assert fake.json_body(-2) == {
        "data": {
            "type": "multicasts",
            "attributes": {
                "template-id": "flu-shot-reminder",
                "filter-type": "individual-group",
                "filter-value": {"individual-group-id": GROUP},
                "organization-id": ORG,
                "data": {"clinic": "North"},
            },
        }
    }
    assert started.status == "queued"
    assert done.status == "completed"
    assert fake.requests[-1].url.path == f"/courier/v1/multicasts/{started.id}/"


async def test_an_email_is_created_as_a_draft_then_sent(fake: FakeCourier) -> None:
    async with connect(fake) as client:
        draft = await client.create_email(
            to="ada@example.org", subject="Results", message="All clear.", organization_id=ORG
        )
        sent = await client.send_email(draft.id)
    create, send_call = fake.requests_to("/v1/user-emails/", "POST")
    assert json.loads(create.content)["data"]["attributes"] == {
        "to": "ada@example.org",
        "subject": "Results",
        "message": "All clear.",
        "sender-organization-id": ORG,
        "auto-send": False,
    }
    assert send_call.url.path == f"/courier/v1/user-emails/{draft.id}/send/"
    assert (draft.status, sent.status) == ("draft", "sent")


async def test_path_overrides_replace_one_key(fake: FakeCourier) -> None:
    async with connect(fake, paths={"organization": "/v1/organizations/{id}/"}) as client:
        await client.organization(ORG)
    with pytest.raises(ValueError, match="unknown courier path key"):
        CourierClient(
            httpx.AsyncClient(),
            username=USERNAME,
            password=PASSWORD,
            base_url=BASE,
            identity_url=IDENTITY,
            paths={"txts": "/v1/txts/"},
        )


# -- over a real socket ------------------------------------------------------------------------


async def test_over_http_the_request_body_is_sent_again_after_a_new_login(
    fake: FakeCourier,
) -> None:
    async with serve(fake) as base, make_http_client() as http:
        client = CourierClient(
            http,
            username=USERNAME,
            password=PASSWORD,
            base_url=f"{base}/courier",
            identity_url=f"{base}/identity",
        )
        await client.organization(ORG)
        fake.expire_tokens()
        text = await send(client)
        fake.raise_next(lambda r: httpx.RemoteProtocolError("dropped", request=r), after=True)
        with pytest.raises(ProviderUnavailable) as dropped:
            await send(client, "15557654321")
    assert fake.logins == 2
    assert fake.texts[text.id].attributes["message"] == "Your appointment is at 9:00"
    assert dropped.value.maybe_sent
    assert len(fake.texts) == 2
