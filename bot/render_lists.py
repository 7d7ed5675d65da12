"""Chat text (HTML) for recipient lists and templates. Everything from a user is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from bot.services.addressing import Addressed
from bot.services.errors import echo
from bot.services.list_files import Problems
from bot.services.lists import COUNTRY_HINT, Decided, Decision, Upload, UploadReport
from bot.services.segments import describe
from bot.services.templates import placeholders
from bot.services.when import describe_time
from providers.sms_encoding import count_segments
from storage.models import RecipientList, Template

LIMIT = 3800  # of Telegram's 4,096 characters, with room for the last line
PREVIEW = 50


def _numbers(n: int) -> str:
    """``1 number``, ``2,000 numbers``."""
    return f"{n:,} number" + ("" if n == 1 else "s")


def _lines(n: int) -> str:
    """``1 line``, ``2,000 lines``."""
    return f"{n:,} line" + ("" if n == 1 else "s")


def _preview(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(text.split())
    return escape(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _problems(problems: Problems, what: str) -> list[str]:
    if not problems.count:
        return []
    lines = [f"{what} ({problems.count:,}):", *problems.shown]
    if problems.count > len(problems.shown):
        lines.append(f"…and {problems.count - len(problems.shown):,} more.")
    return lines


def fields_text(fields: Sequence[str], limit: int = 10) -> str:
    """``{name} {city}``: a template's placeholders, the first ``limit`` of them (HTML)."""
    shown = " ".join("{" + f + "}" for f in fields[:limit])
    more = f" …and {len(fields) - limit} more" if len(fields) > limit else ""
    return escape(shown) + more


def _columns(columns: Sequence[str]) -> str:
    return ", ".join(echo(c, limit=30) for c in columns) if columns else "none"


def report_lines(report: UploadReport) -> list[str]:
    """What the file held: numbers, columns, invalid and duplicate lines."""
    lines = [
        f"{_numbers(report.stored)} from {_lines(report.lines)}; columns kept: "
        f"{_columns(report.columns)}."
    ]
    lines += _problems(report.invalid, "⚠️ Invalid lines, not stored")
    lines += _problems(report.duplicates, "🔁 Duplicate lines, stored once")
    if report.needs_country:
        lines.append(COUNTRY_HINT)
    return lines


def uploaded(upload: Upload, zone: str) -> str:
    """The reply to /list add: stored, or a question whether to replace."""
    report = upload.report
    name = escape(report.name)
    if upload.replaces is None:
        head = f"📋 List <b>{name}</b> stored: use it as <code>list:{name}</code>."
        return "\n".join([head, *report_lines(report)])
    old = upload.replaces
    return "\n".join(
        [
            f"📋 A list <b>{name}</b> exists already: {_numbers(old.size)}, updated "
            f"{describe_time(old.updated_at, zone)}.",
            "The new file:",
            *report_lines(report),
            f"Replace <b>{name}</b> with it? Scheduled sends keep the numbers they were "
            "made with either way.",
        ]
    )


def decided(outcome: Decided, by: str) -> str:
    """The question's message once Replace or Keep was pressed."""
    name = escape(outcome.name)
    who = escape(by)
    if outcome.decision is Decision.REPLACED:
        return (
            f"📋 List <b>{name}</b> replaced by {who}: {_numbers(outcome.size)} (it had "
            f"{outcome.old_size:,}). Scheduled sends keep the numbers they were made with."
        )
    if outcome.decision is Decision.KEPT:
        return (
            f"📋 List <b>{name}</b> kept as it was ({_numbers(outcome.old_size)}), by {who}; "
            "the new file was not stored."
        )
    if outcome.decision is Decision.ALREADY_REPLACED:
        return f"📋 List <b>{name}</b> was replaced already ({_numbers(outcome.size)})."
    return f"📋 List <b>{name}</b> was kept already; the new file was not stored."


def list_table(rows: Sequence[RecipientList], zone: str) -> str:
    """/lists: name, size, columns, last update."""
    if not rows:
        return (
            "This chat has no recipient lists. Reply to a .csv or .txt file of numbers with "
            "/list add &lt;name&gt; to make one; then send to it with list:&lt;name&gt;."
        )
    lines = [f"<b>Recipient lists</b> ({len(rows)})"]
    for row in rows:
        line = (
            f"• <code>list:{escape(row.name)}</code> — {_numbers(row.size)} · columns: "
            f"{_columns(row.columns)} · updated {describe_time(row.updated_at, zone)}"
        )
        if sum(len(x) + 1 for x in lines) + len(line) > LIMIT:
            lines.append(f"…and {len(rows) - len(lines) + 1} more.")
            break
        lines.append(line)
    return "\n".join(lines)


def deleted(row: RecipientList) -> str:
    """The reply to /list del."""
    return (
        f"🗑 List <b>{escape(row.name)}</b> deleted ({_numbers(row.size)}). Scheduled sends "
        "made from it keep their numbers."
    )


def template_table(rows: Sequence[Template]) -> str:
    """/templates: name, placeholders and a preview of the text."""
    if not rows:
        return (
            "This chat has no templates. Add one with /template add &lt;name&gt; &lt;text&gt;, "
            "e.g. /template add promo Hi {name}, 20% off today; send it with "
            "/send &lt;to&gt; template:promo."
        )
    lines = [f"<b>Templates</b> ({len(rows)})"]
    for row in rows:
        fields = placeholders(row.text)
        line = f"• <code>{escape(row.name)}</code>: <i>{_preview(row.text)}</i>"
        if fields:
            line += f" · fills {fields_text(fields, 5)}"
        if sum(len(x) + 1 for x in lines) + len(line) > LIMIT:
            lines.append(f"…and {len(rows) - len(lines) + 1} more.")
            break
        lines.append(line)
    return "\n".join(lines)


def template_saved(row: Template, old: str | None) -> str:
    """The reply to /template add: the template, its placeholders and its SMS size."""
    fields = placeholders(row.text)
    verb = "replaced" if old is not None else "saved"
    lines = [f"📝 Template <b>{escape(row.name)}</b> {verb}: <i>{_preview(row.text, 200)}</i>"]
    if fields:
        lines.append(f"Placeholders: {fields_text(fields, 30)}.")
    info = count_segments(row.text)
    lines.append(
        f"📏 As SMS: {escape(describe(info, row.text))} before filling"
        + ("; the values change it." if fields else ".")
    )
    lines.append(f"Send it with /send &lt;to&gt; template:{escape(row.name)} [key=value …].")
    return "\n".join(lines)


def addressed_note(addressed: Addressed) -> str:
    """Lines saying where a scheduled send's numbers and texts come from."""
    lines = [
        f"📋 {_numbers(use.size)} of list <b>{escape(use.name)}</b> as they are now: "
        "replacing or deleting the list later does not change this send."
        for use in addressed.lists
    ]
    if addressed.texts is not None and addressed.template:
        lines.append(
            f"📝 Template <b>{escape(addressed.template)}</b>, filled for each recipient now."
        )
    return "\n".join(lines)
