"""The audit log as one chat message (HTML, escaped, within Telegram's 4,096 characters)."""

from __future__ import annotations

from html import escape

from bot.render import local_time
from bot.services.reports import AuditPage
from storage.models import AuditOutcome

LIMIT = 3900  # room for the last line under Telegram's 4,096 characters
DETAIL_SHOWN = 160
OUTCOME_ICONS = {AuditOutcome.OK.value: "✅", AuditOutcome.REFUSED.value: "🚫"}


def audit_text(page: AuditPage, zone: str) -> str:
    """Newest first: when, who, what, outcome and detail; older lines dropped to fit."""
    if not page.entries:
        return "Nothing in this chat's audit log yet."
    lines = [f"<b>Audit log</b>, newest first ({escape(zone)})"]
    size = len(lines[0])
    for shown, entry in enumerate(page.entries):
        name = page.names.get(entry.user_id, "")
        who = f"@{escape(name.lstrip('@'))} ({entry.user_id})" if name else f"user {entry.user_id}"
        detail = entry.detail if len(entry.detail) <= DETAIL_SHOWN else entry.detail[:159] + "…"
        line = (
            f"{local_time(entry.at, zone)} · {who} · <b>{escape(entry.action)}</b> · "
            f"{OUTCOME_ICONS.get(entry.outcome, '⚠️')} {escape(entry.outcome)}"
            + (f"\n    <i>{escape(detail)}</i>" if detail else "")
        )
        if size + len(line) + 1 > LIMIT:
            left = len(page.entries) - shown
            lines.append(f"…and {left} older entries that do not fit: ask for fewer (/audit 10).")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)
