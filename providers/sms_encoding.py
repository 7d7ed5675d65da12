r"""SMS encodings and segments: GSM-7 (3GPP TS 23.038) or UCS-2, and how a text is split.

A text made only of the GSM-7 default alphabet travels as 7-bit septets: 160 fit in one SMS,
153 per part of a concatenated SMS (the user data header takes the rest). The extension table
(``^ { } \\ [ ~ ] | €`` and form feed) costs two septets each (escape + character), and a
part never splits such a pair. Any other character makes the whole text UCS-2: 70 UTF-16 code
units in one SMS, 67 per part; characters outside the BMP (most emoji) are two code units and
are never split either.

Providers use this to set their "unicode" flag; the bot uses it to show the cost of a send.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE_GSM7 = 160
PART_GSM7 = 153
SINGLE_UCS2 = 70
PART_UCS2 = 67


class Encoding(StrEnum):
    """How an SMS text is encoded on the air."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SmsSegments:
    """What a text costs as SMS.

    ``units`` are septets (GSM-7) or UTF-16 code units (UCS-2); ``per_segment`` is the
    capacity of each part actually used (160/153 or 70/67).
    """

    encoding: Encoding
    characters: int
    units: int
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet (with its extension)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def non_gsm7(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of appearance."""
    return list(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))


def _widths(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _pack(widths: list[int], capacity: int) -> int:
    """Parts needed when no character may straddle two parts."""
    parts, used = 1, 0
    for width in widths:
        if used + width > capacity:
            parts, used = parts + 1, 0
        used += width
    return parts


def count_segments(text: str) -> SmsSegments:
    """Encoding, size and number of parts of ``text`` sent as one SMS (concatenated if long)."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    widths = _widths(text, encoding)
    units = sum(widths)
    single, part = (
        (SINGLE_GSM7, PART_GSM7) if encoding is Encoding.GSM7 else (SINGLE_UCS2, PART_UCS2)
    )
    if units <= single:
        return SmsSegments(encoding, len(text), units, 1, single)
    return SmsSegments(encoding, len(text), units, _pack(widths, part), part)
