"""The audit log as one chat message (HTML, escaped, within Telegram's 4,096 characters)."""

from __future__ import annotations

from html import escape

from bot.render import local_time
from bot.services.reports import AuditPage
from i18n import N_, _
from storage.models import AuditOutcome

LIMIT = 3900  # room for the last line under Telegram's 4,096 characters
DETAIL_SHOWN = 160
OUTCOME_ICONS = {AuditOutcome.OK.value: "✅", AuditOutcome.REFUSED.value: "🚫"}
# The outcome as the chat reads it (the stored value stays English).
OUTCOME_LABELS = {AuditOutcome.OK.value: N_("ok"), AuditOutcome.REFUSED.value: N_("refused")}


def audit_text(page: AuditPage, zone: str) -> str:
    """Newest first: when, who, what, outcome and detail; older lines dropped to fit."""
    if not page.entries:
        return _("Nothing in this chat's audit log yet.")
    lines = [_("<b>Audit log</b>, newest first ({zone})").format(zone=escape(zone))]
    size = len(lines[0])
    for shown, entry in enumerate(page.entries):
        name = page.names.get(entry.user_id, "")
        who = (
            f"@{escape(name.lstrip('@'))} ({entry.user_id})"
            if name
            else _("user {id}").format(id=entry.user_id)
        )
        label = OUTCOME_LABELS.get(entry.outcome)
        outcome = _(label) if label is not None else entry.outcome
        detail = entry.detail if len(entry.detail) <= DETAIL_SHOWN else entry.detail[:159] + "…"
        line = (
            f"{local_time(entry.at, zone)} · {who} · <b>{escape(entry.action)}</b> · "
            f"{OUTCOME_ICONS.get(entry.outcome, '⚠️')} {escape(outcome)}"
            + (f"\n    <i>{escape(detail)}</i>" if detail else "")
        )
        if size + len(line) + 1 > LIMIT:
            left = len(page.entries) - shown
            lines.append(
                _("…and {count} older entries that do not fit: ask for fewer (/audit 10).").format(
                    count=left
                )
            )
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)
