"""courier's tables, one test per row: recipients, status words, ids, paths, JSON:API errors."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from providers.base import DeliveryState
from providers.courier.facts import checked_uuid, e164, filter_value
from providers.courier.jsonapi import (
    Resource,
    document,
    error_detail,
    read_collection,
    read_resource,
    walk,
)
from providers.courier.paths import DEFAULT_PATHS, LOGIN_PATH, fill, resolve_paths
from providers.courier.recipients import read_bulk_recipient, read_email_recipient
from providers.courier.states import (
    EMAIL_STATES,
    MULTICAST_STATES,
    TEXT_STATES,
    read_bulk,
    read_email,
    read_multicast,
    read_status,
    read_text,
)
from providers.errors import UnexpectedResponse, ValidationError
from providers.registry import RECEIPT_READERS

ID = "11111111-2222-4333-8444-555555555555"

S = DeliveryState


# -- recipients ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        (f"individual:{ID}", f"individual:{ID}"),
        (f"group:{ID}", f"group:{ID}"),
        (ID, f"individual:{ID}"),
        (f" Group:{ID.upper()} ", f"group:{ID}"),
        (f"INDIVIDUAL: {ID}", f"individual:{ID}"),
    ],
)
def test_bulk_recipients_are_read(raw: str, read: str) -> None:
    assert read_bulk_recipient(raw) == read


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("contact:12", "individual:<id> or group:<id>"),
        ("6281234567890", "not a courier individual id"),
        ("group:12", "not a courier group id"),
        ("individual:", "not a courier individual id"),
        (f"{ID}x", "UUIDs"),
        ("list:staff", "individual:<id> or group:<id>"),
    ],
)
def test_bad_bulk_recipients_say_why(raw: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        read_bulk_recipient(raw)


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        ("ada@example.org", "ada@example.org"),
        (" Ada.Lovelace@Example.ORG ", "Ada.Lovelace@example.org"),
        ("nurse+ward3@sunrise-care.example", "nurse+ward3@sunrise-care.example"),
    ],
)
def test_email_recipients_are_read(raw: str, read: str) -> None:
    assert read_email_recipient(raw) == read


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("ada", "@-sign"),
        ("ada@", "after the @-sign"),
        ("ada@@example.org", "not an e-mail address"),
        ("ada @example.org", "not an e-mail address"),
        ("ada@localhost", "not an e-mail address"),
    ],
)
def test_bad_email_recipients_give_the_reason(raw: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        read_email_recipient(raw)


# -- status words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "state"), sorted(TEXT_STATES.items()))
def test_text_words(word: str, state: DeliveryState) -> None:
    reading = read_text(word.upper())
    assert (reading.state, reading.provider_status) == (state, word.upper())


@pytest.mark.parametrize(("word", "state"), sorted(MULTICAST_STATES.items()))
def test_multicast_words(word: str, state: DeliveryState) -> None:
    assert read_multicast(word).state == state


@pytest.mark.parametrize(("word", "state"), sorted(EMAIL_STATES.items()))
def test_email_words(word: str, state: DeliveryState) -> None:
    assert read_email(word).state == state


@pytest.mark.parametrize(
    ("draft", "posted", "word", "state"),
    [
        (False, "2026-03-01T09:00:00Z", "posted", S.SENT),
        (None, "2026-03-01T09:00:00Z", "posted", S.SENT),
        (True, "", "draft", S.ACCEPTED),
        (False, "", "posting", S.ACCEPTED),
        (None, "", "posting", S.ACCEPTED),
    ],
)
def test_bulk_progress(draft: bool | None, posted: str, word: str, state: DeliveryState) -> None:
    reading = read_bulk(draft=draft, posted_time=posted)
    assert (reading.provider_status, reading.state) == (word, state)


@pytest.mark.parametrize("read", [read_text, read_multicast, read_email])
def test_unknown_words_are_kept_verbatim_and_never_guessed(read: object) -> None:
    assert callable(read)
    reading = read("Warp_Speed")
    assert reading.state is None
    assert not reading.known
    assert reading.provider_status == "Warp_Speed"
    assert "Warp_Speed" in reading.detail
    assert read("").detail == "no status reported"


def test_the_callback_reader_is_registered_from_the_package() -> None:
    assert RECEIPT_READERS[("courier", "status")] is read_status
    body = {"data": {"id": ID, "type": "texts", "attributes": {"status": "delivered"}}}
    (report,) = read_status(body).reports
    assert (report.ref, report.state) == (ID, S.DELIVERED)


# -- ids, numbers, audiences ----------------------------------------------------------------------


def test_ids_and_numbers() -> None:
    assert checked_uuid(f" {ID.upper()} ", what="text id") == ID
    with pytest.raises(ValidationError, match="not a courier text id"):
        checked_uuid("1001", what="text id")
    assert e164("15551234567") == "+15551234567"
    assert e164("+62 812 3456 7890") == "+6281234567890"
    for bad in ("0812345", "+0123456789", "abc", "+1234567890123456"):
        with pytest.raises(ValidationError):
            e164(bad)


@pytest.mark.parametrize(
    ("filter_type", "raw", "value"),
    [
        ("all-participants", None, {}),
        ("all-participants", "  ", {}),
        ("individual", ID, {"individual-id": ID}),
        ("individual-group", ID, {"individual-group-id": ID}),
        ("Group", ID, {"individual-group-id": ID}),
        ("tag", "asthma", {"value": "asthma"}),
        ("anything", '{"k": 1}', {"k": 1}),
    ],
)
def test_audience_values(filter_type: str, raw: str | None, value: Mapping[str, object]) -> None:
    assert filter_value(filter_type, raw) == value


# -- paths ---------------------------------------------------------------------------------------


def test_paths_keep_their_trailing_slash() -> None:
    assert all(path.endswith("/") for path in DEFAULT_PATHS.values())
    assert LOGIN_PATH == "/v1/login/"
    assert fill(DEFAULT_PATHS["email_send"], ID) == f"/v1/user-emails/{ID}/send/"
    assert fill(DEFAULT_PATHS["text"], "a/b") == "/v1/texts/a%2Fb/"


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"txt": "/v1/t/"}, "unknown"),
        ({"texts": "v1/texts/"}, "start with"),
        ({"text": "/v1/texts/"}, "needs {id}"),
        ({"texts": "/v1/texts/{id}/"}, "may not contain"),
    ],
)
def test_bad_path_overrides_are_refused(overrides: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        resolve_paths(overrides)


def test_a_path_override_replaces_its_key_only() -> None:
    table = resolve_paths({"organization": "/v2/orgs/{id}/"})
    assert table["organization"] == "/v2/orgs/{id}/"
    assert table["texts"] == DEFAULT_PATHS["texts"]
    assert resolve_paths(None) is DEFAULT_PATHS


# -- JSON:API ------------------------------------------------------------------------------------


def test_a_document_and_its_resources() -> None:
    assert document("texts", {"target": "+1"}) == {
        "data": {"type": "texts", "attributes": {"target": "+1"}}
    }
    resource = read_resource({"data": {"id": 7, "type": "t", "attributes": None}}, what="text")
    assert resource == Resource("7", "t", {})
    assert read_collection({"data": []}, what="texts") == []
    for bad in ({}, {"data": None}, [], {"data": {"attributes": {}}}, {"data": {"id": True}}):
        with pytest.raises(UnexpectedResponse):
            read_resource(bad, what="text")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {
                "errors": [
                    {"detail": "not E.164", "source": {"pointer": "/data/attributes/target"}}
                ]
            },
            "target: not E.164",
        ),
        (
            {"errors": [{"detail": "required", "source": {"parameter": "account-id"}}]},
            "account-id: required",
        ),
        ({"errors": [{"detail": "a"}, {"title": "b"}, {"code": "c"}, {"detail": "a"}]}, "a; b; c"),
        (
            {
                "errors": [
                    {"detail": "target: bad", "source": {"pointer": "/data/attributes/target"}}
                ]
            },
            "target: bad",
        ),
        ({"message": "plain"}, "plain"),
        ({"errors": "nope"}, ""),
        ([1, 2], ""),
    ],
)
def test_error_details(body: object, detail: str) -> None:
    assert error_detail(httpx.Response(422, json=body)) == detail


def test_error_detail_of_a_body_that_is_not_json() -> None:
    assert error_detail(httpx.Response(500, text="<html>")) == ""


async def test_walk_stops_at_a_short_page_or_the_cap() -> None:
    asked: list[Mapping[str, int]] = []

    async def pages(params: Mapping[str, int]) -> list[Resource]:
        asked.append(params)
        left = 5 - params["page[offset]"]
        return [Resource(str(i), "x") for i in range(max(0, min(left, params["page[limit]"])))]

    assert len(await walk(pages, limit=2)) == 5
    assert [p["page[offset]"] for p in asked] == [0, 2, 4]
    asked.clear()
    assert len(await walk(pages, limit=2, max_items=3)) == 3
    assert len(asked) == 2
    asked.clear()
    assert len(await walk(pages, limit=1, max_pages=2)) == 2
