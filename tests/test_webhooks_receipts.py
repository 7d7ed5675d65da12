"""Reading pushed receipts: NusaSMS push callbacks and courier ``callback-status-url`` posts."""

from __future__ import annotations

from typing import Any

import pytest

from providers import nusasms_receipts
from providers.base import DeliveryState
from providers.courier import states as courier_states
from providers.nusasms import WA_STATE_WORDS, WA_STATES, map_wa_status
from providers.nusasms_codes import DR_STATES, map_dr_status
from providers.receipts import InvalidCallback
from providers.registry import read_receipts

nusasms_status = nusasms_receipts.read_status
courier_status = courier_states.read_status


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"ref_no": "r1", "status": "D"}, [("r1", DeliveryState.DELIVERED, "D")]),
        ({"ref_no": "r1", "status": "read"}, [("r1", DeliveryState.READ, "read")]),
        (
            {"error": False, "data": {"ref_no": "r2", "status": "F", "description": "no WA"}},
            [("r2", DeliveryState.FAILED, "F")],
        ),
        (
            [{"ref_no": "a", "status": "S"}, {"ref_no": "b", "status": "A"}],
            [("a", DeliveryState.SENT, "S"), ("b", DeliveryState.ABORTED, "A")],
        ),
        (
            {"messageid": "175041319203754627", "dr_status": "NOT_DELIVERED"},
            [("175041319203754627", DeliveryState.UNDELIVERED, "NOT_DELIVERED")],
        ),
        ({"ref_no": 12345, "status": "Q"}, [("12345", DeliveryState.ACCEPTED, "Q")]),
    ],
)
def test_nusasms_push_shapes(body: Any, expected: list[tuple[str, DeliveryState, str]]) -> None:
    receipts = nusasms_status(body)
    assert [(r.ref, r.state, r.provider_status) for r in receipts.reports] == expected
    assert receipts.ignored == []


def test_nusasms_reason_is_kept() -> None:
    receipts = nusasms_status({"ref_no": "r", "status": "F", "description": "number banned"})
    (report,) = receipts.reports
    assert report.detail == "number banned"


def test_unknown_statuses_are_reported_not_guessed() -> None:
    receipts = nusasms_status([{"ref_no": "a", "status": "X"}, {"ref_no": "b", "status": "D"}])
    assert [r.ref for r in receipts.reports] == ["b"]
    assert receipts.ignored == ["X"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"status": "D"}, "no message reference"),
        ({"ref_no": "a"}, "no status"),
        ({"ref_no": "a", "status": True}, "no status"),
        ([], "no receipt"),
        (["D"], "JSON object"),
        ([{"ref_no": str(i), "status": "D"} for i in range(1001)], "more than 1000"),
    ],
)
def test_nusasms_bodies_without_a_receipt_are_refused(body: Any, reason: str) -> None:
    with pytest.raises(InvalidCallback, match=reason):
        nusasms_status(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "data": {
                    "id": "t-1",
                    "type": "texts",
                    "attributes": {"status": "delivered", "twilio-sid": "SM1"},
                },
                "meta": {},
            },
            [("t-1", DeliveryState.DELIVERED)],
        ),
        ({"id": "t-2", "status": "sending"}, [("t-2", DeliveryState.SENT)]),
        (
            {"MessageSid": "SM9", "MessageStatus": "undelivered", "ErrorMessage": "30003"},
            [("SM9", DeliveryState.UNDELIVERED)],
        ),
        ({"id": "t-3", "status": "canceled"}, [("t-3", DeliveryState.ABORTED)]),
    ],
)
def test_courier_status_shapes(body: Any, expected: list[tuple[str, DeliveryState]]) -> None:
    assert [(r.ref, r.state) for r in courier_status(body).reports] == expected


def test_courier_error_text_becomes_the_detail() -> None:
    body = {"data": {"id": "t", "attributes": {"status": "failed", "error": "bad number"}}}
    (report,) = courier_status(body).reports
    assert report.detail == "bad number"


def test_read_receipts_needs_a_known_kind() -> None:
    with pytest.raises(InvalidCallback, match="no receipt reader"):
        read_receipts("nusasms", "phone_check", {"a": 1})
    assert read_receipts("nusasms", "status", {"ref_no": "r", "status": "D"}).reports


@pytest.mark.parametrize("status", [*WA_STATES, *WA_STATE_WORDS])
def test_a_pushed_whatsapp_status_means_what_a_poll_of_it_means(status: str) -> None:
    assert nusasms_receipts.state_of(status) == map_wa_status(status)[0]


@pytest.mark.parametrize("status", [s for s in DR_STATES if s.lower() not in WA_STATE_WORDS])
def test_a_pushed_delivery_report_means_what_a_poll_of_it_means(status: str) -> None:
    assert nusasms_receipts.state_of(status) == map_dr_status(status)[0]
    assert nusasms_receipts.state_of(status.lower()) == map_dr_status(status)[0]
