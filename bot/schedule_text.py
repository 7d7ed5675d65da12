"""Chat text (HTML) about scheduled sends: confirmations, the list, fired/failed/missed notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from bot.services.provider_schedules import holder
from bot.services.scheduling import recipients_of
from bot.services.when import Recurrence, describe_time
from i18n import _
from storage.models import Schedule, ScheduleState

PREVIEW = 40
LIST_LIMIT = 20


def _preview(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(text.split())
    return escape(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _to(row: Schedule) -> str:
    people = recipients_of(row)
    shown = ", ".join(people[:3])
    if len(people) > 3:
        shown = _("{numbers} +{count} more").format(numbers=shown, count=len(people) - 3)
    return f"<code>{escape(shown)}</code>"


def _repeat(row: Schedule) -> str:
    if not row.recurrence:
        return ""
    return _("repeats {rule} ({zone})").format(
        rule=escape(Recurrence(row.recurrence).label), zone=escape(row.timezone)
    )


def confirmation(row: Schedule, *, rescheduled: bool = False, kept_rule: bool = False) -> str:
    """The reply to /schedule and /reschedule: the exact local and UTC time, what and how."""
    values = {
        "id": row.id,
        "when": describe_time(row.next_run_at, row.timezone),
        "rule": escape(Recurrence(row.recurrence).label) if row.recurrence else "",
        "zone": escape(row.timezone),
        "holder": escape(holder(row)) if row.provider_ref else "",
    }
    head = (
        _("⏰ Rescheduled send <b>#{id}</b> for {when}")
        if rescheduled
        else _("⏰ Scheduled send <b>#{id}</b> for {when}")
    )
    lines = [
        head.format(**values),
        _("via <code>{route}</code> to {to}: <i>{text}</i>").format(
            route=escape(row.route), to=_to(row), text=_preview(row.text)
        ),
    ]
    if row.recurrence:
        repeat = (
            _("🔁 Repeats {rule} ({zone}), then as before")
            if kept_rule
            else _("🔁 Repeats {rule} ({zone})")
        )
        lines.append(repeat.format(**values))
    if row.provider_ref:
        lines.append(
            _("📮 Held by {holder}: it goes out at that time even while the bot is down.").format(
                **values
            )
        )
        lines.append(_("New time: /reschedule {id} &lt;when&gt; · /scheduled").format(**values))
    else:
        lines.append(
            _(
                "Cancel: /cancel {id} · new time: /reschedule {id} &lt;when&gt; · /scheduled"
            ).format(**values)
        )
    return "\n".join(lines)


def handed_over_note(row: Schedule) -> str:
    """The line(s) above the card of a /schedule handed to its provider."""
    if row.provider_ref:
        return confirmation(row)
    return _(
        "⚠️ Scheduled send #{id} could not be handed to {holder}: "
        "{reason}. The bot does not schedule it either (the card below shows each "
        "recipient); /reschedule {id} &lt;when&gt; makes the bot send it at that time."
    ).format(id=row.id, holder=escape(holder(row)), reason=escape(row.note))


def schedule_list(rows: Sequence[Schedule]) -> str:
    """/scheduled: the chat's open schedules, soonest first."""
    if not rows:
        return _(
            "Nothing is scheduled in this chat. "
            "Add one with /schedule &lt;when&gt; &lt;to&gt; &lt;text&gt;."
        )
    lines = [_("<b>Scheduled sends</b>")]
    for row in rows[:LIST_LIMIT]:
        sending = " · " + _("<i>sending now</i>") if row.state == ScheduleState.CLAIMED else ""
        if row.provider_ref:
            sending = " · " + _("<i>at {holder}</i>").format(holder=escape(holder(row)))
        lines.append(f"<b>#{row.id}</b> {describe_time(row.next_run_at, row.timezone)}{sending}")
        repeat = f"\n    🔁 {_repeat(row)}" if row.recurrence else ""
        lines.append(
            f"    <code>{escape(row.route)}</code> → {_to(row)}: <i>{_preview(row.text)}</i>"
            + repeat
        )
    if len(rows) > LIST_LIMIT:
        lines.append(_("…and {count} more.").format(count=len(rows) - LIST_LIMIT))
    lines.append(
        _("Cancel with the buttons or /cancel &lt;id&gt;; /reschedule &lt;id&gt; &lt;when&gt;.")
    )
    return "\n".join(lines)


def _next(row: Schedule) -> str:
    if row.state == ScheduleState.PENDING and row.recurrence:
        return "\n" + _("Next run: {when}.").format(
            when=describe_time(row.next_run_at, row.timezone)
        )
    if row.state == ScheduleState.CANCELLED and row.recurrence:
        return "\n" + _("It was cancelled: no further runs.")
    return ""


def fired_note(row: Schedule, note: str) -> str:
    """The line above a fired schedule's status card."""
    if note:
        text = _("⏰ Scheduled send #{id} fired ({note}).").format(id=row.id, note=escape(note))
    else:
        text = _("⏰ Scheduled send #{id} fired.").format(id=row.id)
    return text + _next(row)


def failed_text(row: Schedule, reason: str) -> str:
    """A run that could not be sent, with the reason (plain text)."""
    text = _("⚠️ Scheduled send #{id} could not be sent: {reason}").format(
        id=row.id, reason=escape(reason)
    )
    return text + _next(row)


def missed_text(row: Schedule, due: datetime, grace_minutes: float) -> str:
    """A run the bot was not running for, found later than the grace period."""
    values = {"id": row.id, "when": describe_time(due, row.timezone), "late": grace_minutes}
    if row.recurrence:
        head = _(
            "⌛ Scheduled send #{id} was due on {when}, but the bot was not running then. "
            "It was found more than {late:g} min late, so it was not sent."
        )
        return head.format(**values) + _next(row)
    return _(
        "⌛ Scheduled send #{id} was due on {when}, but the bot was not running then. "
        "It was found more than {late:g} min late, so it was not sent. "
        "To send it later: /reschedule {id} &lt;when&gt;."
    ).format(**values)


def quiet_held_text(row: Schedule, until: datetime) -> str:
    """A run that fell inside the chat's quiet hours: when it goes instead."""
    return _(
        "🌙 Scheduled send #{id} is due inside this chat's quiet hours; it waits until "
        "{when}. To send it at once: /cancel {id}, then /send now …"
    ).format(id=row.id, when=describe_time(until, row.timezone))
