"""Rescoring every lead with another model without replaying events, and the alerts a
rescore may owe.

A rescore replays no events: each lead's stored state already holds what the model needs
(traits for the fit rules, ``(value, as_of)`` per intent rule, activity times), so the new
scores are a feature matrix built with numpy and a matrix–vector product with the new
points. A rescore alerts only as ``RescoreAlerts`` says.

It streams: leads are read a chunk at a time (``storage.rescores.lead_chunks``), and each
chunk goes through the whole pipeline (decode the state JSON, features, scores, bulk
updates, history, CRM touch, alerts) before the next is read, so memory holds one chunk,
whatever the number of leads, and the work stays in one transaction. States are decoded into
plain dicts; a ``LeadState`` is built only for a lead whose stored state must be rewritten
(its fit set changed) or who is owed an alert. Percentile bands need every total before
any band: then a first pass works the totals out (keeping only 25 bytes a lead) and the
second reuses them.

It rewrites every lead's score, alert time and (when a fit rule changed) state, so on
PostgreSQL it first takes the ingest gate exclusively (``storage.locks``): every replica's
ingest transaction finishes before it reads, and the next ones wait for its commit and then
score with the model it activated. Ingest pauses for the rescore; nothing is lost.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy.engine import Connection

from bot.chat.alerts import WhyNow, alert_payload
from bot.chat.routing import Router
from bot.models.rescore_helper import ALL_ROWIDS, PointsHelper
from bot.models.rescore_points import EMPTY, Known, Plan, Worked, refitted, work
from bot.outbox.messages import Kind
from config.schema import AlertSettings
from scoring import score
from scoring.bands import Thresholds, default_thresholds, resolve_thresholds
from scoring.engine import feature
from scoring.learn import sigmoid
from scoring.model import DAY, Model
from scoring.state import LeadState
from storage import locks
from storage.crm import touch_linked
from storage.engine import sqlite_path
from storage.ingest import add_history, enqueue
from storage.rawsql import time_encoder, time_out
from storage.rescores import (
    RescoreRow,
    any_crm_link,
    last_rowid,
    lead_chunks,
    roomy_cache,
    rows_by_id,
    set_columns,
)

# Leads a chunk: large enough that per-statement costs vanish, small enough that a chunk's
# rows and decoded states stay a few tens of MB.
CHUNK = 10_000
# From how many leads (SQLite rowids) ``prepare`` hands the points to a helper process
# (``bot.models.rescore_helper``): below, working them out here is quicker than starting it.
HELPER_FROM = 30_000

_SCORE_COLUMNS = ("score", "fit", "intent", "band", "grade", "engagement", "probability",
                  "scored_at")  # fmt: skip
_SAME_BAND_COLUMNS = tuple(c for c in _SCORE_COLUMNS if c != "band")


@dataclass(frozen=True)
class RescoreAlerts:
    """Who hears of leads a rescore turns hot. A lead never alerted gets its first alert
    (reps have not seen it yet); a lead alerted before only with ``alerts.on_rescore`` and
    outside the cooldown. The "why now" is the model version."""

    router: Router
    policy: AlertSettings


@dataclass(frozen=True)
class Rescored:
    """Leads rescored, history rows written, alerts queued, and ``held``: leads the rescore
    turned hot and would have alerted but for ``alerts.rescore_limit``."""

    leads: int
    history: int
    alerts: int
    held: int = 0


@dataclass(frozen=True)
class Ahead:
    """The costly part of a rescore, done apart from its writes (``prepare``): every lead's
    points under ``model`` at ``now``, by stored state. ``rescore`` reuses a lead's work when
    its state is still the same, so a write transaction holds the lock only for what changed
    since, and the writes. The points are ``leads``, worked out before the transaction, or
    come from ``helper``, a process working them out a page at a time while the
    transaction writes the pages before (SQLite, many leads). ``close()`` when done."""

    model: Model
    now: float
    leads: Known = EMPTY
    helper: PointsHelper | None = None

    def page(self, rows: Sequence[RescoreRow]) -> Known:
        """What is known of a page of leads (pages come in key order)."""
        if self.helper is None:
            return self.leads
        return self.helper.known_for(rows[0].key, rows[-1].key)

    def whole(self) -> Known:
        """What is known of every lead."""
        return self.leads if self.helper is None else self.helper.known_for(-1, ALL_ROWIDS)

    def close(self) -> None:
        """Stop the helper process, if any (it has stopped by itself once through)."""
        if self.helper is not None:
            self.helper.close()


@dataclass(frozen=True)
class _Scores:
    total: np.ndarray
    fit: np.ndarray
    intent: np.ndarray
    band: np.ndarray
    edges: Thresholds


def prepare(
    conn: Connection,
    *,
    model: Model,
    now: float,
    only: Callable[[str], bool] | None = None,
    chunk: int = CHUNK,
    helper_from: int | None = HELPER_FROM,
) -> Ahead:
    """Work out every lead ``rescore`` would (no write, no lock), a chunk at a time. On a
    SQLite file whose leads reach rowid ``helper_from`` (None: never), a helper process
    does it instead, while the rescore writes; this returns once it sent its first page.
    Not for percentile bands: they need every lead's points before the first write, and
    those are better worked out here, before the write lock is taken."""
    path = sqlite_path(conn.engine.url.render_as_string(hide_password=False))
    streamed = only is None and not model.bands.uses_percentiles
    if path and streamed and helper_from is not None and last_rowid(conn) >= helper_from:
        helper = PointsHelper.start(path, model, now, chunk)
        if helper is not None:
            return Ahead(model, now, helper=helper)
    plan = Plan.of(model)
    parts = [work(_texts(rows), EMPTY, plan, now, keep=False) for rows in _pages(conn, only, chunk)]
    return Ahead(model, now, Known.of(parts))


def rescore(
    conn: Connection,
    *,
    model: Model,
    now: float,
    history_delta: float,
    cause: str,
    alerts: RescoreAlerts | None = None,
    only: Callable[[str], bool] | None = None,
    ahead: Ahead | None = None,
    chunk: int = CHUNK,
) -> Rescored:
    """Rescore every non-anonymous lead (those whose id ``only`` accepts, when given) with
    ``model`` at ``now``, ``chunk`` leads at a time: features, points, bulk updates,
    history with ``cause``, and the alerts ``alerts`` owes (none when it is None). With
    ``ahead`` (``prepare`` for the same model and ``now``), only leads whose stored state
    changed since are worked out again."""
    locks.enter(conn, alone=True)
    # No link now, none to touch. SQLite: nobody else writes before the commit; PostgreSQL: a
    # link committed meanwhile would miss touch_linked's own UPDATE just the same.
    linked = any_crm_link(conn)
    plan = Plan.of(model)
    fresh = ahead is not None and ahead.now == now and ahead.model == model
    source = ahead if ahead is not None and fresh else Ahead(model, now)
    if model.bands.uses_percentiles:
        whole = source.whole()
        parts = [work(_texts(rows), whole, plan, now, keep=False)
                 for rows in _pages(conn, only, chunk)]  # fmt: skip
        source = Ahead(model, now, Known.of(parts))
        if not len(source.leads):
            return Rescored(0, 0, 0)
        edges = resolve_thresholds(model.bands, (source.leads.fit + source.leads.intent).tolist())
    else:
        edges = default_thresholds(model.bands)
    leads = history = 0
    owed = _Owed(alerts.policy.rescore_limit if alerts else 0, now, alerts)
    with roomy_cache(conn):
        for rows in _pages(conn, only, chunk):
            worked = work(_texts(rows), source.page(rows), plan, now, keep=True)
            new = _bands(worked.fit, worked.intent, edges)
            history += _write(conn, rows, worked, new, model, now, history_delta, cause, linked)
            owed.note(rows, new)
            leads += len(rows)
    sent = _alert(conn, owed.chosen(), model, now, edges, cause, alerts) if alerts else 0
    return Rescored(leads, history, sent, owed.eligible - sent)


def _texts(rows: Sequence[RescoreRow]) -> list[str]:
    return [r.state for r in rows]


def _pages(
    conn: Connection, only: Callable[[str], bool] | None, chunk: int
) -> Iterator[list[RescoreRow]]:
    for rows in lead_chunks(conn, chunk):
        kept = rows if only is None else [r for r in rows if only(r.id)]
        if kept:
            yield kept


def _matrix(
    n: int,
    fit_cells: Sequence[tuple[int, int]],
    intent_cells: Sequence[tuple[int, int, float, float]],
    since: np.ndarray,
    plan: Plan,
    now: float,
) -> np.ndarray:
    """``(leads, rules)``: ``scoring.engine.feature`` of every rule for every lead at ``now``."""
    X = np.zeros((n, len(plan.model.rules)))
    if fit_cells:
        at = np.array(fit_cells, dtype=np.intp)
        X[at[:, 0], at[:, 1]] = 1.0
    if intent_cells:
        cells = np.array(intent_cells)
        rows, cols = cells[:, 0].astype(np.intp), cells[:, 1].astype(np.intp)
        elapsed = np.maximum(0.0, now - cells[:, 3])
        value = cells[:, 2] * np.power(2.0, -elapsed / plan.half_life[cols])
        X[rows, cols] = np.minimum(plan.cap[cols], value)
    with np.errstate(invalid="ignore"):
        for rule in plan.model.inactivity_rules:
            if rule.inactive_days is not None:
                X[:, plan.column[rule.id]] = (now - since >= rule.inactive_days * DAY).astype(float)
    return X


def _scaled_columns(X: np.ndarray, states: Sequence[LeadState], plan: Plan) -> np.ndarray:
    for rule in plan.model.scaled_rules:
        X[:, plan.column[rule.id]] = [feature(rule, s, 0.0) for s in states]  # traits only
    return X


def feature_matrix(states: Sequence[LeadState], model: Model, now: float) -> np.ndarray:
    """``(leads, rules)``: ``scoring.engine.feature`` of every rule for every lead at
    ``now``, vectorised by rule kind (fit sets must already be refitted)."""
    plan = Plan.of(model)
    fit_cells = [(i, plan.column[rid]) for i, s in enumerate(states) for rid in s.fit]
    cells = [
        (i, j, c.value, c.as_of)
        for i, s in enumerate(states)
        for rid, c in s.intent.items()
        if (j := plan.intent_column.get(rid)) is not None
        and (j not in plan.gated or plan.gated[j].admits(s.traits))
    ]
    since = np.array(
        [
            s.active_at if s.active_at is not None else (s.first_seen or np.nan)
            if s.first_seen is not None else np.nan
            for s in states
        ],
        dtype=float,
    )  # fmt: skip
    return _scaled_columns(_matrix(len(states), fit_cells, cells, since, plan, now), states, plan)


def _bands(fit: np.ndarray, intent: np.ndarray, edges: Thresholds) -> _Scores:
    total = fit + intent
    band = np.where(total >= edges.hot, "hot", np.where(total >= edges.warm, "warm", "cold"))
    return _Scores(total, fit, intent, band, edges)


def _write(
    conn: Connection,
    rows: Sequence[RescoreRow],
    worked: Worked,
    new: _Scores,
    model: Model,
    now: float,
    history_delta: float,
    cause: str,
    linked: bool,
) -> int:
    """A chunk's scores (and rewritten states), history rows and CRM touches (``linked``:
    some lead has a CRM record); returns the history rows written."""
    grade = _levels(model.grades, new.fit, "D")
    engagement = _levels(model.engagement, new.intent, 1)
    prob = sigmoid(model.intercept + new.total / model.points_per_logodds)
    time = time_encoder(conn)(now)
    total, band = new.total.tolist(), new.band.tolist()
    levels = [int(e) for e in engagement.tolist()]
    columns = (total, new.fit.tolist(), new.intent.tolist(), band, grade.tolist(), levels,
               prob.tolist(), [time] * len(rows))  # fmt: skip
    values = list(zip(*columns, strict=True))
    rebanded = new.band != np.array([r.band for r in rows])
    rewrite = np.flatnonzero(worked.changed).tolist()
    # SQLite rewrites an index entry for every column an UPDATE sets, changed or not: the
    # band goes only where it changed (ix_leads_band; ~0.3 s at 200,000 leads).
    kept = ~worked.changed  # the stored state stays: only the scores are written
    new_band = [(*values[i], rows[i].key) for i in np.flatnonzero(kept & rebanded).tolist()]
    set_columns(conn, _SCORE_COLUMNS, new_band, by_key=True)
    same_band = [(*values[i][:3], *values[i][4:], rows[i].key)
                 for i in np.flatnonzero(kept & ~rebanded).tolist()]  # fmt: skip
    set_columns(conn, _SAME_BAND_COLUMNS, same_band, by_key=True)
    states = [_rewritten(worked, i) for i in rewrite]
    rewritten = [(*values[i], text, rows[i].key) for i, text in zip(rewrite, states, strict=True)]
    set_columns(conn, (*_SCORE_COLUMNS, "state"), rewritten, by_key=True)
    before = np.array([r.score for r in rows], dtype=float)
    moved = rebanded | (np.abs(new.total - before) >= history_delta)
    history = [
        (rows[i].id, now, total[i], band[i], rows[i].score, rows[i].band, cause)
        for i in np.flatnonzero(moved).tolist()
    ]
    add_history(conn, rows=history)
    if linked:
        touch_linked(conn, lead_ids=[h[0] for h in history], at=now)  # their CRM records too
    return len(history)


def _rewritten(worked: Worked, i: int) -> str:
    """Lead ``i``'s state refitted to the model, as ``LeadState.refit`` leaves it, as the
    text to store: as it came worked out (the helper's), else from the state decoded here
    (``work`` with ``keep`` decodes every lead whose fit set changes and has no text)."""
    text = worked.text(i)
    return text if text is not None else refitted(*worked.decoded[i])


class _Owed:
    """The leads a rescore owes an alert: turned hot, and never alerted (or, with
    ``alerts.on_rescore``, alerted before the cooldown). At most ``limit`` of them are
    alerted, the highest scores first (None: all): a model change can turn thousands of
    leads hot at once, and a channel flooded with thousands of alerts (which Slack then
    delivers at about one a second) is read by nobody. The rest stay in ``leadbot top``."""

    def __init__(self, limit: int | None, now: float, alerts: RescoreAlerts | None) -> None:
        self.limit, self.now, self.on = limit, now, alerts is not None
        self.policy = alerts.policy if alerts is not None else None
        self.eligible = 0
        self._heap: list[tuple[float, str]] = []  # the ``limit`` highest (total, id) so far

    def note(self, rows: Sequence[RescoreRow], new: _Scores) -> None:
        if not self.on or self.policy is None:
            return
        cooldown = self.policy.cooldown_hours * 3600
        hot = (new.band == "hot") & np.array([r.band != "hot" for r in rows])
        for i in np.flatnonzero(hot).tolist():
            last = time_out(rows[i].alerted_at)
            if last is not None and not (self.policy.on_rescore and self.now - last >= cooldown):
                continue
            self.eligible += 1
            entry = (float(new.total[i]), rows[i].id)
            if self.limit is None or len(self._heap) < self.limit:
                heapq.heappush(self._heap, entry)
            elif self.limit and entry > self._heap[0]:
                heapq.heapreplace(self._heap, entry)

    def chosen(self) -> list[str]:
        """The lead ids to alert, highest score first."""
        return [lead_id for _, lead_id in sorted(self._heap, reverse=True)]


def _alert(
    conn: Connection,
    ids: Sequence[str],
    model: Model,
    now: float,
    edges: Thresholds,
    cause: str,
    alerts: RescoreAlerts,
) -> int:
    """Queue the alerts of leads ``ids`` (highest score first), read after the rescore's
    writes so their state is the one stored; returns how many leads were alerted."""
    by_id = {row.id: row for row in rows_by_id(conn, ids)}
    outbox, alerted = [], []
    for lead_id in ids:
        row = by_id[lead_id]
        state = LeadState.from_dict(orjson.loads(row.state))
        lead = {"id": row.id, "email": row.email, "name": row.name, "company": row.company}
        explained = score(state, model, now, edges)
        payload = alert_payload(
            lead=lead, traits=state.traits, score=explained,
            why=WhyNow("model", cause, now), now=now,
        )  # fmt: skip
        outbox += [
            {
                "kind": Kind.ALERT, "lead_id": row.id, "destination": dest,
                "dedupe_key": f"alert:{row.id}:{int(now)}:{dest}"[:255], "payload": payload,
                "status": "pending", "attempts": 0, "available_at": now, "created_at": now,
            }
            for dest in alerts.router.destinations(state.traits)
        ]  # fmt: skip
        alerted.append((time_encoder(conn)(now), row.key))
    set_columns(conn, ("alerted_at",), alerted, by_key=True)
    enqueue(conn, rows=outbox)
    return len(alerted)


def _levels(cutoffs: Sequence[tuple[Any, float]], points: np.ndarray, below: Any) -> np.ndarray:
    """``engine._level`` for every row: the first cut-off the points reach."""
    out = np.full(points.shape, below, dtype=object)
    for level, least in reversed(cutoffs):
        out[points >= least] = level
    return out
