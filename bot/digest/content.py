"""What a manager digest says, as plain data: ``build_digest`` reads it in one transaction
and the renderers (``text``, ``blocks``, ``chart``) only lay it out.

Definitions (the figures a manager will question, so they are written down):

- Period: ``start <= at < end``, UTC. ``Period.last("day"|"week", now)`` is the 24 hours or
  7 days up to ``now``.
- Scope: every lead, a team's leads, or one rep's leads. A lead is a team's (a rep's) when
  one of its members claimed it (``leads.claimed_by = 'slack:U…'``) or an alert about it was
  routed to one of them (outbox destination ``slack:@U…``).
- New hot leads: ``score_history`` rows entering band hot in the period (first entry per
  lead); who took them: ``leads.claimed_by`` / ``claimed_at``.
- Waiting past the SLA: leads hot now, unclaimed, never judged and not snoozed, whose wait
  started more than ``sla_hours`` before ``now``. The wait starts at the latest of: the
  lead's last alert (``alert_posts``, or ``leads.alerted_at`` when alerts go to the console)
  and its last entry into hot.
- Funnel: distinct leads in the period that were first seen (new), entered hot, were
  claimed, got a positive label (qualified; won counts as qualified too), were won.
- Labels: feedback outcomes qualified/won are converted, disqualified/lost are not (the
  config's ``learning.labels``). Conversion by band and by fit grade: among the leads labelled in
  the period (each lead's latest label in the period), grouped by the band and grade in the
  feedback's feature snapshot (``feedback.features``: what the rep saw, not today's band).
  The snapshot holds the fit points; the grade is read from them with the configured model's
  grade cut-offs (a snapshot's own ``grade``, if one is stored, wins).
- Reps vs CRM: when a CRM outcome (``feedback.source`` ``crm:hubspot``, ``crm:salesforce``)
  was labelled in the period, the labels of each source are checked apart: conversion by
  band as above (each lead's latest label of that source), and the ROC AUC of the score in
  the snapshot against converted or not — how well the model ranked what reps judged, and
  what the CRM says closed. Without CRM outcomes there is no such section.
- "Worse than the one below it": a band converting less than the band below it (hot < warm,
  warm < cold), or a grade less than the grade below it (A < B, B < C, C < D), each with at
  least ``MIN_LABELS`` labels. The digest then says so plainly: the model needs attention.
- Alert → claim time per rep: for claims made in the period, from the latest alert at or
  before the claim (its post, else ``leads.alerted_at``, else the entry into hot) to the
  claim; the median per rep. A claim with no alert before it is counted but not timed.
- Top movers: net score change over the period's ``score_history`` rows (last row's score
  minus the first row's previous score, 0 for a new lead); rescores by a model version
  (cause ``model vN``) are not movement and are left out.
- Outbox health: messages that gave up (status ``dead``: undeliverable past the give-up
  time, or refused for good), how many and since when the oldest waits; every scope shows
  it, as it is the bot's own health, not a team's.
- Model health: the active model version (``model_versions``), labels since it was created,
  its held-out ROC AUC (``metrics.after.roc_auc``), proposals waiting for approval, and A/B
  cohorts of a running A/B test (version, share, labels and conversion so far).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.customers import CustomersSection
from bot.digest.customers import section as customer_section
from bot.digest.data import (
    NONE_DEAD,
    PERIODS,
    Conversion,
    Digest,
    ModelHealth,
    Period,
    PeriodKind,
    RepSpeed,
    Scope,
    ScopeKind,
    SourceCheck,
    percent,
)
from bot.models.abtest import cohort_stats
from config.loader import LeadbotConfig
from scoring.metrics import roc_auc
from scoring.model import Model
from storage import digests as repo
from storage import models as versions
from storage import offloop
from storage.abtests import running_test
from storage.digests import HotEntry, Label
from storage.outbox import dead_of
from storage.people import names_of

__all__ = [  # the data types live in bot.digest.data; importable from here as before
    "NONE_DEAD", "PERIODS", "Conversion", "Digest", "ModelHealth", "Period", "PeriodKind",
    "RepSpeed", "Scope", "ScopeKind", "build_digest", "percent",
]  # fmt: skip

MIN_LABELS = 5  # labels a band (grade) needs before its conversion is compared
TOP = 5  # movers each way
BANDS = ("hot", "warm", "cold")  # best first
GRADES = ("A", "B", "C", "D")
FUNNEL = ("new", "hot", "claimed", "qualified", "won")


def grade_of(fit: float, model: Model) -> str:
    """``scoring.engine``'s grade for ``fit`` points: the first cut-off reached, else D."""
    return next((grade for grade, least in model.grades if fit >= least), "D")


