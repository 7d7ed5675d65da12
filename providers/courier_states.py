"""courier's text statuses and its ``callback-status-url`` posts.

courier texts are Twilio-backed; only ``accepted`` is printed in its documentation, so the
table holds Twilio's values (api-docs README). Unknown values are never guessed into a state.
The callback body is not documented: assumed to be the text resource as JSON:API
(``{"data": {"id": ..., "type": "texts", "attributes": {"status": ..., "error": ...}}}``) or
flat (``{"id": ..., "status": ...}``); Twilio's own form fields (``MessageSid`` /
``MessageStatus`` / ``ErrorMessage``) are read as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import DeliveryState
from providers.receipts import ReceiptFields, Receipts, items_of, read_items

_D = DeliveryState
TEXT_STATES: Mapping[str, DeliveryState] = {
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
FIELDS = ReceiptFields(
    ref=("id", "text-id", "text_id", "MessageSid", "SmsSid", "twilio-sid"),
    status=("status", "MessageStatus", "SmsStatus"),
    detail=("error", "ErrorMessage", "error-message", "detail"),
)


def state_of(raw: str) -> DeliveryState | None:
    """The state a courier text status means, None when it is not in the table."""
    return TEXT_STATES.get(raw.strip().lower())


def read_status(body: Any) -> Receipts:
    """Read a courier ``callback-status-url`` post (JSON:API, flat, or Twilio form fields)."""
    flat: list[Mapping[str, Any]] = []
    for item in items_of(body):
        attributes = item.get("attributes")
        if isinstance(attributes, Mapping):
            merged = dict(attributes)
            if item.get("id") not in (None, ""):
                merged["id"] = item["id"]
            flat.append(merged)
        else:
            flat.append(item)
    return read_items(flat, state_of, FIELDS)
