r"""What an SMS costs, told before and after a send: encoding and segment count.

GSM-7 texts take 160 characters in one SMS and 153 per part when longer; the extension
characters ``^ { } \\ [ ~ ] | €`` count double. One character outside GSM-7 (an emoji, a curly
quote) turns the whole text into UCS-2: 70 per SMS, 67 per part. The counting itself lives in
:mod:`providers.sms_encoding`, where the SMS adapter also decides its ``unicode`` flag.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def preview_personal(recipients: Sequence[str], texts: Sequence[str]) -> str:
    """The line shown before a personalised SMS send: parts per recipient and in total.

    Raises:
        BadInput: one recipient's text would take more than 10 parts (naming the recipient).

    """
    infos: dict[str, SmsSegments] = {}
    for recipient, text in zip(recipients, texts, strict=True):
        if text not in infos:
            try:
                infos[text] = sms_segments(text)
            except BadInput as exc:
                raise BadInput(f"For {escape(recipient)}: {exc.message}") from None
    total = sum(infos[t].segments for t in texts)
    longest = max(infos, key=lambda t: (infos[t].segments, infos[t].characters))
    low = min(i.segments for i in infos.values())
    high = infos[longest].segments
    each = f"{low}" if low == high else f"{low}–{high}"
    parts = "segment" if high == 1 else "segments"
    line = (
        f"📏 Personalised: {each} {parts} per recipient (longest: "
        f"{describe(infos[longest], longest)}) × {len(texts)} recipients = {total} SMS parts."
    )
    wide = sum(1 for t in texts if infos[t].encoding is Encoding.UCS2)
    if wide and wide < len(texts):
        line += f" {wide} of the texts are UCS-2."
    return line
