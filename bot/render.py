"""Chat text in HTML parse mode: status cards, histories, balances. Everything is escaped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from bot.render_sms import sms_card_lines
from bot.services.accounts import BalanceReport
from i18n import _
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
CARD_LINES = 10


def icon(state: str) -> str:
    """The emoji of a state (a dot for states this version does not know)."""
    return ICONS.get(state, "•")


def local_time(at: datetime, zone: str) -> str:
    """A stored UTC time shown in the chat's time zone."""
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def message_line(message: Message, batch_route: str = "") -> str:
    """``#12 ✅ delivered → 6281…`` with the provider's reason when it failed.

    A message that failed over to another route than its send's names it.
    """
    line = (
        f"<code>#{message.id}</code> {icon(message.state)} {escape(message.state)} → "
        f"<code>{escape(message.recipient)}</code>"
    )
    route = f"{message.provider}:{message.channel}"
    if batch_route and route != batch_route:
        line += f" via <code>{escape(route)}</code>"
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
    head = f"<b>Send {batch.id}</b> via <code>{escape(batch.route)}</code>"
    if batch.created_by_name:
        head += f" by {escape(batch.created_by_name)}"
    if batch.schedule_id is not None:  # kept on every edit, unlike the note of the first post
        head += f" · ⏰ scheduled send #{batch.schedule_id}"
    lines = [head, *sms_card_lines(batch, shown[:CARD_LINES], total)]
    if total > 1:
        lines.append(" · ".join(f"{icon(s)} {escape(s)} {n}" for s, n in sorted(counts.items())))
    lines.extend(message_line(m, batch.route) for m in shown[:CARD_LINES])
    if total > min(len(shown), CARD_LINES):
        lines.append(f"…and {total - min(len(shown), CARD_LINES)} more (Details, /history).")
    return "\n".join(lines)


def mention(user_id: int, name: str) -> str:
    """An HTML mention that notifies the user (works without a @username)."""
    return f'<a href="tg://user?id={user_id}">{escape(name or f"user {user_id}")}</a>'


def failure_notice(batch: Batch, failures: Sequence[tuple[Message, StatusEvent]]) -> str:
    """A new message telling the sender that messages of their send finally failed."""
    count = len({m.id for m, _event in failures})
    what = "a message" if count == 1 else f"{count} messages"
    lines = [
        f"⚠️ {mention(batch.created_by, batch.created_by_name)}: {what} of send {batch.id} "
        f"via <code>{escape(batch.route)}</code> ended without delivery."
    ]
    for message, event in failures[:CARD_LINES]:
        reason = f": <i>{escape(_(event.detail))}</i>" if event.detail else ""
        lines.append(
            f"<code>#{message.id}</code> {icon(event.state)} {escape(event.state)} → "
            f"<code>{escape(message.recipient)}</code>{reason}"
        )
    if len(failures) > CARD_LINES:
        lines.append(f"…and {len(failures) - CARD_LINES} more (/history).")
    return "\n".join(lines)


def card_details(batch: Batch, messages: Sequence[Message], total: int, limit: int) -> str:
    """Every recipient of a send with its state, as many as fit one Telegram message."""
    lines = [f"<b>Send {batch.id}</b>: {total} recipients"]
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
        lines.append(f"…and {total - shown} more: /export has them all.")
    return "\n".join(lines)


def status_details(message: Message, history: Sequence[StatusEvent], zone: str) -> str:
    """One message with its whole history, for /status <id>."""
    lines = [
        f"<b>Message #{message.id}</b> via <code>{escape(message.provider)}:"
        f"{escape(message.channel)}</code>",
        f"To <code>{escape(message.recipient)}</code>: {icon(message.state)} "
        f"<b>{escape(message.state)}</b>",
    ]
    if message.provider_ref:
        lines.append(f"Provider ref <code>{escape(message.provider_ref)}</code>")
    if message.detail:
        lines.append(f"<i>{escape(_(message.detail))}</i>")
    lines.append("")
    lines.append(f"History ({escape(zone)}):")
    for event in history:
        extra = f" ({escape(event.provider_status)})" if event.provider_status else ""
        lines.append(
            f"{local_time(event.at, zone)} {icon(event.state)} {escape(event.state)}{extra}"
            f" · {escape(event.source)}"
        )
    return "\n".join(lines)


def message_list(messages: Sequence[Message], zone: str, *, matching: str = "") -> str:
    """Recent messages, newest first, for /status and /history.

    ``matching``: the filters they were chosen by, as the chat wrote them (escaped).
    """
    if not messages and matching:
        return f"No message of this chat matches {matching}."
    if not messages:
        return "No messages yet in this chat. Send one with /send."
    lines = [
        f"<b>Latest messages</b> matching {matching}" if matching else "<b>Latest messages</b>"
    ]
    for m in messages:
        preview = m.text if len(m.text) <= 30 else m.text[:29] + "…"
        lines.append(
            f"<code>#{m.id}</code> {local_time(m.created_at, zone)} {icon(m.state)} "
            f"{escape(m.state)} → <code>{escape(m.recipient)}</code> "
            f"<i>{escape(preview)}</i>"
        )
    lines.append("Details: /status &lt;id&gt;")
    return "\n".join(lines)


def balances(reports: Sequence[BalanceReport]) -> str:
    """Balances of every provider asked."""
    lines = []
    for report in reports:
        lines.append(f"<b>{escape(report.provider.display)}</b>")
        kind = report.provider.capabilities.balance
        if kind == BalanceKind.NONE:
            lines.append("  has no balance endpoint: check the balance on its website")
            continue
        if kind == BalanceKind.TRANSACTIONS:
            lines.append("  no balance endpoint; its recent transactions:")
        if report.error:
            lines.append(f"  ⚠️ {escape(report.error)}")
        for b in report.balances:
            amount = f"{b.amount:,.0f}" if b.amount == int(b.amount) else f"{b.amount:,.2f}"
            expiry = f" (expires {b.expires.isoformat()})" if b.expires else ""
            lines.append(f"  {escape(b.name)}: {amount} {escape(b.unit)}{expiry}")
        if not report.error and not report.balances:
            lines.append(
                "  no transactions yet"
                if kind == BalanceKind.TRANSACTIONS
                else "  no balances reported"
            )
    return "\n".join(lines)


def providers_overview(
    credentials: Sequence[Credential], default_route: str | None, zone: str
) -> str:
    """Connected providers with their last check, and the chat's default route."""
    if not credentials:
        lines = [
            "No provider is connected in this chat. Connect one with "
            f"/connect &lt;provider&gt; ({provider_names()})."
        ]
    else:
        lines = ["<b>Connected providers</b>"]
        for c in credentials:
            check = "✅ ok" if c.check_ok else f"⚠️ {escape(c.check_detail)}"
            when = local_time(c.checked_at, zone) if c.checked_at else "never"
            account = f" ({escape(c.account)})" if c.account else ""
            lines.append(f"• {escape(c.provider)}{account}: last check {when}, {check}")
    route = f"<code>{escape(default_route)}</code>" if default_route else "not set (/use)"
    lines.append(f"Default route: {route}")
    return "\n".join(lines)
