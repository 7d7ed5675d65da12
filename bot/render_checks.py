"""Chat text (HTML) for /check: what was submitted, and the results as they arrive.

The provider is named by its display name, carried on the submission; everything that comes
from a user or a provider is escaped.
"""

from __future__ import annotations

from html import escape

from bot.services.checks import CheckAnswer, CheckSubmission

_RESULT_ICONS = {True: "✅", False: "❌", None: "❔"}


def check_submitted(sub: CheckSubmission) -> str:
    """The reply to /check: what was submitted and where the results will appear."""
    requests = "request" if sub.requests == 1 else "requests"
    count = len(sub.submitted)
    numbers = "number" if count == 1 else "numbers"
    provider = escape(sub.provider)
    lines = [
        f"🔎 Sent {count} {numbers} to {provider}'s WhatsApp check ({sub.requests} {requests})."
    ]
    if sub.failure:
        lines.append(
            f"⚠️ {len(sub.numbers) - count} more were not submitted: {escape(sub.failure)}"
        )
    if sub.callback:
        lines.append(f"The results will be posted here as soon as {provider} reports them.")
    else:
        lines.append(
            f"{provider} delivers the results only to a callback URL, and this bot runs without "
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
