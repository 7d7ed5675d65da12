"""Chat text (HTML) for SMS routes on a send's card: segment counts and campaign names.

Driven by the route's channel (``ChannelSpec.sms``, ``phone_recipients``), so any provider's
SMS channel gets the same lines. Kept apart from :mod:`bot.render` so the card's SMS lines are
one call there; everything that comes from a user or a provider is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from bot.services.segments import describe
from i18n import _
from providers.registry import UnknownRoute, parse_route
from providers.sms_encoding import count_segments
from storage.models import Batch, Message


def sms_card_lines(batch: Batch, shown: Sequence[Message], total: int) -> list[str]:
    """Segment count (every SMS route) and campaign names (group sends) for a send's card."""
    try:
        route = parse_route(batch.route)
    except UnknownRoute:
        return []
    if not route.channel.sms:
        return []
    if any(m.text != batch.text for m in shown):  # a template filled per recipient
        return [_("📏 Personalised: each recipient's text has its own segment count")]
    info = count_segments(batch.text)
    size = escape(describe(info, batch.text))
    if route.channel.phone_recipients and total > 1:
        line = _("📏 {size} per SMS, {parts} parts in all").format(
            size=size, parts=info.segments * total
        )
    else:
        line = _("📏 {size} per SMS").format(size=size)
    lines = [line]
    if not route.channel.phone_recipients:
        for m in shown:
            if m.provider_ref:
                lines.append(
                    _("📣 {recipient}: campaign <code>{ref}</code>").format(
                        recipient=escape(m.recipient), ref=escape(m.provider_ref)
                    )
                )
    return lines
