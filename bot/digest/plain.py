"""A digest as plain text: what ``leadbot digest --print`` shows, and the fallback text of
the Slack message. Lead data goes through ``bot.chat.plain.clean`` (no control characters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.admin.outbox import dead_line
from bot.chat.plain import clean
from bot.digest.customers import TITLE as CUSTOMERS_TITLE
from bot.digest.customers import lines as customer_lines
from bot.digest.data import (
    Conversion,
    Digest,
    ModelHealth,
    Scope,
    ScopeKind,
    SourceCheck,
    percent,
)
from storage.digests import HotEntry, HotLead, LeadName, Move

LIST_MAX = 10  # leads listed per section; the rest is a count
TIME = "%Y-%m-%d %H:%M"


def lead_name(lead: LeadName) -> str:
    """``Dana Reyes (AcmeSoft)``, raw: escape or clean it where it is shown."""
    who = lead.name or lead.email or lead.id
    return f"{who} ({lead.company})" if lead.company else who


def rep_id(ref: str | None, names: Mapping[str, str] | None = None) -> str:
    """A rep as a reader knows them: their display name when one is stored (``names``:
    ref → name, ``Digest.names``), else ``slack:U123`` → ``U123``, other actors as they are."""
    if not ref:
        return "nobody"
    return (names or {}).get(ref) or ref.removeprefix("slack:")


def duration(seconds: float) -> str:
    """``<1 min``, ``30 min``, ``2 h 05 min``, ``3 d 4 h``."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def title(digest: Digest) -> str:
    kind = {"day": "Daily", "week": "Weekly"}.get(digest.period.name, "Lead")
    return f"{kind} digest — {scope_name(digest.scope)}"


def scope_name(scope: Scope) -> str:
    if scope.kind is ScopeKind.TEAM:
        return f"team {scope.name}"
    return "your leads" if scope.kind is ScopeKind.REP else "all leads"


def span(digest: Digest) -> str:
    p = digest.period
    return f"{p.start.strftime(TIME)} → {p.end.strftime(TIME)} UTC"


# What each funnel figure counts (``storage.digests.funnel``). Each is counted on its own in
# the period, so they need not narrow: label them, draw no arrows.
FUNNEL_LABELS = {
    "new": "new leads",
    "hot": "turned hot",
    "claimed": "claimed",
    "qualified": "labelled qualified",
    "won": "won",
}
FUNNEL_TITLE = "Funnel (each counted in the period)"


def funnel_label(stage: str) -> str:
    return FUNNEL_LABELS.get(stage, stage)


def funnel_line(digest: Digest) -> str:
    """``Funnel (each counted in the period): new leads 4 · turned hot 21 · …``."""
    counts = " · ".join(f"{funnel_label(stage)} {n}" for stage, n in digest.funnel)
    return f"{FUNNEL_TITLE}: {counts}"


def taken(entry: HotEntry, names: Mapping[str, str] | None = None) -> str:
    if entry.claimed_by is None or entry.claimed_at is None:
        return "not claimed"
    after = duration((entry.claimed_at - entry.at).total_seconds())
    return f"claimed by {rep_id(entry.claimed_by, names)} {after} after turning hot"


def waited(lead: HotLead, now: datetime) -> str:
    return "-" if lead.since is None else duration((now - lead.since).total_seconds())


def conversion_line(row: Conversion) -> str:
    if not row.labels:
        return f"{row.group:<5} {percent(None):>5}  (no labels)"
    return f"{row.group:<5} {percent(row.rate):>5}  ({row.converted} of {row.labels})"


SOURCES_TITLE = "Rep labels vs CRM outcomes (by band when labelled; AUC of the score then)"


def source_value(check: SourceCheck) -> str:
    """``12 labels · AUC 0.74 · hot 80 % (4 of 5) · warm 50 % (2 of 4) · cold 0 % (0 of 3)``"""
    auc = "—" if check.auc is None else f"{check.auc:.2f}"
    bands = " · ".join(
        f"{row.group} {percent(row.rate)} ({row.converted} of {row.labels})"
        for row in check.by_band
        if row.labels
    )
    return f"{check.labels} labels · AUC {auc}" + (f" · {bands}" if bands else "")


