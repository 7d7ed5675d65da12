"""NusaSMS's push callback, read with the same status tables its polls use.

NusaSMS's push callback is configured by NusaSMS support ("please consider to set push
callback") and its body is not documented, so the reader is *inferred*: it assumes the fields
of ``GET whatsapp/status/{ref_no}`` (``{"ref_no": "...", "status": "D", ...}``), possibly in the
API's envelope (``{"data": {...}}``), as a list, or form-encoded; or an SMS delivery report
shaped like ``cmd=DR`` (``messageid`` + ``dr_status`` such as ``DELIVRD``). A status is looked
up in :data:`providers.nusasms.WA_STATES` (letters and their names) and then in
:data:`providers.nusasms_codes.DR_STATES`: one table each, shared with the polls.
"""

from __future__ import annotations

from typing import Any

from providers.base import DeliveryState
from providers.nusasms import WA_STATE_WORDS, WA_STATES
from providers.nusasms_codes import dr_state_of
from providers.receipts import ReceiptFields, Receipts, items_of, read_items

FIELDS = ReceiptFields(
    ref=("ref_no", "refno", "ref", "messageid", "message_id", "msgid", "id"),
    status=("status", "dr_status", "state", "message_status"),
    detail=("description", "reason", "error", "error_message", "detail"),
)


def state_of(raw: str) -> DeliveryState | None:
    """The state a pushed NusaSMS status means (WhatsApp letter or word, or a DR value)."""
    key = raw.strip()
    letter = key.upper() if len(key) == 1 else WA_STATE_WORDS.get(key.lower(), "")
    if letter in WA_STATES:
        return WA_STATES[letter][0]
    found = dr_state_of(key)
    return found[0] if found is not None else None


def read_status(body: Any) -> Receipts:
    """Read a NusaSMS push callback (WhatsApp status or SMS delivery report)."""
    return read_items(items_of(body), state_of, FIELDS)
