"""Delivery receipts pushed by providers: the shared reading of a callback body.

Each vendor module reads its own push format with :func:`read_items` and its one status table
(the same table its polls use); :data:`providers.registry.RECEIPT_READERS` says which reader
serves which callback. Readers are lenient about shape and strict about meaning: a receipt needs
a provider ref and a status, an unknown status word is reported back as ignored (never guessed
into a state), and a body with no usable receipt at all is refused (the HTTP server answers 400
so the sender sees it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.base import DeliveryState, StatusReport

MAX_RECEIPTS = 1000


class InvalidCallback(ValueError):
    """A callback body that carries no usable receipt; the text says what is missing."""


@dataclass(frozen=True, slots=True)
class Receipts:
    """What a callback said: reports for known states, and raw statuses that were not."""

    reports: list[StatusReport]
    ignored: list[str] = field(default_factory=list)


def items_of(body: Any) -> list[Mapping[str, Any]]:
    """The receipt objects of a body: one object, a list, or an envelope's ``data``."""
    if isinstance(body, Mapping) and "data" in body and not _has_any(body, ("status",)):
        body = body["data"]
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidCallback("the body holds no receipt")  # i18n: not shown
    if len(items) > MAX_RECEIPTS:
        raise InvalidCallback(
            f"more than {MAX_RECEIPTS} receipts in one callback"  # i18n: not shown
        )
    if not all(isinstance(item, Mapping) for item in items):
        raise InvalidCallback(
            "a receipt must be a JSON object or form fields"  # i18n: not shown
        )
    return list(items)


def _has_any(item: Mapping[str, Any], keys: Iterable[str]) -> bool:
    return any(item.get(k) not in (None, "") for k in keys)


def _first(item: Mapping[str, Any], keys: Iterable[str]) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:200]
    return ""


@dataclass(frozen=True, slots=True)
class ReceiptFields:
    """Where a vendor's receipts keep the message ref, the status and the reason (first found)."""

    ref: tuple[str, ...]
    status: tuple[str, ...]
    detail: tuple[str, ...]


def read_items(
    items: list[Mapping[str, Any]],
    state_of: Callable[[str], DeliveryState | None],
    fields: ReceiptFields,
) -> Receipts:
    """Status reports from receipt objects; ``state_of`` is the vendor's one status table.

    Raises:
        InvalidCallback: a receipt without a ref or a status.

    """
    ref_keys, status_keys, detail_keys = fields.ref, fields.status, fields.detail
    reports: list[StatusReport] = []
    ignored: list[str] = []
    for number, item in enumerate(items, start=1):
        ref = _first(item, ref_keys)
        status = _first(item, status_keys)
        if not ref:
            raise InvalidCallback(
                f"receipt {number} has no message reference ({ref_keys[0]})"  # i18n: not shown
            )
        if not status:
            raise InvalidCallback(f"receipt {number} has no status")  # i18n: not shown
        state = state_of(status)
        if state is None:
            ignored.append(status)
            continue
        detail = _first(item, detail_keys)
        reports.append(StatusReport(ref=ref, state=state, provider_status=status, detail=detail))
    return Receipts(reports, ignored)


ReceiptReader = Callable[[Any], Receipts]
