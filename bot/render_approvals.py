"""Chat text (HTML) of approvals: the card with its buttons' outcome, and /approvals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from html import escape

from bot.services.approvals import UNKNOWN_SIZE
from bot.services.gate import SCHEDULE
from bot.services.multicasts import KIND as MULTICAST
from bot.services.when import describe_time, duration_label
from i18n import _, ngettext
from storage.models import Approval, ApprovalState


def who(name: str, user_id: int | None) -> str:
    """A member as the card names them (escaped)."""
    return escape(name or (str(user_id) if user_id is not None else "?"))


def what(row: Approval) -> str:
    """One line: what was asked for, to how many, on which route (HTML)."""
    route = escape(row.route)
    if row.kind == MULTICAST:
        return _("Multicast via <code>{route}</code> to a whole audience").format(route=route)
    if row.recipients == UNKNOWN_SIZE:
        people = _("a provider group (of unknown size)")
    else:
        people = ngettext("{count} recipient", "{count} recipients", row.recipients).format(
            count=f"{row.recipients:,}"
        )
    if row.kind == SCHEDULE:
        return _("Scheduled send via <code>{route}</code> to {people}").format(
            route=route, people=people
        )
    return _("Send via <code>{route}</code> to {people}").format(route=route, people=people)


def card_text(row: Approval, zone: str, expiry: timedelta) -> str:
    """The card of a waiting approval: what, who asked, until when."""
    lines = [
        _("⏳ <b>Awaiting approval #{id}</b>").format(id=row.id),
        what(row) + ".",
        _("Text: <i>{text}</i>").format(text=escape(row.preview)),
        _("Asked by {name}. Another admin approves or rejects; {name} may withdraw it.").format(
            name=who(row.requested_by_name, row.requested_by)
        ),
        _("Nothing is sent before approval. It expires after {span} ({at}).").format(
            span=duration_label(expiry), at=escape(describe_time(row.expires_at, zone))
        ),
    ]
    return "\n".join(lines)


def ended_text(row: Approval, expiry: timedelta) -> str:
    """The card once decided: approved, rejected, withdrawn or expired."""
    head = what(row) + "."
    decider = who(row.decided_by_name, row.decided_by)
    state = ApprovalState(row.state)
    if state in (ApprovalState.APPROVED, ApprovalState.DONE):
        line = _("✅ Approved by {name}; sending.").format(name=decider)
        if row.kind == SCHEDULE:
            line = _("✅ Approved by {name}; scheduled.").format(name=decider)
    elif state == ApprovalState.REJECTED:
        line = _("❌ Rejected by {name}; nothing was sent.").format(name=decider)
    elif state == ApprovalState.WITHDRAWN:
        line = _("↩️ Withdrawn by {name}; nothing was sent.").format(name=decider)
    else:
        line = _("⌛ Expired: nobody approved it within {span}; nothing was sent.").format(
            span=duration_label(expiry)
        )
    return "\n".join([_("Approval #{id}").format(id=row.id), head, line])


def waiting_list(rows: Sequence[Approval], zone: str) -> str:
    """/approvals: what waits in the chat."""
    if not rows:
        return _("Nothing waits for approval in this chat.")
    lines = [_("<b>Awaiting approval</b>")]
    for row in rows:
        lines.append(
            _("#{id} {what}, asked by {name}; expires {at}").format(
                id=row.id,
                what=what(row),
                name=who(row.requested_by_name, row.requested_by),
                at=escape(describe_time(row.expires_at, zone)),
            )
        )
    return "\n".join(lines)


def threshold_text(limit: int | None) -> str:
    """What /approval says the chat's setting is (after a change, or alone)."""
    if limit is None:
        return _(
            "Approvals are off: operators' sends go out without waiting. "
            "Usage: /approval &lt;n&gt;|off"
        )
    return ngettext(
        "Operators' sends to more than {count} recipient wait for another admin's approval "
        "(a provider group or a multicast always does). Turn it off with /approval off.",
        "Operators' sends to more than {count} recipients wait for another admin's approval "
        "(a provider group or a multicast always does). Turn it off with /approval off.",
        limit,
    ).format(count=f"{limit:,}")