def _snapshot_grade(features: dict[str, Any], model: Model) -> str | None:
    if features.get("grade"):
        return str(features["grade"])
    fit = features.get("fit")
    return None if fit is None else grade_of(float(fit), model)


def conversions(
    latest: Sequence[Label],
    groups: Sequence[str],
    key: Callable[[Label], str | None],
    values: Mapping[str, float],
) -> tuple[Conversion, ...]:
    """Labels and conversions per group, in ``groups`` order (other groups ignored);
    ``values``: each label outcome's value (config ``learning.labels``)."""
    labels: dict[str, int] = defaultdict(int)
    converted: dict[str, int] = defaultdict(int)
    for label in latest:
        group = key(label)
        labels[group or ""] += 1
        converted[group or ""] += int(values[label.outcome] > 0)
    return tuple(Conversion(g, labels[g], converted[g]) for g in groups)


def inversions(rows: Sequence[Conversion], kind: str, minimum: int = MIN_LABELS) -> list[str]:
    """Plain warnings where a group (best first) converts less than the one below it."""
    out = []
    for higher, lower in pairwise(rows):
        if min(higher.labels, lower.labels) < minimum:
            continue
        if (higher.rate or 0.0) < (lower.rate or 0.0):
            out.append(
                f"⚠ {kind}{higher.group} leads converted less than {kind}{lower.group} ones "
                f"({percent(higher.rate)} vs {percent(lower.rate)}): "
                "the model needs attention"
            )
    return out


def rep_speeds(claims: Sequence[repo.Claim]) -> tuple[RepSpeed, ...]:
    """Per rep, most claims first."""
    waits: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for claim in claims:
        counts[claim.by] += 1
        if claim.alerted_at is not None:
            waits[claim.by].append((claim.claimed_at - claim.alerted_at).total_seconds())
    reps = sorted(counts, key=lambda rep: (-counts[rep], rep))
    return tuple(
        RepSpeed(
            rep, counts[rep], len(waits[rep]), statistics.median(waits[rep]) if waits[rep] else None
        )
        for rep in reps
    )


