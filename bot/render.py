"""Chat text in HTML parse mode: status cards, histories, balances. Everything is escaped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from bot.render_sms import sms_card_lines
from bot.services.accounts import BalanceReport
from i18n import N_, _, ngettext
from providers.base import BalanceKind, DeliveryState
from providers.registry import provider_names
from storage.models import Batch, Credential, Message, StatusEvent

ICONS: dict[str, str] = {
    DeliveryState.QUEUED: "⏳",
    DeliveryState.UNKNOWN: "❓",
    DeliveryState.ACCEPTED: "📥",
    DeliveryState.SENT: "📤",
    DeliveryState.DELIVERED: "✅",
    DeliveryState.READ: "👀",
    DeliveryState.FAILED: "❌",
    DeliveryState.ABORTED: "🚫",
    DeliveryState.UNDELIVERED: "⚠️",
    DeliveryState.EXPIRED: "⌛",
}
# What a state is called in a chat; the stored value stays English (it is also typed in
# filters such as ``state=failed``), only its display is translated.
STATE_LABELS: dict[str, str] = {
    DeliveryState.QUEUED: N_("queued"),
    DeliveryState.UNKNOWN: N_("unknown"),
    DeliveryState.ACCEPTED: N_("accepted"),
    DeliveryState.SENT: N_("sent"),
    DeliveryState.DELIVERED: N_("delivered"),
    DeliveryState.READ: N_("read"),
    DeliveryState.FAILED: N_("failed"),
    DeliveryState.ABORTED: N_("aborted"),
    DeliveryState.UNDELIVERED: N_("undelivered"),
    DeliveryState.EXPIRED: N_("expired"),
}
CARD_LINES = 10


def icon(state: str) -> str:
    """The emoji of a state (a dot for states this version does not know)."""
    return ICONS.get(state, "•")


def state_label(state: str) -> str:
    """A state as the chat reads it, escaped (a state this version does not know, as stored)."""
    label = STATE_LABELS.get(state)
    return escape(_(label) if label is not None else state)


def local_time(at: datetime, zone: str) -> str:
    """A stored UTC time shown in the chat's time zone."""
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def message_line(message: Message, batch_route: str = "") -> str:
    """``#12 ✅ delivered → 6281…`` with the provider's reason when it failed.

    A message that failed over to another route than its send's names it.
    """
    line = (
        f"<code>#{message.id}</code> {icon(message.state)} {state_label(message.state)} → "
        f"<code>{escape(message.recipient)}</code>"
    )
    route = f"{message.provider}:{message.channel}"
    if batch_route and route != batch_route:
        line += " " + _("via <code>{route}</code>").format(route=escape(route))
    if message.detail and DeliveryState(message.state) in (
        DeliveryState.FAILED,
        DeliveryState.ABORTED,
        DeliveryState.UNDELIVERED,
        DeliveryState.EXPIRED,
        DeliveryState.UNKNOWN,
    ):
        # A provider's status meaning is stored in English; its translation is looked up here.
        line += f"\n    <i>{escape(_(message.detail))}</i>"
    return line


def status_card(batch: Batch, messages: Sequence[Message]) -> str:
    """The card posted after a send and edited as states move."""
    counts = Counter(m.state for m in messages)
    return card_text(batch, counts, messages[:CARD_LINES], len(messages))


def card_text(
    batch: Batch, counts: Mapping[str, int], shown: Sequence[Message], total: int
) -> str:
    """A card from counts per state and its first messages (a large send is never loaded)."""
    head = card_head(batch)
    if batch.schedule_id is not None:  # kept on every edit, unlike the note of the first post
        head += " · " + _("⏰ scheduled send #{id}").format(id=batch.schedule_id)
    lines = [head, *sms_card_lines(batch, shown[:CARD_LINES], total)]
    if total > 1:
        lines.append(
            " · ".join(f"{icon(s)} {state_label(s)} {n}" for s, n in sorted(counts.items()))
        )
    lines.extend(message_line(m, batch.route) for m in shown[:CARD_LINES])
    if total > min(len(shown), CARD_LINES):
        more = total - min(len(shown), CARD_LINES)
        lines.append(_("…and {count} more (Details, /history).").format(count=more))
    return "\n".join(lines)


def card_head(batch: Batch) -> str:
    """``Send 12 via <provider>:<channel> by @ann``: the first line of a send's card."""
    values = {
        "id": batch.id,
        "route": escape(batch.route),
        "name": escape(batch.created_by_name or ""),
    }
    if batch.created_by_name:
        return _("<b>Send {id}</b> via <code>{route}</code> by {name}").format(**values)
    return _("<b>Send {id}</b> via <code>{route}</code>").format(**values)


def mention(user_id: int, name: str) -> str:
    """An HTML mention that notifies the user (works without a @username)."""
    return (
        f'<a href="tg://user?id={user_id}">{escape(name or _("user {id}").format(id=user_id))}</a>'
    )


def failure_notice(batch: Batch, failures: Sequence[tuple[Message, StatusEvent]]) -> str:
    """A new message telling the sender that messages of their send finally failed."""
    count = len({m.id for m, _event in failures})
    lines = [
        ngettext(
            "⚠️ {who}: a message of send {id} via <code>{route}</code> ended without delivery.",
            "⚠️ {who}: {count} messages of send {id} via <code>{route}</code> ended without "
            "delivery.",
            count,
        ).format(
            who=mention(batch.created_by, batch.created_by_name),
            count=count,
            id=batch.id,
            route=escape(batch.route),
        )
    ]
    for message, event in failures[:CARD_LINES]:
        reason = f": <i>{escape(_(event.detail))}</i>" if event.detail else ""
        lines.append(
            f"<code>#{message.id}</code> {icon(event.state)} {state_label(event.state)} → "
            f"<code>{escape(message.recipient)}</code>{reason}"
        )
    if len(failures) > CARD_LINES:
        lines.append(_("…and {count} more (/history).").format(count=len(failures) - CARD_LINES))
    return "\n".join(lines)


