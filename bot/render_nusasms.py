"""Chat text (HTML) for NusaSMS features: SMS segments and campaigns on cards, /check results.

Kept apart from :mod:`bot.render` so the card's SMS lines are one call there; everything that
comes from a user or a provider is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from bot.services.checks import CheckAnswer, CheckSubmission
from bot.services.segments import describe
from providers.registry import UnknownRoute, parse_route
from providers.sms_encoding import count_segments
from storage.models import Batch, Message

_RESULT_ICONS = {True: "✅", False: "❌", None: "❔"}


def sms_card_lines(batch: Batch, shown: Sequence[Message], total: int) -> list[str]:
    """Segment count (every SMS route) and campaign names (group sends) for a send's card."""
    try:
        route = parse_route(batch.route)
    except UnknownRoute:
        return []
    if not route.channel.sms:
        return []
    info = count_segments(batch.text)
    line = f"📏 {escape(describe(info, batch.text))} per SMS"
    if route.channel.phone_recipients and total > 1:
        line += f", {info.segments * total} parts in all"
    lines = [line]
    if not route.channel.phone_recipients:
        for m in shown:
            if m.provider_ref:
                lines.append(
                    f"📣 {escape(m.recipient)}: campaign <code>{escape(m.provider_ref)}</code>"
                )
    return lines


def check_submitted(sub: CheckSubmission) -> str:
    """The reply to /check: what was submitted and where the results will appear."""
    requests = "request" if sub.requests == 1 else "requests"
    count = len(sub.submitted)
    numbers = "number" if count == 1 else "numbers"
    lines = [f"🔎 Sent {count} {numbers} to NusaSMS's WhatsApp check ({sub.requests} {requests})."]
    if sub.failure:
        lines.append(
            f"⚠️ {len(sub.numbers) - count} more were not submitted: {escape(sub.failure)}"
        )
    if sub.callback:
        lines.append("The results will be posted here as soon as NusaSMS reports them.")
    else:
        lines.append(
            "NusaSMS delivers the results only to a callback URL, and this bot runs without "
            "WEBHOOK_URL (webhook mode), so they cannot be shown here. Set WEBHOOK_URL to get "
            "them in the chat."
        )
    return "\n".join(lines)


def check_answer(answer: CheckAnswer) -> str:
    """Results of a /check as they arrive."""
    lines = ["<b>WhatsApp number check</b>"]
    for r in answer.results:
        if r.on_whatsapp is None:
            verdict = f"unknown ({escape(r.status)})"
        else:
            verdict = "on WhatsApp" if r.on_whatsapp else "not on WhatsApp"
        lines.append(f"{_RESULT_ICONS[r.on_whatsapp]} <code>{escape(r.number)}</code> {verdict}")
    if answer.answered < answer.total:
        lines.append(f"{answer.answered} of {answer.total} numbers answered so far.")
    return "\n".join(lines)
