"""Plain-text rendering of neutral messages, for the console and the CLI.

Lead data comes from outside: control characters are replaced so a crafted name cannot
move the cursor, clear the screen or forge a line in a terminal or a log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scoring.binning import number_text

if TYPE_CHECKING:  # types only: plain text imports no message module at run time
    from bot.outbox.messages import AlertMessage

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """A single safe line of text for any value."""
    return _CONTROL.sub("�", str(value))


def when(value: str | float | None) -> str:
    """``2026-03-12 14:03 UTC`` from an ISO string or unix seconds."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def signal_detail(c: Mapping[str, Any], date: Callable[[Any], str]) -> str:
    """What a contribution rests on: ``3 events, last <date>`` for an event rule, ``at 630``
    for a scale (the lead's number), else nothing. ``c``: a contribution as JSON."""
    if c.get("count") is not None:
        events = "event" if c["count"] == 1 else "events"
        return f"{c['count']} {events}, last {date(c.get('last_seen'))}"
    if c.get("reading") is not None:
        return f"at {number_text(float(c['reading']))}"
    return ""


def contribution_lines(contributions: Sequence[Mapping[str, Any]], indent: str = "  ") -> list[str]:
    """``+30.0  Requested a demo  (1 event, last 2026-03-12 14:03 UTC)`` per contribution."""
    lines = []
    width = max((len(clean(c["label"])) for c in contributions), default=0)
    for c in contributions:
        line = f"{indent}{c['points']:+6.1f}  {clean(c['label']).ljust(width)}"
        if detail := signal_detail(c, when):
            line += f"  ({detail})"
        lines.append(line.rstrip())
    return lines


def render_alert(alert: AlertMessage) -> str:
    """The hot-lead alert as text: header, why now, fit/intent, breakdown, facts, actions."""
    lead, sc, why = alert.lead, alert.score, alert.why_now
    who = clean(lead.shown)
    company = f" ({clean(lead.company)})" if lead.company else ""
    what = f'{why.type} "{clean(why.name)}"' if why.name else why.type
    lines = [
        f"HOT LEAD  {who}{company}  score {sc.total:.1f}  "
        f"[{sc.grade}{sc.engagement}, p={sc.probability:.2f}]",
        *([f"  {again}"] if (again := alert.hot_again(clean)) else []),
        f"  why now: {what} at {when(why.at)}",
        f"  fit {sc.fit:.1f} (grade {sc.grade}) + intent {sc.intent:.1f} "
        f"(engagement {sc.engagement}/4)",
        *contribution_lines([c.to_json() for c in alert.contributions], indent="  "),
    ]
    if alert.facts:
        lines.append("  " + " · ".join(f"{clean(k)}: {clean(v)}" for k, v in alert.facts))
    if lead.email:
        lines.append(f"  e-mail: {clean(lead.email)}")
    lines.append("  actions: " + " · ".join(alert.actions))
    return "\n".join(lines)


def render_top(leads: Sequence[Mapping[str, Any]]) -> str:
    """A ranked table: score, band, fit × engagement cell, who, company."""
    if not leads:
        return "No leads yet."
    lines = [f"{'#':>3}  {'score':>6}  {'band':<5} {'cell':<4} {'lead':<32} company"]
    for rank, lead in enumerate(leads, 1):
        who = clean(lead.get("name") or lead.get("email") or lead["id"])[:32]
        lines.append(
            f"{rank:>3}  {lead['score']:>6.1f}  {lead['band']:<5} "
            f"{lead['grade']}{lead['engagement']:<3} {who:<32} {clean(lead.get('company') or '')}"
        )
    return "\n".join(lines)
