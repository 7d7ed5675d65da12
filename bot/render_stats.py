"""/stats as the chat sees it: a PNG chart and a short HTML summary.

The chart is drawn with matplotlib's object API on the Agg canvas (headless, no pyplot and no
global figure state, so two charts drawn at once in threads cannot mix). matplotlib is
imported on the first chart, not at start: it costs a few hundred milliseconds. Drawing takes
tens of milliseconds of CPU, so callers run :func:`chart_png` in a thread.
"""

from __future__ import annotations

import io
from html import escape

from bot.services.stats import DELIVERED, FAILED, OPEN, OUTCOMES, UNKNOWN, Stats
from i18n import N_, _, ngettext

COLOURS = {DELIVERED: "#2e7d32", FAILED: "#c62828", OPEN: "#9e9e9e", UNKNOWN: "#f9a825"}
ROUTES_SHOWN = 8  # more routes than this are summed as "other"
OTHER = "other"
# How the chart names its groups (the group keys stay English; only the legend is translated).
LABELS = {
    DELIVERED: N_("delivered"),
    FAILED: N_("failed"),
    OPEN: N_("in progress"),
    UNKNOWN: N_("unknown"),
    OTHER: N_("other"),
}
LEGEND = "upper left"  # i18n: not shown


def chart_png(stats: Stats) -> bytes:
    """Messages per day, stacked by final state (above) and by route (below), as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    by_state, by_route = figure.subplots(2, 1, sharex=True)
    positions = list(range(len(stats.days)))
    labels = [f"{d:%m-%d}" for d in stats.days]
    bottom = [0] * len(stats.days)
    for outcome in OUTCOMES:
        heights = [stats.by_outcome[(d, outcome)] for d in stats.days]
        if any(heights):
            by_state.bar(
                positions, heights, bottom=bottom, label=_(LABELS[outcome]), color=COLOURS[outcome]
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    by_state.set_title(_("Messages per day by final state ({zone})").format(zone=stats.zone))
    by_state.set_ylabel(_("messages"))
    by_state.legend(loc=LEGEND, fontsize="small")
    routes = stats.routes
    shown, rest = routes[:ROUTES_SHOWN], routes[ROUTES_SHOWN:]
    bottom = [0] * len(stats.days)
    for route in [*shown, *([OTHER] if rest else [])]:
        names = rest if route == OTHER else [route]
        heights = [sum(stats.by_route[(d, r)] for r in names) for d in stats.days]
        label = _(LABELS[OTHER]) if route == OTHER else route
        by_route.bar(positions, heights, bottom=bottom, label=label)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    by_route.set_title(_("Messages per day by route"))
    by_route.set_ylabel(_("messages"))
    by_route.legend(loc=LEGEND, fontsize="small")
    by_route.set_xticks(positions, labels, rotation=45 if len(positions) > 14 else 0)
    if len(positions) > 31:  # label every week only: ninety labels overlap
        for index, label in enumerate(by_route.get_xticklabels()):
            label.set_visible(index % 7 == 0)
    for axes in (by_state, by_route):
        axes.yaxis.get_major_locator().set_params(integer=True)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def duration_text(seconds: float) -> str:
    """``42s``, ``3m 20s``, ``2h 5m``, ``1d 3h``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def summary(stats: Stats) -> str:
    """The figures under the chart (HTML, well within a photo caption's 1,024 characters)."""
    first, last = stats.days[0], stats.days[-1]
    median = stats.median_to_delivered
    lines = [
        _("<b>Last {count} day(s)</b> ({first} – {last}, {zone})").format(
            count=len(stats.days), first=first, last=last, zone=escape(stats.zone)
        ),
        _("Sent: {count:,}").format(count=stats.sent),
        _("Delivered: {count:,}").format(count=stats.outcomes[DELIVERED]),
        _("Failed: {count:,}").format(count=stats.outcomes[FAILED]),
    ]
    if stats.outcomes[OPEN] or stats.outcomes[UNKNOWN]:
        lines.append(
            _("Still open: {open:,} · unknown: {unknown:,}").format(
                open=stats.outcomes[OPEN], unknown=stats.outcomes[UNKNOWN]
            )
        )
    lines.append(_("Delivery rate: {rate:.1%} of sent").format(rate=stats.delivery_rate))
    lines.append(
        _("Median time to delivered: {duration}").format(
            duration=duration_text(median.total_seconds())
        )
        if median is not None
        else _("Median time to delivered: no deliveries")
    )
    return "\n".join(lines)


def nothing_to_chart(days: int) -> str:
    """The sentence an empty period gets instead of an empty chart."""
    if days == 1:
        return _(
            "This chat sent no messages today, so there is nothing to chart. /send sends one."
        )
    return ngettext(
        "This chat sent no messages in the last {count} day, so there is nothing to chart. "
        "/send sends one.",
        "This chat sent no messages in the last {count} days, so there is nothing to chart. "
        "/send sends one.",
        days,
    ).format(count=days)