def hot_counts(
    entries: Sequence[HotEntry], period: Period, zone: tzinfo = UTC
) -> tuple[tuple[tuple[datetime, int], ...], timedelta]:
    """Leads entering hot per calendar day in ``zone`` (midnight to midnight, each bucket
    named by its day: the first and last may be partial), or per hour from the start for a
    period under two days. Bucket starts are in ``zone``, so a chart names them as a reader
    there would."""
    span = period.end - period.start
    if span < timedelta(days=2):
        bucket = timedelta(hours=1)
        n = max(1, -(-span // bucket))
        counts = [0] * n
        for entry in entries:
            counts[min(n - 1, (entry.at - period.start) // bucket)] += 1
        starts = [(period.start + i * bucket).astimezone(zone) for i in range(n)]
        return tuple(zip(starts, counts, strict=True)), bucket
    first = period.start.astimezone(zone).date()
    last = (period.end - timedelta(microseconds=1)).astimezone(zone).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    counts = [0] * len(days)
    for entry in entries:
        i = (entry.at.astimezone(zone).date() - first).days
        counts[min(len(days) - 1, max(0, i))] += 1
    # A calendar day's midnight in the zone (23 or 25 hours from the next across DST).
    starts = [datetime.combine(day, time(), zone) for day in days]
    return tuple(zip(starts, counts, strict=True)), timedelta(days=1)


def source_checks(labels: Sequence[Label], values: Mapping[str, float]) -> tuple[SourceCheck, ...]:
    """Reps' labels and each CRM's outcomes checked apart (``labels`` oldest first), reps
    first; empty when none came from a CRM."""
    sources = sorted({label.source for label in labels}, key=lambda s: (s != "rep", s))
    if not any(s.startswith("crm:") for s in sources):
        return ()
    return tuple(
        _source_check(source, [lb for lb in labels if lb.source == source], values)
        for source in sources
    )


def _source_check(source: str, labels: Sequence[Label], values: Mapping[str, float]) -> SourceCheck:
    latest = _latest_per_lead(labels)
    by_band = conversions(latest, BANDS, lambda label: label.features.get("band"), values)
    scored = [lb for lb in latest if isinstance(lb.features.get("score"), int | float)]
    y = np.array([float(values[lb.outcome] > 0) for lb in scored])
    auc = roc_auc(y, np.array([float(lb.features["score"]) for lb in scored])) if scored else None
    return SourceCheck(
        source, len(latest), by_band, None if auc is None or math.isnan(auc) else auc
    )


def _latest_per_lead(labels: Sequence[Label]) -> list[Label]:
    latest: dict[str, Label] = {}
    for label in labels:  # oldest first: the last one stands
        latest[label.lead_id] = label
    return list(latest.values())


def _model_health(conn: Connection, config: LeadbotConfig) -> ModelHealth:
    active = versions.active_version(conn)
    pending = tuple(
        v.id
        for v in versions.list_versions(conn)
        if v.status == versions.Status.PROPOSED and v.id is not None
    )
    since = None if active is None else active.created_at
    count = repo.count_labels_since(conn, since=since, outcomes=config.learning.labels)
    if active is None:
        return ModelHealth(None, config.model.name, None, count, None, pending)
    auc = ((active.metrics or {}).get("after") or {}).get("roc_auc")
    return ModelHealth(
        active.id,
        config.model.name,
        active.activated_at,
        count,
        None if auc is None else float(auc),
        pending,
        _cohorts(conn, config),
    )


def _cohorts(conn: Connection, config: LeadbotConfig) -> tuple[str, ...]:
    """The running A/B test's cohorts: version, share, labels and conversion so far."""
    test = running_test(conn)
    if test is None:
        return ()
    shares = {"A": 1 - test.share, "B": test.share}
    return tuple(
        f"{c.name} v{c.version_id} ({shares[c.name]:.0%} of leads): {c.labels} labels"
        + ("" if c.labels == 0 else f", {c.conversion:.0%} converted")
        for c in cohort_stats(conn, test, config.learning.labels)
    )


def _gather(
    conn: Connection,
    config: LeadbotConfig,
    period: Period,
    scope: Scope,
    now: datetime,
    sla_hours: float,
    zone: tzinfo = UTC,
) -> Digest:
    members, span = scope.members_filter, {"start": period.start, "end": period.end}
    entries = repo.hot_entries(conn, **span, members=members)
    overdue = now - timedelta(hours=sla_hours)
    waiting = [
        w
        for w in repo.waiting_hot(conn, now=now, members=members)
        if w.since is not None and w.since <= overdue
    ]
    waiting.sort(key=lambda w: (w.since, w.lead.id))
    values = config.learning.labels
    labelled = repo.labels(conn, **span, outcomes=values, members=members)
    latest = _latest_per_lead(labelled)
    by_band = conversions(latest, BANDS, lambda label: label.features.get("band"), values)
    by_grade = conversions(
        latest, GRADES, lambda lb: _snapshot_grade(lb.features, config.model), values
    )
    positive = [o for o, v in values.items() if v > 0]
    counts = repo.funnel(conn, **span, members=members, positive=positive)
    buckets, bucket = hot_counts(entries, period, zone)
    reps = rep_speeds(repo.claims(conn, **span, members=members))
    return Digest(
        period=period,
        scope=scope,
        now=now,
        sla_hours=sla_hours,
        new_hot=tuple(entries),
        waiting=tuple(waiting),
        funnel=tuple((stage, counts[stage]) for stage in FUNNEL),
        by_band=by_band,
        by_grade=by_grade,
        warnings=tuple(inversions(by_band, "") + inversions(by_grade, "grade ")),
        reps=reps,
        heating=tuple(repo.movers(conn, **span, members=members, limit=TOP, rising=True)),
        cooling=tuple(repo.movers(conn, **span, members=members, limit=TOP, rising=False)),
        model=_model_health(conn, config),
        hot_counts=buckets,
        bucket=bucket,
        outbox_dead=dead_of(conn),
        names=names_of(conn, [*(e.claimed_by for e in entries), *(r.rep for r in reps)]),
        by_source=source_checks(labelled, values),
        customers=_customers(conn, config, period, scope),
    )


def _customers(
    conn: Connection, config: LeadbotConfig, period: Period, scope: Scope
) -> CustomersSection | None:
    """Customers are nobody's leads: only the digest of every lead shows them."""
    if scope.kind is not ScopeKind.ALL:
        return None
    start, end = period.start.timestamp(), period.end.timestamp()
    return customer_section(conn, config.rfm, start=start, end=end)


async def build_digest(
    engine: AsyncEngine,
    *,
    config: LeadbotConfig,
    period: Period,
    scope: Scope,
    now: float,
    sla_hours: float = 24.0,
    timezone: str = "UTC",
) -> Digest:
    """Every figure of the digest, read in one transaction (a consistent snapshot).
    ``now`` is unix seconds: the SLA is measured against it. ``timezone`` (the schedule's,
    an IANA name) draws the line between the chart's days."""
    if not sla_hours > 0:
        raise ValueError(f"sla_hours must be more than 0, got {sla_hours!r}")
    moment = datetime.fromtimestamp(now, UTC)
    # Off the event loop: a digest reads and sorts every lead of its scope.
    zone = ZoneInfo(timezone)
    return await offloop.read(engine, _gather, config, period, scope, moment, sla_hours, zone)
