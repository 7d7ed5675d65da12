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
from i18n import _, ngettext
from providers.sms_encoding import Encoding, SmsSegments, count_segments, non_gsm7

MAX_SEGMENTS = 10
_SHOWN_CULPRITS = 5


def sms_segments(text: str) -> SmsSegments:
    """Segments of ``text``, or ``BadInput`` when it would take more than 10 SMS parts."""
    info = count_segments(text)
    if info.segments > MAX_SEGMENTS:
        if info.encoding is Encoding.UCS2:
            refusal = _(
                "This SMS would take {count} parts ({described}); at most {limit} parts are "
                "sent. Shorten the text or avoid what forces UCS-2."
            )
        else:
            refusal = _(
                "This SMS would take {count} parts ({described}); at most {limit} parts are "
                "sent. Shorten the text."
            )
        raise BadInput(
            refusal.format(
                count=info.segments,
                described=escape(describe(info, text)),
                limit=MAX_SEGMENTS,
            )
        )
    return info


def describe(info: SmsSegments, text: str) -> str:
    """``2 segments (GSM-7, 200 characters)``, naming what forces UCS-2 (plain text)."""
    parts = ngettext("{count} segment", "{count} segments", info.segments).format(
        count=info.segments
    )
    encoding = info.encoding.value
    if info.encoding is Encoding.UCS2:
        culprits = non_gsm7(text)
        shown = " ".join(culprits[:_SHOWN_CULPRITS]) + (
            " …" if len(culprits) > _SHOWN_CULPRITS else ""
        )
        encoding = _("{encoding} because of {characters}").format(
            encoding=encoding, characters=shown
        )
    chars = ngettext("{count} character", "{count} characters", info.characters).format(
        count=info.characters
    )
    return f"{parts} ({encoding}, {chars})"


def preview(info: SmsSegments, text: str, *, recipients: int, group: bool) -> str:
    """The line shown before an SMS send: per message, and in total when it is known."""
    each = describe(info, text)
    if group:
        return _("📏 {each} per recipient of the group.").format(each=each)
    if recipients == 1:
        return f"📏 {each}."
    return _("📏 {each} × {recipients} recipients = {total} SMS parts.").format(
        each=each, recipients=recipients, total=info.segments * recipients
    )


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
                raise BadInput(
                    _("For {recipient}: {reason}").format(
                        recipient=escape(recipient), reason=exc.message
                    )
                ) from None
    total = sum(infos[t].segments for t in texts)
    longest = max(infos, key=lambda t: (infos[t].segments, infos[t].characters))
    low = min(i.segments for i in infos.values())
    high = infos[longest].segments
    each = f"{low}" if low == high else f"{low}–{high}"
    line = ngettext(
        "📏 Personalised: {each} segment per recipient (longest: {longest}) × {count} "
        "recipients = {total} SMS parts.",
        "📏 Personalised: {each} segments per recipient (longest: {longest}) × {count} "
        "recipients = {total} SMS parts.",
        high,
    ).format(each=each, longest=describe(infos[longest], longest), count=len(texts), total=total)
    wide = sum(1 for t in texts if infos[t].encoding is Encoding.UCS2)
    if wide and wide < len(texts):
        line += " " + _("{count} of the texts are UCS-2.").format(count=wide)
    return line
