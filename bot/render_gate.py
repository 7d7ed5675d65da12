"""Chat text (HTML) before a send goes out (:mod:`bot.services.gate`).

A large send's confirmation, with its warnings; a send held by quiet hours.
"""

from __future__ import annotations

from html import escape

from bot.services.gate import CONFIRM_TTL, SEND, Held, Plan
from bot.services.segments import describe
from bot.services.when import describe_time
from i18n import _
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
        route += " (then " + ", ".join(escape(str(r)) for r in plan.fallbacks) + ")"
    verb = "Send" if plan.kind == SEND else "Schedule"
    people = f"{plan.recipients:,} recipient" + ("" if plan.recipients == 1 else "s")
    if plan.groups:
        people += f", {plan.groups} of them provider group" + ("" if plan.groups == 1 else "s")
        people += " (each may reach many people)"
    lines = [f"<b>{verb} to {people}?</b>", f"Route: <code>{route}</code>"]
    if plan.duplicates:
        lines.append(f"Counted after removing {plan.duplicates:,} duplicate(s).")
    if plan.when is not None:
        lines.append(f"⏰ First run: {escape(describe_time(plan.when, plan.zone))}")
    if plan.media:
        lines.append(f"📎 With the {escape(plan.media)} as WhatsApp media.")
    flat = " ".join(plan.text.split())
    shown = flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"
    label = "Longest text" if plan.personal else "Text"
    lines.append(f"{label}: <i>{escape(shown)}</i>")
    if plan.segments is not None:
        lines.append(
            f"📏 {escape(describe(plan.segments, plan.text))} per message; "
            f"{plan.parts:,} SMS parts in all."
        )
        if plan.segments.encoding is Encoding.UCS2:
            without = _gsm_alternative(plan.text)
            if without:
                lines.append(
                    "⚠️ One character outside GSM-7 makes the whole text UCS-2: without "
                    f"those characters it would be {escape(without)}."
                )
    estimate = plan.estimate
    if estimate is None:
        lines.append(f"💰 Cost: {escape(plan.route.provider.display)} does not state a price.")
    else:
        cost = f"{'at least ' if estimate.at_least else ''}{_amount(estimate.amount)}"
        line = f"💰 Estimated cost: {cost} {escape(_(estimate.unit) if estimate.unit else '')}"
        if estimate.balance is not None:
            line += f" ({escape(estimate.balance_name)} balance: {_amount(estimate.balance)})"
        lines.append(line + ".")
        if estimate.short:
            lines.append(
                f"⚠️ The {escape(estimate.balance_name)} balance "
                f"({_amount(estimate.balance or 0)}) is below the estimated cost: part of "
                "this send may fail for lack of credit."
            )
        elif estimate.problem:
            lines.append(f"⚠️ The balance could not be read: {escape(estimate.problem)}")
    if plan.repeats:
        lines.append(
            f"⚠️ {plan.repeats:,} of these recipients got this same text in the last hour."
        )
    if plan.quiet is not None and plan.now:
        lines.append(
            f"🌙 Quiet hours now ({plan.quiet.label}, {escape(plan.zone)}): Send sends it at "
            "once anyway."
        )
    elif plan.quiet is not None and plan.held_until is not None:
        going = "it is held" if plan.kind == SEND else "its run waits"
        lines.append(
            f"🌙 Quiet hours ({plan.quiet.label}, {escape(plan.zone)}): after Send {going} "
            f"until {escape(describe_time(plan.held_until, plan.zone))}."
        )
    minutes = int(CONFIRM_TTL.total_seconds() // 60)
    lines.append(f"Nothing is sent until you press Send (valid for {minutes} minutes).")
    return "\n".join(lines)


def held_text(held: Held) -> str:
    """A send kept for the end of quiet hours: when it goes and how to change that."""
    row = held.created.schedule
    when = escape(describe_time(held.until, held.zone))
    lines = [
        f"🌙 Quiet hours ({held.quiet.label}, {escape(held.zone)}): this send is held until "
        f"{when}, as scheduled send <b>#{row.id}</b>.",
    ]
    if row.provider_ref:
        lines.append("Its provider holds it and sends it then, even while the bot is down.")
    else:
        lines.append(f"Cancel: /cancel {row.id} · send at once instead: /send now …")
    return "\n".join(lines)
