"""courier's fixed facts: its name, text and request limits, id syntax and the audience shape.

courier (Carium's communications service) speaks JSON:API; every id it hands out or takes is a
UUID (``11111111-1111-1111-1111-111111111111`` in its samples), so ids are checked here before
any request and a typo never costs a round trip. Numbers go out in E.164 (``+15550100001``).

What the documentation does not say is *inferred* and marked so; each such value is a constant
of this module, read by the adapter and the registry, never a literal elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from i18n import _
from providers.errors import ValidationError

NAME = "courier"

# Characters in one text: courier texts go out through Twilio, which refuses longer bodies.
MAX_TEXT = 1600

# Characters in a bulk message or an e-mail body (*inferred*: courier documents no limit; a
# Telegram message, which the text comes from, holds at most 4096).
MAX_CHANNEL_TEXT = 4096

# Individual + group ids in one bulk message (*inferred*: undocumented; a conservative cut well
# under the 1,000 items courier pages by, so one request stays a reasonable size).
MAX_BULK_RECIPIENTS = 500

# ``page[limit]`` of every list we walk (courier's default; it allows 1..1000).
PAGE_LIMIT = 100

MAX_PAGE_LIMIT = 1000
# A list longer than this many pages is cut there: a runaway server cannot make us walk on.
MAX_PAGES = 50

# A multicast's ``filter-type`` when the chat names none (the documented sample).
DEFAULT_AUDIENCE = "all-participants"

# filter-type → the ``filter-value`` key a plain value goes under (*inferred*: the sample prints
# only ``{}``; these follow the multicast resource's own ``individual-id`` /
# ``individual-group-id`` attributes). Any other filter-type puts it under ``"value"``; a value
# written as a JSON object is sent exactly as written, which overrides all of this.
FILTER_VALUE_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "individual": "individual-id",
        "individual-group": "individual-group-id",
        "group": "individual-group-id",
    }
)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in its usual 8-4-4-4-12 form."""
    return bool(_UUID.match(text.strip()))


def checked_uuid(raw: str, *, what: str) -> str:
    """A courier id from the chat or the credentials, checked and lower-cased.

    Raises:
        ValidationError: it is not a UUID; the message names ``what`` it should be.

    """
    cleaned = raw.strip()
    if not is_uuid(cleaned):
        raise ValidationError(
            _(
                "“{value}” is not a {provider} {what} (a UUID like "
                "11111111-2222-3333-4444-555555555555)."
            ).format(value=raw, provider=NAME, what=_(what)),
            provider=NAME,
        )
    return cleaned.lower()


def e164(number: str) -> str:
    """A recipient number as courier's ``target`` wants it: ``+`` and digits.

    The bot hands over international digits without ``+`` (``15550100001``); one written with
    ``+`` is kept.

    Raises:
        ValidationError: what remains is not an E.164 number.

    """
    cleaned = number.strip().replace(" ", "")
    target = cleaned if cleaned.startswith("+") else f"+{cleaned}"
    if not _E164.match(target):
        raise ValidationError(
            _("“{number}” is not a phone number in international format.").format(number=number),
            provider=NAME,
        )
    return target


def filter_value(filter_type: str, raw: str | None) -> dict[str, Any]:
    """The ``filter-value`` object of a multicast for ``audience=<filter-type>[:<value>]``.

    No value gives ``{}`` (as for ``all-participants``); a JSON object is sent as written; a
    plain value goes under the key :data:`FILTER_VALUE_KEYS` names for the filter-type, or
    ``"value"``.

    Raises:
        ValidationError: the value starts like a JSON object but is not one.

    """
    if raw is None or not raw.strip():
        return {}
    text = raw.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ValidationError(
                _("The audience value {value!r} is not a valid JSON object.").format(value=text),
                provider=NAME,
            ) from exc
        if not isinstance(parsed, dict):  # pragma: no cover - "{" always parses to an object
            raise ValidationError(_("The audience value must be a JSON object."), provider=NAME)
        return parsed
    return {FILTER_VALUE_KEYS.get(filter_type.strip().lower(), "value"): text}
