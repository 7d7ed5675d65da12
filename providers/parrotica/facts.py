"""Parrotica's fixed facts: the envelope's success rule, ids, times and the recipient limit.

Every answer is the envelope ``{status, code, message, data?, meta?}``. The documented samples
carry placeholders only (``"code": 0.80…``, ``"status": "status"``), so the rule is *inferred*
(``shared/api-docs/README.md``): an answer is a failure when its HTTP status is not 2xx, or its
``status`` is ``error``/``fail``/``failed``/``false`` (any case), or its numeric ``code`` is
400 or more. The body's ``message`` is what the chat is shown.

Ids are integers on the wire (``1001``, never ``1001.0``); the samples print floats such as
``6.027…``, so an integral float from the server is accepted and anything else is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from i18n import _
from providers.errors import UnexpectedResponse, ValidationError

NAME = "Parrotica"

# Numbers + contact ids + group ids in one send request (*inferred*; 1,000 numbers → 10).
MAX_RECIPIENTS_PER_REQUEST = 100

FAILURE_WORDS = frozenset({"error", "fail", "failed", "false"})
FAILURE_CODE = 400


def envelope_failed(http_status: int, body: Mapping[str, object]) -> bool:
    """Whether an answer is a failure under the envelope rule above."""
    if not 200 <= http_status < 300:
        return True
    status = body.get("status")
    if isinstance(status, bool):
        if not status:
            return True
    elif isinstance(status, str) and status.strip().lower() in FAILURE_WORDS:
        return True
    code = envelope_code(body)
    return code is not None and code >= FAILURE_CODE


def envelope_code(body: Mapping[str, object]) -> int | None:
    """The body's numeric ``code`` as an integer (``"404"`` and ``404.0`` too), if any."""
    raw = body.get("code")
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(float(raw.strip()))
        except ValueError:
            return None
    return None


def envelope_message(body: object) -> str:
    """The body's ``message`` text, or ``""`` when there is none."""
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str):
            return message.strip()
    return ""


def read_id(raw: object, *, what: str = "id") -> int:
    """An id from the server: ``1001``, ``1001.0`` or ``"1001"`` give ``1001``.

    Raises:
        UnexpectedResponse: anything else (a fraction, a word, a boolean, nothing).

    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise UnexpectedResponse(
        _("{provider} answered {what} {value!r}, not a whole number.").format(
            provider=NAME, what=_(what), value=raw
        ),
        provider=NAME,
    )


def wire_ids(values: Iterable[int], *, what: str) -> list[int]:
    """Ids the caller gave, checked to be positive integers, for a request body.

    Raises:
        ValidationError: a value is not a positive whole number (``True`` and ``12.5`` too).

    """
    out: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValidationError(
                _("{provider} {what} must be positive whole numbers, not {value!r}.").format(
                    provider=NAME, what=_(what), value=value
                ),
                provider=NAME,
            )
        out.append(value)
    return out


def parse_id(text: str, *, what: str = "id") -> int:
    """An id typed in a chat (``contact:<id>``, ``/reschedule <id>``) as an integer.

    Raises:
        ValidationError: the text is not a positive whole number.

    """
    cleaned = text.strip()
    # isascii: str.isdigit() also accepts "²" and other scripts' digits, which int() refuses.
    if not (cleaned.isascii() and cleaned.isdigit()) or int(cleaned) == 0 or len(cleaned) > 18:
        raise ValidationError(
            _("{text!r} is not a {provider} {what} (a positive whole number).").format(
                text=text, provider=NAME, what=_(what)
            ),
            provider=NAME,
        )
    return int(cleaned)


def format_time(moment: datetime) -> str:
    """A time as Parrotica's samples write it: UTC, seconds, ``Z`` (``2025-02-18T15:30:00Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(raw: object) -> datetime | None:
    """A server time (``2000-01-23T04:56:07.000+00:00``, ``…Z``) as an aware UTC datetime.

    Unreadable or missing values give ``None``: a bad timestamp must not hide the rest.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Recipients:
    """The recipients of one send request."""

    numbers: tuple[str, ...] = ()
    contact_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.numbers) + len(self.contact_ids) + len(self.group_ids)


def recipient_batches(
    numbers: Sequence[str] = (),
    contact_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
    *,
    size: int = MAX_RECIPIENTS_PER_REQUEST,
) -> list[Recipients]:
    """Split recipients into requests of at most ``size`` entries, keeping their order.

    A group id counts as one entry: Parrotica expands it on its side.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    tagged: list[tuple[str, str | int]] = [
        *(("n", n) for n in numbers),
        *(("c", c) for c in contact_ids),
        *(("g", g) for g in group_ids),
    ]
    batches: list[Recipients] = []
    for start in range(0, len(tagged), size):
        chunk = tagged[start : start + size]
        batches.append(
            Recipients(
                numbers=tuple(str(v) for k, v in chunk if k == "n"),
                contact_ids=tuple(int(v) for k, v in chunk if k == "c"),
                group_ids=tuple(int(v) for k, v in chunk if k == "g"),
            )
        )
    return batches
