"""SMS encoding and segment counts: GSM-7 160/153 (extension characters double), UCS-2 70/67."""

from __future__ import annotations

import pytest

from bot.services.errors import BadInput
from bot.services.segments import MAX_SEGMENTS, describe, preview, sms_segments
from providers.sms_encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    count_segments,
    is_gsm7,
    non_gsm7,
)


def test_the_gsm7_alphabet_has_its_documented_size() -> None:
    # 128 positions of the default table minus the escape code; 10 characters behind escape.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert "\x1b" not in GSM7_BASIC


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", Encoding.GSM7, 0, 1),
        ("Halo", Encoding.GSM7, 4, 1),
        ("a" * 160, Encoding.GSM7, 160, 1),
        ("a" * 161, Encoding.GSM7, 161, 2),
        ("a" * 306, Encoding.GSM7, 306, 2),
        ("a" * 307, Encoding.GSM7, 307, 3),
        ("€" * 80, Encoding.GSM7, 160, 1),  # extension characters count double
        ("€" * 81, Encoding.GSM7, 162, 2),
        ("[x]" * 40, Encoding.GSM7, 200, 2),
        ("Café àé ÄÖÑÜ §¿ £$¥ @_", Encoding.GSM7, 22, 1),  # accented letters of the table
        ("ç", Encoding.UCS2, 1, 1),  # lower-case ç is not in GSM-7 (only Ç is)
        ("Halo 😀", Encoding.UCS2, 7, 1),  # an emoji is two UTF-16 code units
        ("a" * 70, Encoding.GSM7, 70, 1),
        ("ā" * 70, Encoding.UCS2, 70, 1),
        ("ā" * 71, Encoding.UCS2, 71, 2),
        ("ā" * 134, Encoding.UCS2, 134, 2),
        ("ā" * 135, Encoding.UCS2, 135, 3),
        ("’" + "a" * 69, Encoding.UCS2, 70, 1),  # one curly quote makes it all UCS-2
    ],
)
def test_segments(text: str, encoding: Encoding, units: int, segments: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert info.characters == len(text)
    assert is_gsm7(text) is (encoding is Encoding.GSM7)


def test_a_double_width_character_never_straddles_two_parts() -> None:
    # 152 plain + "€" (2 septets) would end at 154 > 153: the euro moves to part two.
    text = "a" * 152 + "€" + "a" * 152
    info = count_segments(text)
    assert info.units == 306
    assert info.segments == 3  # a naive ceil(306 / 153) would say 2
    emoji = "a" * 66 + "😀" + "a" * 66  # the pair would straddle the 67-unit boundary
    assert count_segments(emoji).segments == 3


def test_per_segment_capacity_is_reported() -> None:
    assert count_segments("a" * 10).per_segment == 160
    assert count_segments("a" * 200).per_segment == 153
    assert count_segments("ā" * 10).per_segment == 70
    assert count_segments("ā" * 100).per_segment == 67


def test_what_forces_ucs2_is_named() -> None:
    text = "Harga “promo” 😀 ok"
    assert non_gsm7(text) == ["“", "”", "😀"]
    assert describe(count_segments(text), text) == (
        "1 segment (UCS-2 because of “ ” 😀, 18 characters)"
    )
    assert describe(count_segments("a" * 200), "a" * 200) == ("2 segments (GSM-7, 200 characters)")


def test_preview_counts_all_parts() -> None:
    info = count_segments("a" * 200)
    assert preview(info, "a" * 200, recipients=3, group=False) == (
        "📏 2 segments (GSM-7, 200 characters) × 3 recipients = 6 SMS parts."
    )
    assert preview(info, "a" * 200, recipients=1, group=True).endswith(
        "per recipient of the group."
    )


def test_more_than_ten_parts_is_refused_with_the_reason() -> None:
    assert sms_segments("a" * 1530).segments == MAX_SEGMENTS
    with pytest.raises(BadInput, match="11 parts"):
        sms_segments("a" * 1531)
    with pytest.raises(BadInput, match="avoid what forces UCS-2"):
        sms_segments("ā" * 700)
