"""Chat text (HTML) about scheduled sends: confirmations, the list, fired/failed/missed notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from bot.services.provider_schedules import holder
from bot.services.scheduling import recipients_of
from bot.services.when import Recurrence, describe_time
from storage.models import Schedule, ScheduleState

PREVIEW = 40
LIST_LIMIT = 20


def _preview(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(text.split())
    return escape(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _to(row: Schedule) -> str:
    people = recipients_of(row)
    shown = ", ".join(people[:3]) + (f" +{len(people) - 3} more" if len(people) > 3 else "")
    return f"<code>{escape(shown)}</code>"


def _repeat(row: Schedule) -> str:
    if not row.recurrence:
        return ""
    return f"repeats {escape(Recurrence(row.recurrence).label)} ({escape(row.timezone)})"


def confirmation(row: Schedule, *, verb: str = "Scheduled", kept_rule: bool = False) -> str:
    """The reply to /schedule and /reschedule: the exact local and UTC time, what and how."""
    lines = [
        f"⏰ {verb} send <b>#{row.id}</b> for {describe_time(row.next_run_at, row.timezone)}",
        f"via <code>{escape(row.route)}</code> to {_to(row)}: <i>{_preview(row.text)}</i>",
    ]
    if row.recurrence:
        after = ", then as before" if kept_rule else ""
        repeat = _repeat(row)
        lines.append(f"🔁 {repeat[:1].upper()}{repeat[1:]}{after}")
    if row.provider_ref:
        lines.append(
            f"📮 Held by {escape(holder(row))}: it goes out at that time even while the bot "
            "is down."
        )
        lines.append(f"New time: /reschedule {row.id} &lt;when&gt; · /scheduled")
    else:
        lines.append(
            f"Cancel: /cancel {row.id} · new time: /reschedule {row.id} &lt;when&gt; · /scheduled"
        )
    return "\n".join(lines)


def handed_over_note(row: Schedule) -> str:
    """The line(s) above the card of a /schedule handed to its provider."""
    if row.provider_ref:
        return confirmation(row)
    return (
        f"⚠️ Scheduled send #{row.id} could not be handed to {escape(holder(row))}: "
        f"{escape(row.note)}. The bot does not schedule it either (the card below shows each "
        f"recipient); /reschedule {row.id} &lt;when&gt; makes the bot send it at that time."
    )


def schedule_list(rows: Sequence[Schedule]) -> str:
    """/scheduled: the chat's open schedules, soonest first."""
    if not rows:
        return (
            "Nothing is scheduled in this chat. "
            "Add one with /schedule &lt;when&gt; &lt;to&gt; &lt;text&gt;."
        )
    lines = ["<b>Scheduled sends</b>"]
    for row in rows[:LIST_LIMIT]:
        sending = " · <i>sending now</i>" if row.state == ScheduleState.CLAIMED else ""
        if row.provider_ref:
            sending = f" · <i>at {escape(holder(row))}</i>"
        lines.append(f"<b>#{row.id}</b> {describe_time(row.next_run_at, row.timezone)}{sending}")
        repeat = f"\n    🔁 {_repeat(row)}" if row.recurrence else ""
        lines.append(
            f"    <code>{escape(row.route)}</code> → {_to(row)}: <i>{_preview(row.text)}</i>"
            + repeat
        )
    if len(rows) > LIST_LIMIT:
        lines.append(f"…and {len(rows) - LIST_LIMIT} more.")
    lines.append(
        "Cancel with the buttons or /cancel &lt;id&gt;; /reschedule &lt;id&gt; &lt;when&gt;."
    )
    return "\n".join(lines)


def _next(row: Schedule) -> str:
    if row.state == ScheduleState.PENDING and row.recurrence:
        return f"\nNext run: {describe_time(row.next_run_at, row.timezone)}."
    if row.state == ScheduleState.CANCELLED and row.recurrence:
        return "\nIt was cancelled: no further runs."
    return ""


def fired_note(row: Schedule, note: str) -> str:
    """The line above a fired schedule's status card."""
    extra = f" ({escape(note)})" if note else ""
    return f"⏰ Scheduled send #{row.id} fired{extra}.{_next(row)}"


def failed_text(row: Schedule, reason: str) -> str:
    """A run that could not be sent, with the reason (plain text)."""
    return f"⚠️ Scheduled send #{row.id} could not be sent: {escape(reason)}{_next(row)}"


def missed_text(row: Schedule, due: datetime, grace_minutes: float) -> str:
    """A run the bot was not running for, found later than the grace period."""
    head = (
        f"⌛ Scheduled send #{row.id} was due on {describe_time(due, row.timezone)}, but the "
        f"bot was not running then. It was found more than {grace_minutes:g} min late, "
        "so it was not sent."
    )
    if row.recurrence:
        return head + _next(row)
    return head + f" To send it later: /reschedule {row.id} &lt;when&gt;."


def quiet_held_text(row: Schedule, until: datetime) -> str:
    """A run that fell inside the chat's quiet hours: when it goes instead."""
    return (
        f"🌙 Scheduled send #{row.id} is due inside this chat's quiet hours; it waits until "
        f"{describe_time(until, row.timezone)}. To send it at once: /cancel {row.id}, then "
        "/send now …"
    )
