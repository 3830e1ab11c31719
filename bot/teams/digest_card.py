"""A manager digest as an Adaptive Card, built from the digest's data
(``bot.digest.data.Digest``, as ``bot.outbox.messages.DigestMessage`` stores it): the
period, warnings, the funnel, new hot leads and who took them, leads waiting past the SLA,
conversion by band and by fit grade, alert → claim time per rep, the movers, model and
outbox health, and the chart.

The chart is an ``Image`` whose url is a ``data:image/png;base64,…`` URI when the whole card
stays within ``MAX_CARD_BYTES``; a larger chart (the usual 1000 × 380 PNG often is) is left
out and the card says where to see it (the Slack digest, or ``leadbot digest --png``):
Teams refuses cards over 40 KB, and the outbox holds no hosted URL for the image. Lists
are cut to ``limit`` lines (longest first until the card fits), with a count of the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from bot.digest.customers import TITLE as CUSTOMERS_TITLE
from bot.digest.customers import lines as customer_lines
from bot.digest.data import Conversion, Digest, percent
from bot.digest.plain import (
    FUNNEL_TITLE,
    SOURCES_TITLE,
    duration,
    funnel_label,
    health_lines,
    lead_name,
    rep_id,
    source_value,
    span,
    taken,
    title,
    waited,
)
from bot.outbox.messages import Chart, DigestMessage
from bot.teams.card_parts import (
    MAX_CARD_BYTES,
    Card,
    Element,
    card,
    card_bytes,
    clip,
    container,
    facts,
    fit_card,
    heading,
    more,
    plain,
    subtle,
    text,
)
from storage.digests import LeadName

DIGEST_LIMITS = (12, 6, 3, 1)  # lines per list, longest first
LEGACY_LIMITS = (200, 60, 20)  # lines of a legacy digest's text
NAME_MAX = 80
CHART_MISSING = (
    "The chart did not fit in a Teams card (40 KB at most): see it in the Slack digest, "
    "or run leadbot digest \\-\\-png."
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def digest_message_card(message: DigestMessage) -> Card:
    """The card for a scheduled ``digest`` outbox message; a row queued before digests
    stored their data shows its stored plain text."""
    if message.digest is not None:
        return digest_card(message.digest, message.chart)
    assert message.legacy is not None
    legacy = message.legacy
    lines = legacy.plain.splitlines()

    def build(limit: int) -> Card:
        body = [text(clip(line, 200), spacing="None") for line in lines[:limit] if line.strip()]
        if len(lines) > limit:
            body.append(more(len(lines) - limit, "lines"))
        return card(body, summary=clip(legacy.title, 300))

    return fit_card(build, LEGACY_LIMITS, "digest")


def digest_card(digest: Digest, chart: Chart | None = None) -> Card:
    """The digest's sections, and its chart when the card stays within the limit."""
    summary = clip(title(digest), 300)
    image = chart_image(chart)

    def build(limit: int) -> Card:
        body = digest_elements(digest, limit)
        if image is not None:
            with_chart = card([*body, image], summary=summary)
            if card_bytes(with_chart) <= MAX_CARD_BYTES:
                return with_chart
            body.append(subtle(CHART_MISSING))
        return card(body, summary=summary)

    return fit_card(build, DIGEST_LIMITS, "digest")


