r"""What an SMS costs, told before and after a send: encoding and segment count.

GSM-7 texts take 160 characters in one SMS and 153 per part when longer; the extension
characters ``^ { } \\ [ ~ ] | €`` count double. One character outside GSM-7 (an emoji, a curly
quote) turns the whole text into UCS-2: 70 per SMS, 67 per part. The counting itself lives in
:mod:`providers.sms_encoding`, where the SMS adapter also decides its ``unicode`` flag.
"""

from __future__ import annotations

from html import escape

from bot.services.errors import BadInput
from providers.sms_encoding import Encoding, SmsSegments, count_segments, non_gsm7

MAX_SEGMENTS = 10
_SHOWN_CULPRITS = 5


def sms_segments(text: str) -> SmsSegments:
    """Segments of ``text``, or ``BadInput`` when it would take more than 10 SMS parts."""
    info = count_segments(text)
    if info.segments > MAX_SEGMENTS:
        raise BadInput(
            f"This SMS would take {info.segments} parts ({escape(describe(info, text))}); "
            f"at most {MAX_SEGMENTS} parts are sent. Shorten the text"
            + (" or avoid what forces UCS-2." if info.encoding is Encoding.UCS2 else ".")
        )
    return info


def describe(info: SmsSegments, text: str) -> str:
    """``2 segments (GSM-7, 200 characters)``, naming what forces UCS-2 (plain text)."""
    parts = "segment" if info.segments == 1 else "segments"
    encoding = info.encoding.value
    if info.encoding is Encoding.UCS2:
        culprits = non_gsm7(text)
        shown = " ".join(culprits[:_SHOWN_CULPRITS]) + (
            " …" if len(culprits) > _SHOWN_CULPRITS else ""
        )
        encoding += f" because of {shown}"
    chars = "character" if info.characters == 1 else "characters"
    return f"{info.segments} {parts} ({encoding}, {info.characters} {chars})"


def preview(info: SmsSegments, text: str, *, recipients: int, group: bool) -> str:
    """The line shown before an SMS send: per message, and in total when it is known."""
    each = describe(info, text)
    if group:
        return f"📏 {each} per recipient of the group."
    if recipients == 1:
        return f"📏 {each}."
    return f"📏 {each} × {recipients} recipients = {info.segments * recipients} SMS parts."
