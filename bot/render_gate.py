"""Chat text (HTML) before a send goes out (:mod:`bot.services.gate`).

A large send's confirmation, with its warnings; a send held by quiet hours.
"""

from __future__ import annotations

from html import escape

from bot.services.gate import CONFIRM_TTL, SEND, Held, Plan
from bot.services.segments import describe
from bot.services.when import describe_time
from i18n import _, ngettext
from providers.sms_encoding import Encoding, count_segments, non_gsm7

PREVIEW = 120


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _gsm_alternative(text: str) -> str:
    """How many parts the text would take without the characters that force UCS-2."""
    culprits = set(non_gsm7(text))
    plain = "".join(c for c in text if c not in culprits)
    return describe(count_segments(plain), plain) if plain else ""


def plan_text(plan: Plan) -> str:
    """What the Send button will do, with the warnings that matter before a large send."""
    route = escape(str(plan.route))
    if plan.fallbacks:
        then = ", ".join(escape(str(r)) for r in plan.fallbacks)
        route = _("{route} (then {fallbacks})").format(route=route, fallbacks=then)
    people = ngettext("{count:,} recipient", "{count:,} recipients", plan.recipients).format(
        count=plan.recipients
    )
    if plan.groups:
        people = ngettext(
            "{people}, {count} of them provider group (each may reach many people)",
            "{people}, {count} of them provider groups (each may reach many people)",
            plan.groups,
        ).format(people=people, count=plan.groups)
    head = (
        _("<b>Send to {people}?</b>") if plan.kind == SEND else _("<b>Schedule to {people}?</b>")
    )
    lines = [head.format(people=people), _("Route: <code>{route}</code>").format(route=route)]
    if plan.duplicates:
        lines.append(
            _("Counted after removing {count:,} duplicate(s).").format(count=plan.duplicates)
        )
    if plan.when is not None:
        lines.append(
            _("⏰ First run: {when}").format(when=escape(describe_time(plan.when, plan.zone)))
        )
    if plan.media:
        lines.append(_("📎 With the {what} as WhatsApp media.").format(what=escape(_(plan.media))))
    flat = " ".join(plan.text.split())
    shown = flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"
    label = _("Longest text: <i>{text}</i>") if plan.personal else _("Text: <i>{text}</i>")
    lines.append(label.format(text=escape(shown)))
    if plan.segments is not None:
        lines.append(
            _("📏 {size} per message; {parts:,} SMS parts in all.").format(
                size=escape(describe(plan.segments, plan.text)), parts=plan.parts
            )
        )
        if plan.segments.encoding is Encoding.UCS2:
            without = _gsm_alternative(plan.text)
            if without:
                lines.append(
                    _(
                        "⚠️ One character outside GSM-7 makes the whole text UCS-2: without "
                        "those characters it would be {size}."
                    ).format(size=escape(without))
                )
    lines.extend(_cost_lines(plan))
    if plan.repeats:
        lines.append(
            _("⚠️ {count:,} of these recipients got this same text in the last hour.").format(
                count=plan.repeats
            )
        )
    if plan.quiet is not None:
        quiet = {"hours": plan.quiet.label, "zone": escape(plan.zone), "until": ""}
        if plan.held_until is not None:
            quiet["until"] = escape(describe_time(plan.held_until, plan.zone))
        if plan.now:
            lines.append(
                _("🌙 Quiet hours now ({hours}, {zone}): Send sends it at once anyway.").format(
                    **quiet
                )
            )
        elif plan.held_until is not None:
            going = (
                _("🌙 Quiet hours ({hours}, {zone}): after Send it is held until {until}.")
                if plan.kind == SEND
                else _("🌙 Quiet hours ({hours}, {zone}): after Send its run waits until {until}.")
            )
            lines.append(going.format(**quiet))
    lines.extend(send_footer(approve=plan.approve))
    return "\n".join(lines)


def send_footer(*, approve: bool) -> list[str]:
    """The last lines of a confirmation: the approval that follows, and how long it waits."""
    lines = []
    if approve:
        lines.append(_("👮 After Send it waits for another admin's approval (/approval)."))
    minutes = int(CONFIRM_TTL.total_seconds() // 60)
    lines.append(
        _("Nothing is sent until you press Send (valid for {minutes} minutes).").format(
            minutes=minutes
        )
    )
    return lines


def _cost_lines(plan: Plan) -> list[str]:
    """The estimated cost, and a warning when the balance is short or could not be read."""
    estimate = plan.estimate
    if estimate is None:
        return [
            _("💰 Cost: {provider} does not state a price.").format(
                provider=escape(plan.route.provider.display)
            )
        ]
    values = {
        "amount": _amount(estimate.amount),
        "unit": escape(_(estimate.unit) if estimate.unit else ""),
        "name": escape(estimate.balance_name),
        "balance": _amount(estimate.balance or 0),
        "reason": escape(estimate.problem or ""),
    }
    if estimate.balance is None:
        cost = (
            _("💰 Estimated cost: at least {amount} {unit}.")
            if estimate.at_least
            else _("💰 Estimated cost: {amount} {unit}.")
        )
    else:
        cost = (
            _("💰 Estimated cost: at least {amount} {unit} ({name} balance: {balance}).")
            if estimate.at_least
            else _("💰 Estimated cost: {amount} {unit} ({name} balance: {balance}).")
        )
    lines = [cost.format(**values)]
    if estimate.short:
        lines.append(
            _(
                "⚠️ The {name} balance ({balance}) is below the estimated cost: part of "
                "this send may fail for lack of credit."
            ).format(**values)
        )
    elif estimate.problem:
        lines.append(_("⚠️ The balance could not be read: {reason}").format(**values))
    return lines


def held_text(held: Held) -> str:
    """A send kept for the end of quiet hours: when it goes and how to change that."""
    row = held.created.schedule
    when = escape(describe_time(held.until, held.zone))
    lines = [
        _(
            "🌙 Quiet hours ({hours}, {zone}): this send is held until "
            "{when}, as scheduled send <b>#{id}</b>."
        ).format(hours=held.quiet.label, zone=escape(held.zone), when=when, id=row.id),
    ]
    if row.provider_ref:
        lines.append(_("Its provider holds it and sends it then, even while the bot is down."))
    else:
        lines.append(
            _("Cancel: /cancel {id} · send at once instead: /send now …").format(id=row.id)
        )
    return "\n".join(lines)
