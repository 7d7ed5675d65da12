"""Chat text (HTML) for /check: what was submitted, and the results as they arrive.

The provider is named by its display name, carried on the submission; everything that comes
from a user or a provider is escaped.
"""

from __future__ import annotations

from html import escape

from bot.services.checks import CheckAnswer, CheckSubmission
from i18n import _, ngettext

_RESULT_ICONS = {True: "✅", False: "❌", None: "❔"}


def check_submitted(sub: CheckSubmission) -> str:
    """The reply to /check: what was submitted and where the results will appear."""
    count = len(sub.submitted)
    provider = escape(sub.provider)
    requests = ngettext("{count} request", "{count} requests", sub.requests).format(
        count=sub.requests
    )
    lines = [
        ngettext(
            "🔎 Sent {count} number to {provider}'s WhatsApp check ({requests}).",
            "🔎 Sent {count} numbers to {provider}'s WhatsApp check ({requests}).",
            count,
        ).format(count=count, provider=provider, requests=requests)
    ]
    if sub.failure:
        lines.append(
            _("⚠️ {count} more were not submitted: {reason}").format(
                count=len(sub.numbers) - count, reason=escape(sub.failure)
            )
        )
    if sub.callback:
        lines.append(
            _("The results will be posted here as soon as {provider} reports them.").format(
                provider=provider
            )
        )
    else:
        lines.append(
            _(
                "{provider} delivers the results only to a callback URL, and this bot runs "
                "without WEBHOOK_URL (webhook mode), so they cannot be shown here. Set "
                "WEBHOOK_URL to get them in the chat."
            ).format(provider=provider)
        )
    return "\n".join(lines)


def check_answer(answer: CheckAnswer) -> str:
    """Results of a /check as they arrive."""
    lines = [_("<b>WhatsApp number check</b>")]
    for r in answer.results:
        if r.on_whatsapp is None:
            verdict = _("unknown ({status})").format(status=escape(r.status))
        else:
            verdict = _("on WhatsApp") if r.on_whatsapp else _("not on WhatsApp")
        lines.append(f"{_RESULT_ICONS[r.on_whatsapp]} <code>{escape(r.number)}</code> {verdict}")
    if answer.answered < answer.total:
        lines.append(
            _("{answered} of {total} numbers answered so far.").format(
                answered=answer.answered, total=answer.total
            )
        )
    return "\n".join(lines)
