"""Reading NusaSMS's WhatsApp phone-check callbacks, whose body is not documented.

``POST wa_phone_check`` only says results are posted to ``callback_url`` later. The shape is
therefore *inferred*, and read defensively so that any plausible body yields results:

- a list of items, or an object holding it under ``data``, ``results``, ``result``,
  ``phone_numbers``, ``numbers`` or ``items`` (nested envelopes such as
  ``{"error": false, "data": {"results": [...]}}`` included), or one item on its own;
- an item names its number in ``phone``, ``phone_number``, ``number``, ``msisdn``,
  ``destination``, ``wa_number`` or ``nomor``, and its result in ``status``, ``exists``,
  ``registered``, ``is_registered``, ``on_whatsapp``, ``is_wa``, ``whatsapp``, ``wa``,
  ``result``, ``valid``, ``active`` or ``is_active``;
- a plain mapping ``{"62812...": true | "registered" | ...}``;
- a JSON string (a form field or raw body holding JSON) is decoded first.

A value is "on WhatsApp" when it is true or a word like ``registered``/``active``/``valid``,
"not on WhatsApp" for false or ``not registered``/``invalid``/``inactive``; anything else is
kept as the provider's own text with an unknown answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from i18n import _
from providers.base import PhoneCheckResult

_LIST_KEYS = ("data", "results", "result", "phone_numbers", "numbers", "items")
_NUMBER_KEYS = ("phone", "phone_number", "number", "msisdn", "destination", "wa_number", "nomor")
_ANSWER_KEYS = (
    "status",
    "exists",
    "registered",
    "is_registered",
    "on_whatsapp",
    "is_wa",
    "whatsapp",
    "wa",
    "result",
    "valid",
    "active",
    "is_active",
)
_YES = frozenset(
    [
        "true",
        "1",
        "yes",
        "y",
        "registered",
        "active",
        "valid",
        "exists",
        "exist",
        "on_whatsapp",
        "available",
        "wa",
        "terdaftar",
        "aktif",
    ]
)
_NO = frozenset(
    [
        "false",
        "0",
        "no",
        "n",
        "not_registered",
        "unregistered",
        "inactive",
        "invalid",
        "not_exists",
        "not_exist",
        "not_found",
        "not_on_whatsapp",
        "unavailable",
        "not_wa",
        "tidak_terdaftar",
        "tidak_aktif",
    ]
)
_DIGITS = re.compile(r"^\+?[\d\s().\-]{6,20}$")
_MAX_DEPTH = 4


def parse_phone_check_callback(body: Any) -> list[PhoneCheckResult]:
    """Every result found in a callback body, de-duplicated by number (last one wins)."""
    found: dict[str, PhoneCheckResult] = {}
    for result in _walk(_decoded(body), 0):
        found[result.number] = result
    return list(found.values())


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _walk(value: Any, depth: int) -> Iterator[PhoneCheckResult]:
    if depth > _MAX_DEPTH:
        return
    value = _decoded(value)
    if isinstance(value, list):
        for item in value:
            yield from _walk(item, depth + 1)
        return
    if not isinstance(value, dict):
        return
    item = _item(value)
    if item is not None:
        yield item
        return
    nested = [value[k] for k in _LIST_KEYS if value.get(k) is not None]
    if nested:
        for inner in nested:
            yield from _walk(inner, depth + 1)
        return
    for key, answer in value.items():  # {"62812...": true, ...}
        number = _digits(key)
        if number is not None and not isinstance(answer, dict | list):
            yield _result(number, answer)


def _item(value: dict[str, Any]) -> PhoneCheckResult | None:
    lowered = {str(k).lower(): v for k, v in value.items()}
    raw_number = next((lowered[k] for k in _NUMBER_KEYS if k in lowered), None)
    number = _digits(raw_number)
    if number is None:
        return None
    answer = next((lowered[k] for k in _ANSWER_KEYS if k in lowered), None)
    return _result(number, answer)


def _digits(raw: Any) -> str | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not _DIGITS.match(raw.strip()):
        return None
    digits = re.sub(r"\D", "", raw)
    return digits if 6 <= len(digits) <= 15 else None


def _result(number: str, answer: Any) -> PhoneCheckResult:
    if isinstance(answer, bool):
        # The raw answer is kept for the record; a known answer is worded by the bot itself.
        raw = "on WhatsApp" if answer else "not on WhatsApp"  # i18n: not shown
        return PhoneCheckResult(number, answer, raw)
    text = "" if answer is None else str(answer).strip()
    key = re.sub(r"[\s\-]+", "_", text.lower())
    if key in _YES:
        return PhoneCheckResult(number, True, text)
    if key in _NO:
        return PhoneCheckResult(number, False, text)
    return PhoneCheckResult(number, None, text or _("no answer"))