def source_line(check: SourceCheck) -> str:
    return f"{check.name}: {source_value(check)}"


def move_line(move: Move) -> str:
    return f"{move.change:+6.1f}  {lead_name(move.lead)}, now {move.score:.1f} {move.band}"


def model_line(model: ModelHealth) -> str:
    if model.version is None:
        head = f"Model: {model.name} (the configured model; no version stored yet)"
    else:
        since = "" if model.activated_at is None else f" since {model.activated_at:{TIME}} UTC"
        head = f"Model: v{model.version} active{since}"
    auc = "—" if model.auc is None else f"{model.auc:.3f}"
    pending = ", ".join(f"v{v}" for v in model.pending) or "none"
    cohorts = ", ".join(model.cohorts) or "none"
    return (
        f"{head} · held-out AUC {auc} · {model.labels_since} labels since · "
        f"proposals waiting: {pending} · A/B cohorts: {cohorts}"
    )


def health_lines(digest: Digest) -> list[str]:
    """The health section: the model, and the outbox when messages gave up."""
    lines = [model_line(digest.model)]
    dead = digest.outbox_dead
    if dead.count:
        lines.append(dead_line(dead.count, dead.oldest))
    return lines


def _listed(lines: Sequence[str], total: int) -> list[str]:
    shown = [f"  {clean(line)}" for line in lines[:LIST_MAX]]
    if total > LIST_MAX:
        shown.append(f"  … and {total - LIST_MAX} more")
    return shown


def _conversions(rows: Sequence[Conversion]) -> list[str]:
    return _listed([conversion_line(r) for r in rows], len(rows))


def _sections(d: Digest) -> list[list[str]]:
    hot = [
        f"{e.at:{TIME}}  {e.score:5.1f}  {lead_name(e.lead)} — {taken(e, d.names)}"
        for e in d.new_hot
    ]
    late = [f"{w.score:5.1f}  {lead_name(w.lead)} — waiting {waited(w, d.now)}" for w in d.waiting]
    reps = [
        f"{rep_id(r.rep, d.names):<12} "
        f"{'-' if r.median_seconds is None else duration(r.median_seconds):>12}"
        f"  ({r.claims} claim{'s' if r.claims != 1 else ''}, {r.timed} timed)"
        for r in d.reps
    ]
    sla = f"Waiting past the {d.sla_hours:g} h SLA: {d.waiting_count}"
    sources = [[SOURCES_TITLE, *(f"  {source_line(c)}" for c in d.by_source)]]
    return [
        [f"New hot leads: {d.hot_count}", *_listed(hot, d.hot_count)],
        [sla, *_listed(late, d.waiting_count)],
        ["Conversion by band (labels in the period)", *_conversions(d.by_band)],
        ["Conversion by fit grade", *_conversions(d.by_grade)],
        *(sources if d.by_source else []),
        *([[CUSTOMERS_TITLE, *(f"  {x}" for x in customer_lines(d.customers))]]
          if d.customers is not None else []),
        ["Alert → claim, median per rep", *(_listed(reps, len(reps)) or ["  no claims"])],
        ["Heating up", *(_listed([move_line(m) for m in d.heating], len(d.heating)) or ["  -"])],
        ["Cooling down", *(_listed([move_line(m) for m in d.cooling], len(d.cooling)) or ["  -"])],
    ]  # fmt: skip


def render_text(digest: Digest) -> str:
    """The whole digest: title, period, warnings first, then every section."""
    lines = [title(digest), span(digest), ""]
    if digest.warnings:
        lines += [*digest.warnings, ""]
    lines += [funnel_line(digest), ""]
    for section in _sections(digest):
        lines += [*section, ""]
    lines.append("\n\n".join(health_lines(digest)))  # a paragraph each (Teams lays them out)
    return "\n".join(lines)
