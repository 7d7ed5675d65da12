"""Delivery receipts pushed by providers: validate a callback body, read it as status reports.

Neither push format is documented, so both readers are *inferred* and deliberately lenient
about shape while strict about meaning: a receipt needs a provider ref and a status, an
unknown status word is reported back as ignored (never guessed into a state), and a body with
no usable receipt at all is refused (the HTTP server answers 400 so the sender sees it).

NusaSMS push callback (configured by NusaSMS support, ``nusasms_api`` docs: "please consider
to set push callback"): assumed to carry the fields of ``GET whatsapp/status/{ref_no}``,
i.e. ``{"ref_no": "...", "status": "D", ...}``, possibly wrapped in the API's envelope
(``{"data": {...}}``), as a list, or form-encoded. The SMS delivery-report push is assumed to
look like ``cmd=DR`` (``messageid`` + ``dr_status`` such as ``DELIVERED``).

courier ``callback-status-url``: assumed to post the text resource as JSON:API
(``{"data": {"id": ..., "type": "texts", "attributes": {"status": ..., "error": ...}}}``) or
flat (``{"id": ..., "status": ...}``); courier texts are Twilio-backed, so Twilio's form
fields (``MessageSid``/``MessageStatus``/``ErrorMessage``) are read as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.base import DeliveryState, StatusReport

MAX_RECEIPTS = 1000
_D = DeliveryState

NUSASMS_STATES: Mapping[str, DeliveryState] = {
    # WhatsApp letters and their names (docs: U Q S D R A F).
    "u": _D.ACCEPTED,
    "un-sent": _D.ACCEPTED,
    "unsent": _D.ACCEPTED,
    "q": _D.ACCEPTED,
    "queue": _D.ACCEPTED,
    "queued": _D.ACCEPTED,
    "s": _D.SENT,
    "sent": _D.SENT,
    "d": _D.DELIVERED,
    "delivered": _D.DELIVERED,
    "r": _D.READ,
    "read": _D.READ,
    "a": _D.ABORTED,
    "abort": _D.ABORTED,
    "aborted": _D.ABORTED,
    "f": _D.FAILED,
    "fail": _D.FAILED,
    "failed": _D.FAILED,
    # SMS delivery-report words (cmd=DR).
    "pending": _D.ACCEPTED,
    "not_delivered": _D.UNDELIVERED,
    "not delivered": _D.UNDELIVERED,
    "undelivered": _D.UNDELIVERED,
    "rejected": _D.FAILED,
    "expired": _D.EXPIRED,
}
COURIER_STATES: Mapping[str, DeliveryState] = {
    "accepted": _D.ACCEPTED,
    "scheduled": _D.ACCEPTED,
    "queued": _D.ACCEPTED,
    "sending": _D.SENT,
    "sent": _D.SENT,
    "delivered": _D.DELIVERED,
    "read": _D.READ,
    "undelivered": _D.UNDELIVERED,
    "failed": _D.FAILED,
    "canceled": _D.ABORTED,
    "cancelled": _D.ABORTED,
}
_NUSA_REF_KEYS = ("ref_no", "refno", "ref", "messageid", "message_id", "msgid", "id")
_NUSA_STATUS_KEYS = ("status", "dr_status", "state", "message_status")
_NUSA_DETAIL_KEYS = ("description", "reason", "error", "error_message", "detail")
_COURIER_REF_KEYS = ("id", "text-id", "text_id", "MessageSid", "SmsSid", "twilio-sid")
_COURIER_STATUS_KEYS = ("status", "MessageStatus", "SmsStatus")
_COURIER_DETAIL_KEYS = ("error", "ErrorMessage", "error-message", "detail")


class InvalidCallback(ValueError):
    """A callback body that carries no usable receipt; the text says what is missing."""


@dataclass(frozen=True, slots=True)
class Receipts:
    """What a callback said: reports for known states, and raw statuses that were not."""

    reports: list[StatusReport]
    ignored: list[str] = field(default_factory=list)


def _items(body: Any) -> list[Mapping[str, Any]]:
    """The receipt objects of a body: one object, a list, or an envelope's ``data``."""
    if isinstance(body, Mapping) and "data" in body and not _has_any(body, ("status",)):
        body = body["data"]
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidCallback("the body holds no receipt")
    if len(items) > MAX_RECEIPTS:
        raise InvalidCallback(f"more than {MAX_RECEIPTS} receipts in one callback")
    if not all(isinstance(item, Mapping) for item in items):
        raise InvalidCallback("a receipt must be a JSON object or form fields")
    return list(items)


def _has_any(item: Mapping[str, Any], keys: Iterable[str]) -> bool:
    return any(item.get(k) not in (None, "") for k in keys)


def _first(item: Mapping[str, Any], keys: Iterable[str]) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:200]
    return ""


def _read(
    items: list[Mapping[str, Any]],
    states: Mapping[str, DeliveryState],
    ref_keys: tuple[str, ...],
    status_keys: tuple[str, ...],
    detail_keys: tuple[str, ...],
) -> Receipts:
    reports: list[StatusReport] = []
    ignored: list[str] = []
    for number, item in enumerate(items, start=1):
        ref = _first(item, ref_keys)
        status = _first(item, status_keys)
        if not ref:
            raise InvalidCallback(f"receipt {number} has no message reference ({ref_keys[0]})")
        if not status:
            raise InvalidCallback(f"receipt {number} has no status")
        state = states.get(status.lower())
        if state is None:
            ignored.append(status)
            continue
        detail = _first(item, detail_keys)
        reports.append(StatusReport(ref=ref, state=state, provider_status=status, detail=detail))
    return Receipts(reports, ignored)


def nusasms_status(body: Any) -> Receipts:
    """Read a NusaSMS push callback (WhatsApp status or SMS delivery report)."""
    return _read(
        _items(body), NUSASMS_STATES, _NUSA_REF_KEYS, _NUSA_STATUS_KEYS, _NUSA_DETAIL_KEYS
    )


def courier_status(body: Any) -> Receipts:
    """Read a courier ``callback-status-url`` post (JSON:API, flat, or Twilio form fields)."""
    flat: list[Mapping[str, Any]] = []
    for item in _items(body):
        attributes = item.get("attributes")
        if isinstance(attributes, Mapping):
            merged = dict(attributes)
            if item.get("id") not in (None, ""):
                merged["id"] = item["id"]
            flat.append(merged)
        else:
            flat.append(item)
    return _read(
        flat, COURIER_STATES, _COURIER_REF_KEYS, _COURIER_STATUS_KEYS, _COURIER_DETAIL_KEYS
    )


ReceiptReader = Callable[[Any], Receipts]

# (provider, callback kind) → reader; a provider that pushes receipts adds its line here.
STATUS_READERS: dict[tuple[str, str], ReceiptReader] = {
    ("nusasms", "status"): nusasms_status,
    ("courier", "status"): courier_status,
}


def read_receipts(provider: str, kind: str, body: Any) -> Receipts:
    """Reports from one callback.

    Raises:
        InvalidCallback: when no reader knows this callback or the body has no receipt.

    """
    reader = STATUS_READERS.get((provider, kind))
    if reader is None:
        raise InvalidCallback(f"no receipt reader for {provider}/{kind}")
    return reader(body)
