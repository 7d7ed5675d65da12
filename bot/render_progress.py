"""The card of a large send: one aggregate card with progress, then a summary.

Small sends keep their card (:func:`bot.render.card_text`); a send to more than
``CONFIRM_ABOVE`` recipients shows counts instead of recipients: done / failed / remaining,
the rate since the send (re)started and the time left, and once it ended how long it took and
how it ended. Each recipient still answers to ``/status <id>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from bot.render import card_head, icon, state_label
from bot.render_sms import sms_card_lines
from i18n import _, ngettext
from providers.base import DeliveryState
from storage.models import Batch, Message, Progress


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``1 h 05 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_card(
    batch: Batch,
    counts: Mapping[str, int],
    shown: Sequence[Message],
    total: int,
    *,
    handed: int,
    handed_since: int,
    now: datetime,
) -> str:
    """The card of a large send at ``now`` (rate and time left are measured up to then)."""
    head = card_head(batch)
    if batch.schedule_id is not None:
        head += " · " + _("⏰ scheduled send #{id}").format(id=batch.schedule_id)
    head += " · " + ngettext("{count:,} recipient", "{count:,} recipients", total).format(
        count=total
    )
    stopped_run = batch.progress == Progress.STOPPED.value
    remaining = counts.get(DeliveryState.QUEUED.value, 0)
    kept_back = counts.get(DeliveryState.ABORTED.value, 0) if stopped_run else 0
    failed = sum(n for s, n in counts.items() if _failure(s)) - kept_back
    done = total - remaining - failed - kept_back
    end = batch.finished_at or now
    elapsed = (end - batch.started_at).total_seconds() if batch.started_at else 0.0
    rate = handed_since / elapsed if elapsed > 0 else 0.0
    lines = [head, *sms_card_lines(batch, shown[:1], total)]
    if batch.progress == Progress.SENDING.value:
        share = handed * 100 // total if total else 100
        lines.append(
            _("▶️ Sending: {handed:,} of {total:,} handed to the provider ({share} %)").format(
                handed=handed, total=total, share=share
            )
        )
    elif stopped_run:
        stopped = (
            _("⏹ Stopped by {name}: {count:,} recipients were not sent")
            if batch.stopped_by_name
            else _("⏹ Stopped: {count:,} recipients were not sent")
        )
        lines.append(stopped.format(name=escape(batch.stopped_by_name or ""), count=kept_back))
    else:
        lines.append(_("🏁 Finished in {duration}").format(duration=duration(elapsed)))
    # Done and failed count answers; remaining is what has none yet (in flight included).
    figures = _("✅ done {done:,} · ❌ failed {failed:,} · ⏳ remaining {remaining:,}").format(
        done=done, failed=failed, remaining=remaining
    )
    if kept_back:
        figures += " · " + _("⏹ not sent {count:,}").format(count=kept_back)
    lines.append(figures)
    if batch.progress == Progress.SENDING.value and rate > 0:
        to_hand = total - handed - kept_back
        speed = (
            _("⚡ {rate:,.1f} a second · about {left} left")
            if to_hand > 0
            else _("⚡ {rate:,.1f} a second")
        )
        left = duration(to_hand / rate) if to_hand > 0 else ""
        lines.append(speed.format(rate=rate, left=left))
    lines.append(
        " · ".join(f"{icon(s)} {state_label(s)} {n:,}" for s, n in sorted(counts.items()))
    )
    if shown and shown[0].id is not None:
        lines.append(
            _("Each recipient: /status &lt;id&gt; (ids from #{id}); Details.").format(
                id=shown[0].id
            )
        )
    return "\n".join(lines)


def _failure(state: str) -> bool:
    try:
        return DeliveryState(state).is_failure
    except ValueError:  # a state this version does not know counts as done
        return False