def card_details(batch: Batch, messages: Sequence[Message], total: int, limit: int) -> str:
    """Every recipient of a send with its state, as many as fit one Telegram message."""
    lines = [
        ngettext(
            "<b>Send {id}</b>: {count} recipient", "<b>Send {id}</b>: {count} recipients", total
        ).format(id=batch.id, count=total)
    ]
    size = len(lines[0])
    shown = 0
    for message in messages:
        line = message_line(message)
        if size + len(line) + 1 > limit:
            break
        lines.append(line)
        size += len(line) + 1
        shown += 1
    if shown < total:
        lines.append(_("…and {count} more: /export has them all.").format(count=total - shown))
    return "\n".join(lines)


def status_details(message: Message, history: Sequence[StatusEvent], zone: str) -> str:
    """One message with its whole history, for /status <id>."""
    lines = [
        _("<b>Message #{id}</b> via <code>{route}</code>").format(
            id=message.id, route=escape(f"{message.provider}:{message.channel}")
        ),
        _("To <code>{recipient}</code>: {icon} <b>{state}</b>").format(
            recipient=escape(message.recipient),
            icon=icon(message.state),
            state=state_label(message.state),
        ),
    ]
    if message.provider_ref:
        lines.append(_("Provider ref <code>{ref}</code>").format(ref=escape(message.provider_ref)))
    if message.detail:
        lines.append(f"<i>{escape(_(message.detail))}</i>")
    lines.append("")
    lines.append(_("History ({zone}):").format(zone=escape(zone)))
    for event in history:
        extra = f" ({escape(event.provider_status)})" if event.provider_status else ""
        lines.append(
            f"{local_time(event.at, zone)} {icon(event.state)} {state_label(event.state)}{extra}"
            f" · {escape(event.source)}"
        )
    return "\n".join(lines)


def message_list(messages: Sequence[Message], zone: str, *, matching: str = "") -> str:
    """Recent messages, newest first, for /status and /history.

    ``matching``: the filters they were chosen by, as the chat wrote them (escaped).
    """
    if not messages and matching:
        return _("No message of this chat matches {filters}.").format(filters=matching)
    if not messages:
        return _("No messages yet in this chat. Send one with /send.")
    lines = [
        _("<b>Latest messages</b> matching {filters}").format(filters=matching)
        if matching
        else _("<b>Latest messages</b>")
    ]
    for m in messages:
        preview = m.text if len(m.text) <= 30 else m.text[:29] + "…"
        lines.append(
            f"<code>#{m.id}</code> {local_time(m.created_at, zone)} {icon(m.state)} "
            f"{state_label(m.state)} → <code>{escape(m.recipient)}</code> "
            f"<i>{escape(preview)}</i>"
        )
    lines.append(_("Details: /status &lt;id&gt;"))
    return "\n".join(lines)


def balances(reports: Sequence[BalanceReport]) -> str:
    """Balances of every provider asked."""
    lines = []
    for report in reports:
        lines.append(f"<b>{escape(report.provider.display)}</b>")
        kind = report.provider.capabilities.balance
        if kind == BalanceKind.NONE:
            lines.append("  " + _("has no balance endpoint: check the balance on its website"))
            continue
        if kind == BalanceKind.TRANSACTIONS:
            lines.append("  " + _("no balance endpoint; its recent transactions:"))
        if report.error:
            lines.append(f"  ⚠️ {escape(report.error)}")
        for b in report.balances:
            amount = f"{b.amount:,.0f}" if b.amount == int(b.amount) else f"{b.amount:,.2f}"
            expiry = (
                " " + _("(expires {date})").format(date=b.expires.isoformat()) if b.expires else ""
            )
            lines.append(f"  {escape(b.name)}: {amount} {escape(b.unit)}{expiry}")
        if not report.error and not report.balances:
            lines.append(
                "  " + _("no transactions yet")
                if kind == BalanceKind.TRANSACTIONS
                else "  " + _("no balances reported")
            )
    return "\n".join(lines)


def providers_overview(
    credentials: Sequence[Credential], default_route: str | None, zone: str
) -> str:
    """Connected providers with their last check, and the chat's default route."""
    if not credentials:
        lines = [
            _(
                "No provider is connected in this chat. Connect one with "
                "/connect &lt;provider&gt; ({names})."
            ).format(names=provider_names())
        ]
    else:
        lines = [_("<b>Connected providers</b>")]
        for c in credentials:
            check = _("✅ ok") if c.check_ok else f"⚠️ {escape(c.check_detail)}"
            when = local_time(c.checked_at, zone) if c.checked_at else _("never")
            account = f" ({escape(c.account)})" if c.account else ""
            lines.append(
                _("• {provider}: last check {when}, {check}").format(
                    provider=escape(c.provider) + account, when=when, check=check
                )
            )
    route = f"<code>{escape(default_route)}</code>" if default_route else _("not set (/use)")
    lines.append(_("Default route: {route}").format(route=route))
    return "\n".join(lines)
