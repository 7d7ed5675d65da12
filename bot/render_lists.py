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
from i18n import _, ngettext
from providers.sms_encoding import count_segments
from storage.models import RecipientList, Template

LIMIT = 3800  # of Telegram's 4,096 characters, with room for the last line
PREVIEW = 50


def _numbers(n: int) -> str:
    """``1 number``, ``2,000 numbers``."""
    return ngettext("{count:,} number", "{count:,} numbers", n).format(count=n)


def _lines(n: int) -> str:
    """``1 line``, ``2,000 lines``."""
    return ngettext("{count:,} line", "{count:,} lines", n).format(count=n)


def _preview(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(text.split())
    return escape(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _problems(problems: Problems, what: str) -> list[str]:
    """``what`` is the translated heading, with a ``{count}`` placeholder."""
    if not problems.count:
        return []
    lines = [what.format(count=problems.count), *problems.shown]
    if problems.count > len(problems.shown):
        more = problems.count - len(problems.shown)
        lines.append(_("…and {count:,} more.").format(count=more))
    return lines


def fields_text(fields: Sequence[str], limit: int = 10) -> str:
    """``{name} {city}``: a template's placeholders, the first ``limit`` of them (HTML)."""
    shown = " ".join("{" + f + "}" for f in fields[:limit])
    more = (
        " " + _("…and {count} more").format(count=len(fields) - limit)
        if len(fields) > limit
        else ""
    )
    return escape(shown) + more


def _columns(columns: Sequence[str]) -> str:
    return ", ".join(echo(c, limit=30) for c in columns) if columns else _("none")


def report_lines(report: UploadReport) -> list[str]:
    """What the file held: numbers, columns, invalid and duplicate lines."""
    lines = [
        _("{numbers} from {lines}; columns kept: {columns}.").format(
            numbers=_numbers(report.stored),
            lines=_lines(report.lines),
            columns=_columns(report.columns),
        )
    ]
    lines += _problems(report.invalid, _("⚠️ Invalid lines, not stored ({count:,}):"))
    lines += _problems(report.duplicates, _("🔁 Duplicate lines, stored once ({count:,}):"))
    if report.needs_country:
        lines.append(_(COUNTRY_HINT))
    return lines


def uploaded(upload: Upload, zone: str) -> str:
    """The reply to /list add: stored, or a question whether to replace."""
    report = upload.report
    name = escape(report.name)
    if upload.replaces is None:
        head = _("📋 List <b>{name}</b> stored: use it as <code>list:{name}</code>.").format(
            name=name
        )
        return "\n".join([head, *report_lines(report)])
    old = upload.replaces
    return "\n".join(
        [
            _("📋 A list <b>{name}</b> exists already: {numbers}, updated {when}.").format(
                name=name,
                numbers=_numbers(old.size),
                when=describe_time(old.updated_at, zone),
            ),
            _("The new file:"),
            *report_lines(report),
            _(
                "Replace <b>{name}</b> with it? Scheduled sends keep the numbers they were "
                "made with either way."
            ).format(name=name),
        ]
    )


def decided(outcome: Decided, by: str) -> str:
    """The question's message once Replace or Keep was pressed."""
    name = escape(outcome.name)
    who = escape(by)
    if outcome.decision is Decision.REPLACED:
        return _(
            "📋 List <b>{name}</b> replaced by {who}: {numbers} (it had "
            "{old:,}). Scheduled sends keep the numbers they were made with."
        ).format(name=name, who=who, numbers=_numbers(outcome.size), old=outcome.old_size)
    if outcome.decision is Decision.KEPT:
        return _(
            "📋 List <b>{name}</b> kept as it was ({numbers}), by {who}; "
            "the new file was not stored."
        ).format(name=name, who=who, numbers=_numbers(outcome.old_size))
    if outcome.decision is Decision.ALREADY_REPLACED:
        return _("📋 List <b>{name}</b> was replaced already ({numbers}).").format(
            name=name, numbers=_numbers(outcome.size)
        )
    return _("📋 List <b>{name}</b> was kept already; the new file was not stored.").format(
        name=name
    )


def list_table(rows: Sequence[RecipientList], zone: str) -> str:
    """/lists: name, size, columns, last update."""
    if not rows:
        return _(
            "This chat has no recipient lists. Reply to a .csv or .txt file of numbers with "
            "/list add &lt;name&gt; to make one; then send to it with list:&lt;name&gt;."
        )
    lines = [_("<b>Recipient lists</b> ({count})").format(count=len(rows))]
    for row in rows:
        line = _(
            "• <code>list:{name}</code> — {numbers} · columns: {columns} · updated {when}"
        ).format(
            name=escape(row.name),
            numbers=_numbers(row.size),
            columns=_columns(row.columns),
            when=describe_time(row.updated_at, zone),
        )
        if sum(len(x) + 1 for x in lines) + len(line) > LIMIT:
            lines.append(_("…and {count} more.").format(count=len(rows) - len(lines) + 1))
            break
        lines.append(line)
    return "\n".join(lines)


def deleted(row: RecipientList) -> str:
    """The reply to /list del."""
    return _(
        "🗑 List <b>{name}</b> deleted ({numbers}). Scheduled sends "
        "made from it keep their numbers."
    ).format(name=escape(row.name), numbers=_numbers(row.size))


def template_table(rows: Sequence[Template]) -> str:
    """/templates: name, placeholders and a preview of the text."""
    if not rows:
        return _(
            "This chat has no templates. Add one with /template add &lt;name&gt; &lt;text&gt;, "
            "e.g. /template add promo Hi {name}, 20% off today; send it with "
            "/send &lt;to&gt; template:promo."
        )
    lines = [_("<b>Templates</b> ({count})").format(count=len(rows))]
    for row in rows:
        fields = placeholders(row.text)
        line = f"• <code>{escape(row.name)}</code>: <i>{_preview(row.text)}</i>"
        if fields:
            line += " · " + _("fills {fields}").format(fields=fields_text(fields, 5))
        if sum(len(x) + 1 for x in lines) + len(line) > LIMIT:
            lines.append(_("…and {count} more.").format(count=len(rows) - len(lines) + 1))
            break
        lines.append(line)
    return "\n".join(lines)


def template_saved(row: Template, old: str | None) -> str:
    """The reply to /template add: the template, its placeholders and its SMS size."""
    fields = placeholders(row.text)
    head = (
        _("📝 Template <b>{name}</b> replaced: <i>{text}</i>")
        if old is not None
        else _("📝 Template <b>{name}</b> saved: <i>{text}</i>")
    )
    lines = [head.format(name=escape(row.name), text=_preview(row.text, 200))]
    if fields:
        lines.append(_("Placeholders: {fields}.").format(fields=fields_text(fields, 30)))
    info = count_segments(row.text)
    size = escape(describe(info, row.text))
    lines.append(
        _("📏 As SMS: {size} before filling; the values change it.").format(size=size)
        if fields
        else _("📏 As SMS: {size} before filling.").format(size=size)
    )
    lines.append(
        _("Send it with /send &lt;to&gt; template:{name} [key=value …].").format(
            name=escape(row.name)
        )
    )
    return "\n".join(lines)


def addressed_note(addressed: Addressed) -> str:
    """Lines saying where a scheduled send's numbers and texts come from."""
    lines = [
        _(
            "📋 {numbers} of list <b>{name}</b> as they are now: "
            "replacing or deleting the list later does not change this send."
        ).format(numbers=_numbers(use.size), name=escape(use.name))
        for use in addressed.lists
    ]
    if addressed.texts is not None and addressed.template:
        lines.append(
            _("📝 Template <b>{name}</b>, filled for each recipient now.").format(
                name=escape(addressed.template)
            )
        )
    return "\n".join(lines)
