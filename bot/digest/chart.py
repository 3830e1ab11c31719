"""The digest's chart as PNG bytes: conversion by band beside hot leads per day.

Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot: pyplot
keeps global state (not thread-safe) and may look for a display. This works headless, in
any thread, and leaves no figure behind.
"""

from __future__ import annotations

import io
from datetime import timedelta

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.digest.customers import AT_RISK, CustomersSection
from bot.digest.data import Digest

WIDTH, HEIGHT, DPI = 10.0, 3.8, 100  # 1000 × 380 pixels: readable in a Slack preview
BAND_COLOURS = {"cold": "#7fa7d9", "warm": "#f2b04e", "hot": "#e4572e"}
FLAGGED = "#8b0000"
BARS = "#4c72b0"
RISK = "#e4572e"


def render_chart(digest: Digest) -> bytes:
    """A PNG: left, conversion (%) per band with its label count (a band that converts less
    than the one below it is outlined in dark red); right, leads entering hot per day (per
    hour for a one-day digest); with customers, a third panel of customers per segment."""
    customers = digest.customers
    ratios = [2, 3] if customers is None else [2, 3, 3]
    width = WIDTH * sum(ratios) / 5
    figure = Figure(figsize=(width, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    _conversion(panels[0], digest)
    _hot_counts(panels[1], digest)
    if customers is not None:  # a third panel: customers per RFM segment
        _segments(panels[2], customers)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _segments(axes: Axes, customers: CustomersSection) -> None:
    rows = [s for s in customers.segments if s.customers]
    colours = [RISK if s.name in AT_RISK else BARS for s in rows]
    bars = axes.barh([s.name for s in rows], [s.customers for s in rows], color=colours)
    axes.bar_label(bars, padding=2, fontsize=8)
    axes.invert_yaxis()  # the config's order, top to bottom
    axes.tick_params(axis="y", labelsize=8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Customers per segment (at risk in red)", fontsize=10)


def _flagged_bands(digest: Digest) -> set[str]:
    """Bands named first in a warning ("hot leads converted less than warm ones")."""
    starts = [f"⚠ {row.group} leads" for row in digest.by_band]
    return {row.group for row, start in zip(digest.by_band, starts, strict=True)
            if any(w.startswith(start) for w in digest.warnings)}  # fmt: skip


def _conversion(axes: Axes, digest: Digest) -> None:
    rows = list(reversed(digest.by_band))  # cold, warm, hot: left to right, as they rise
    rates = [100 * (row.rate or 0.0) for row in rows]
    flagged = _flagged_bands(digest)
    bars = axes.bar(
        [row.group for row in rows],
        rates,
        color=[BAND_COLOURS.get(row.group, BARS) for row in rows],
        edgecolor=[FLAGGED if row.group in flagged else "none" for row in rows],
        linewidth=3,
    )
    labels = [f"n={row.labels}" if row.labels else "no labels" for row in rows]
    axes.bar_label(bars, labels=labels, padding=2, fontsize=8)
    axes.set_ylim(0, max([*rates, 10.0]) * 1.25)
    axes.set_ylabel("converted (%)")
    note = " (check the model)" if flagged else ""
    axes.set_title(f"Conversion by band{note}", fontsize=10)


def _hot_counts(axes: Axes, digest: Digest) -> None:
    hourly = digest.bucket < timedelta(days=1)
    fmt = "%H:00" if hourly else "%a %d"
    names = [start.strftime(fmt) for start, _ in digest.hot_counts]
    counts = [n for _, n in digest.hot_counts]
    axes.bar(range(len(counts)), counts, color=BARS)
    step = max(1, len(names) // 12)
    axes.set_xticks(range(0, len(names), step), names[::step], fontsize=8)
    axes.set_ylim(0, max([*counts, 1]) * 1.2)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole leads only
    axes.set_title(f"Leads turning hot per {'hour' if hourly else 'day'}", fontsize=10)
    # Days are calendar days in the schedule's timezone: the bucket starts carry it.
    first = digest.hot_counts[0][0] if digest.hot_counts else None
    zone = (first.tzname() if first is not None else None) or "UTC"
    axes.set_xlabel(f"{'from' if hourly else 'day'} ({zone})", fontsize=8)