def digest_elements(d: Digest, limit: int) -> list[Element]:
    """Every section of the digest, lists cut to ``limit`` lines."""
    body: list[Element] = [heading(clip(title(d), 150)),
                           subtle(f"{plain(span(d))} · SLA {d.sla_hours:g} h")]  # fmt: skip
    if d.warnings:
        warnings = [text(f"**{clip(w, 300)}**", color="Attention") for w in d.warnings]
        body.append(container(warnings, style="attention", separator=True))
    funnel = [(plain(funnel_label(stage)), str(n)) for stage, n in d.funnel]
    body.append(_section(FUNNEL_TITLE, [facts(funnel)]))
    hot = [f"{plain(_at(e.at))} · {e.score:.1f} · {_who(e.lead)} — {plain(taken(e, d.names))}"
           for e in d.new_hot]  # fmt: skip
    body.append(_listing(f"New hot leads: {d.hot_count}", hot, d.hot_count, limit))
    late = [f"{w.score:.1f} · {_who(w.lead)} · waiting {plain(waited(w, d.now))}"
            for w in d.waiting]  # fmt: skip
    sla = f"Waiting past the {d.sla_hours:g} h SLA: {d.waiting_count}"
    body.append(_listing(sla, late, d.waiting_count, limit))
    body.append(_section("Conversion by band (labels in the period)", [_conversions(d.by_band)]))
    body.append(_section("Conversion by fit grade", [_conversions(d.by_grade)]))
    if d.by_source:  # reps' labels and CRM outcomes checked apart
        checks = [(plain(c.name), plain(source_value(c))) for c in d.by_source]
        body.append(_section(SOURCES_TITLE, [facts(checks)]))
    if d.customers is not None:  # RFM: only when there are customers
        shown = [text(plain(line), spacing="None") for line in customer_lines(d.customers)]
        body.append(_section(CUSTOMERS_TITLE, shown))
    reps = [(clip(rep_id(r.rep, d.names), 60), _speed(r.median_seconds, r.claims, r.timed))
            for r in d.reps]  # fmt: skip
    body.append(_facts_listing("Alert → claim, median per rep", reps, limit, "no claims", "reps"))
    for name, moves in (("Heating up", d.heating), ("Cooling down", d.cooling)):
        pairs = [(f"{m.change:+.1f}".replace("-", "−"),
                  f"{_who(m.lead)}, now {m.score:.1f} {plain(m.band)}") for m in moves]  # fmt: skip
        body.append(_facts_listing(name, pairs, limit, "-", "leads"))
    health = [text(plain(line), spacing="None") for line in health_lines(d)]
    body.append(_section("Health", health))
    return body


def chart_image(chart: Chart | None) -> Element | None:
    """The chart as an ``Image`` with a data URI; None without a (well-formed) chart."""
    if chart is None or not chart.png_base64 or not _BASE64.fullmatch(chart.png_base64):
        return None
    return {
        "type": "Image", "url": f"data:image/png;base64,{chart.png_base64}",
        "altText": clean_alt(chart.alt or chart.title), "size": "Stretch", "spacing": "Medium",
    }  # fmt: skip


def clean_alt(value: object) -> str:
    return clip(value, 200).replace("\\", "")  # alt text is plain, never markdown


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _who(lead: LeadName) -> str:
    return clip(lead_name(lead), NAME_MAX)


def _speed(median: float | None, claims: int, timed: int) -> str:
    shown = "-" if median is None else duration(median)
    return f"{shown} ({claims} claim{'s' if claims != 1 else ''}, {timed} timed)"


def _conversions(rows: Sequence[Conversion]) -> Element:
    def value(row: Conversion) -> str:
        if not row.labels:
            return f"{percent(None)} (no labels)"
        return f"{percent(row.rate)} ({row.converted} of {row.labels})"

    return facts([(plain(row.group), value(row)) for row in rows])


def _section(heading_text: str, items: Sequence[Element]) -> Element:
    return container([text(f"**{plain(heading_text)}**"), *items], separator=True)


def _listing(heading_text: str, lines: Sequence[str], total: int, limit: int) -> Element:
    """A heading and up to ``limit`` already-safe lines, then how many more of ``total``."""
    items: list[Element] = [text(line, spacing="None") for line in lines[:limit]]
    if not lines:
        items = [subtle("none")]
    shown = min(len(lines), limit)
    if total > shown:
        items.append(more(total - shown, "leads"))
    return _section(heading_text, items)


def _facts_listing(
    heading_text: str, pairs: Sequence[tuple[str, str]], limit: int, empty: str, what: str
) -> Element:
    if not pairs:
        return _section(heading_text, [subtle(empty)])
    items: list[Element] = [facts(pairs[:limit])]
    if len(pairs) > limit:
        items.append(more(len(pairs) - limit, what))
    return _section(heading_text, items)
