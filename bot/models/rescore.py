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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy.engine import Connection

from bot.chat.alerts import WhyNow, alert_payload
from bot.chat.routing import Router
from bot.outbox.messages import Kind
from config.schema import AlertSettings
from scoring import score
from scoring.bands import Thresholds, default_thresholds, resolve_thresholds
from scoring.engine import feature, scaled_points
from scoring.learn import sigmoid
from scoring.model import DAY, Model, Rule, RuleKind, lookup
from scoring.state import LeadState
from storage import locks
from storage.crm import touch_linked
from storage.ingest import add_history, enqueue
from storage.rawsql import time_encoder, time_out
from storage.rescores import (
    RescoreRow,
    any_crm_link,
    lead_chunks,
    roomy_cache,
    rows_by_id,
    set_columns,
)

# Leads a chunk: large enough that per-statement costs vanish, small enough that a chunk's
# rows and decoded states stay a few tens of MB.
CHUNK = 10_000

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
class Known:
    """Fit and intent points of stored states already worked out for one model at one
    ``now``, and whether the state's fit set changes: 25 bytes a lead, in numpy arrays
    sorted by the state's key (Python's 64-bit hash of its stored JSON text). Points depend
    on nothing but the state, so a lead whose stored text is the same as when it was worked
    out reuses them; one whose text changed (written since) misses and is worked out again."""

    keys: np.ndarray
    fit: np.ndarray
    intent: np.ndarray
    changed: np.ndarray

    def __len__(self) -> int:
        return int(self.keys.size)

    @staticmethod
    def of(parts: Sequence[_Worked]) -> Known:
        keys = np.concatenate([p.keys for p in parts]) if parts else np.zeros(0, np.int64)
        order = np.argsort(keys, kind="stable")

        def column(name: str, dtype: Any) -> np.ndarray:
            if not parts:
                return np.zeros(0, dtype)
            return np.concatenate([getattr(p, name) for p in parts])[order]

        return Known(keys[order], column("fit", float), column("intent", float),
                     column("changed", bool))  # fmt: skip

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, where) for each key."""
        if not self.keys.size:
            return np.zeros(keys.size, bool), np.zeros(keys.size, np.intp)
        where = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return self.keys[where] == keys, where


@dataclass(frozen=True)
class Ahead:
    """The costly part of a rescore, done before its transaction (``prepare``): every lead's
    points under ``model`` at ``now``, by stored state. ``rescore`` reuses a lead's work when
    its state is still the same, so a write transaction holds the lock only for what changed
    since, and the writes."""

    model: Model
    now: float
    leads: Known


@dataclass
class _Worked:
    """A chunk's leads worked out: state keys, points, whether the fit set changed; for the
    leads decoded here, their state dict and new fit set (by index in the chunk)."""

    keys: np.ndarray
    fit: np.ndarray
    intent: np.ndarray
    changed: np.ndarray
    decoded: dict[int, tuple[dict[str, Any], frozenset[str]]]


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
) -> Ahead:
    """Work out every lead ``rescore`` would (no write, no lock), a chunk at a time."""
    plan = _Plan.of(model)
    parts = [_work(rows, _EMPTY, plan, now, keep=False) for rows in _pages(conn, only, chunk)]
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
    plan = _Plan.of(model)
    fresh = ahead is not None and ahead.now == now and ahead.model == model
    known = ahead.leads if ahead is not None and fresh else _EMPTY
    if model.bands.uses_percentiles:
        parts = [_work(rows, known, plan, now, keep=False) for rows in _pages(conn, only, chunk)]
        known = Known.of(parts)
        if not len(known):
            return Rescored(0, 0, 0)
        edges = resolve_thresholds(model.bands, (known.fit + known.intent).tolist())
    else:
        edges = default_thresholds(model.bands)
    leads = history = 0
    owed = _Owed(alerts.policy.rescore_limit if alerts else 0, now, alerts)
    with roomy_cache(conn):
        for rows in _pages(conn, only, chunk):
            worked = _work(rows, known, plan, now, keep=True)
            new = _bands(worked.fit, worked.intent, edges)
            history += _write(conn, rows, worked, new, model, now, history_delta, cause, linked)
            owed.note(rows, new)
            leads += len(rows)
    sent = _alert(conn, owed.chosen(), model, now, edges, cause, alerts) if alerts else 0
    return Rescored(leads, history, sent, owed.eligible - sent)


_EMPTY = Known.of([])


def _pages(
    conn: Connection, only: Callable[[str], bool] | None, chunk: int
) -> Iterator[list[RescoreRow]]:
    for rows in lead_chunks(conn, chunk):
        kept = rows if only is None else [r for r in rows if only(r.id)]
        if kept:
            yield kept


@dataclass(frozen=True)
class _Plan:
    """What a model's feature matrix needs, worked out once per rescore."""

    model: Model
    column: Mapping[str, int]
    intent_column: Mapping[str, int]
    gated: Mapping[int, Rule]  # intent rules with ``lead`` conditions, by column
    points: np.ndarray
    half_life: np.ndarray
    cap: np.ndarray
    no_traits_fit: frozenset[str]
    fit_sets: _FitSets
    _fit_points: dict[frozenset[str], float] = field(default_factory=dict)

    def fit_points(self, fit: frozenset[str]) -> float:
        """The points of a fit set (sets repeat: ``_FitSets`` hands out the same ones)."""
        points = self._fit_points.get(fit)
        if points is None:
            if len(self._fit_points) > _FitSets.MEMO:
                self._fit_points.clear()
            points = self._fit_points[fit] = float(
                sum(self.points[self.column[rid]] for rid in fit)
            )
        return points

    @staticmethod
    def of(model: Model) -> _Plan:
        rules = model.rules
        return _Plan(
            model=model,
            column={r.id: j for j, r in enumerate(rules)},
            intent_column={r.id: j for j, r in enumerate(rules) if r.kind is RuleKind.INTENT},
            gated={j: r for j, r in enumerate(rules) if r.kind is RuleKind.INTENT and r.lead},
            points=np.array([r.points for r in rules], dtype=float),
            half_life=np.array([r.half_life_seconds or np.inf for r in rules]),
            cap=np.array([np.inf if r.cap is None else r.cap for r in rules]),
            no_traits_fit=_fit_set(model, {}),
            fit_sets=_FitSets(model),
        )


_SCALARS = (str, int, float, bool, type(None))


class _FitSets:
    """``_fit_set`` for many leads, remembered: a condition depends on its path's value
    alone, and leads share titles, industries, countries and sizes. A lead whose values on
    every path the rules read were seen before (its profile) costs one dict look-up; else
    each condition's answer is remembered per value (a regular expression runs once per
    title). Keys carry the values' types: 1, 1.0 and True are equal in Python but not to
    every condition. Each memory is cleared past ``MEMO`` entries, so it stays bounded."""

    MEMO = 200_000

    def __init__(self, model: Model) -> None:
        conditions = list(dict.fromkeys(c for r in model.fit_rules for c in r.conditions))
        index = {c: j for j, c in enumerate(conditions)}
        self._conditions = conditions
        self._paths = list(dict.fromkeys(c.path for c in conditions))
        self._rules = [(r.id, [index[c] for c in r.conditions]) for r in model.fit_rules]
        self._memo: dict[tuple[int, type, Any], bool] = {}
        self._profiles: dict[tuple[tuple[Any, ...], tuple[type, ...]], frozenset[str]] = {}

    def of(self, traits: Mapping[str, Any]) -> frozenset[str]:
        values = [lookup(traits, path) for path in self._paths]
        if all(isinstance(v, _SCALARS) for v in values):  # the whole profile seen before?
            key = (tuple(values), tuple(map(type, values)))
            known = self._profiles.get(key)
            if known is None:
                if len(self._profiles) > self.MEMO:
                    self._profiles.clear()
                known = self._profiles[key] = self._match(traits, values)
            return known
        return self._match(traits, values)

    def _match(self, traits: Mapping[str, Any], listed: list[Any]) -> frozenset[str]:
        values = dict(zip(self._paths, listed, strict=True))
        memo = self._memo
        if len(memo) > self.MEMO:
            memo.clear()
        answers = []
        for j, condition in enumerate(self._conditions):
            value = values[condition.path]
            if not isinstance(value, _SCALARS):
                answers.append(condition.matches(traits))
                continue
            key = (j, type(value), value)
            answer = memo.get(key)
            if answer is None:
                answer = memo[key] = condition.matches(traits)
            answers.append(answer)
        return frozenset(rid for rid, needs in self._rules if all(answers[j] for j in needs))


def _fit_set(model: Model, traits: Mapping[str, Any]) -> frozenset[str]:
    """``LeadState.refit``'s fit set for these traits."""
    return frozenset(r.id for r in model.fit_rules if all(c.matches(traits) for c in r.conditions))


def _work(
    rows: Sequence[RescoreRow], known: Known, plan: _Plan, now: float, *, keep: bool
) -> _Worked:
    """Points for a chunk: from ``known`` where the stored state is the same, else worked
    out from the decoded state. With ``keep``, leads whose fit set changes are decoded even
    when known (their new state must be written), and decoded states are kept."""
    keys = np.fromiter((hash(r.state) for r in rows), dtype=np.int64, count=len(rows))
    found, where = known.find(keys)
    changed = found & known.changed[where] if len(known) else np.zeros(len(rows), bool)
    fit = np.where(found, known.fit[where] if len(known) else 0.0, 0.0)
    intent = np.where(found, known.intent[where] if len(known) else 0.0, 0.0)
    again = np.flatnonzero(~found | changed) if keep else np.flatnonzero(~found)
    decoded: dict[int, tuple[dict[str, Any], frozenset[str]]] = {}
    if again.size:
        states = [orjson.loads(rows[i].state) for i in again.tolist()]
        fits = [_refit(s, plan) for s in states]
        fit[again], intent[again] = _points(states, fits, plan, now)
        changed[again] = [
            f != frozenset(s.get("fit") or ()) for s, f in zip(states, fits, strict=True)
        ]
        if keep:
            decoded = {int(i): (s, f) for i, s, f in zip(again, states, fits, strict=True)}
    return _Worked(keys, fit, intent, changed, decoded)


def _refit(state: Mapping[str, Any], plan: _Plan) -> frozenset[str]:
    traits = state.get("traits")
    return plan.fit_sets.of(traits) if traits else plan.no_traits_fit


def _points(
    states: Sequence[Mapping[str, Any]], fits: Sequence[frozenset[str]], plan: _Plan, now: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fit and intent points of decoded states (``fits``: their refitted fit sets), as
    ``_matrix`` times the points, without the dense matrix: a fit set's points are summed
    once per set, and intent cells (about five a lead) are scored where they are."""
    n = len(states)
    fit = np.fromiter((plan.fit_points(f) for f in fits), dtype=float, count=n)
    if plan.model.scaled_rules:
        fit += _scaled_points(states, plan.model)
    intent_column = plan.intent_column
    at, cols, values, as_of = [], [], [], []
    since = np.empty(n)
    gated = plan.gated
    for i, state in enumerate(states):
        for rid, counted in (state.get("intent") or {}).items():
            j = intent_column.get(rid)
            if j is not None and (j not in gated or gated[j].admits(state.get("traits") or {})):
                at.append(i)
                cols.append(j)
                values.append(counted[0])
                as_of.append(counted[1])
        since[i] = _since(state)
    intent: np.ndarray = np.zeros(n)
    if at:
        rule = np.array(cols, dtype=np.intp)
        elapsed = np.maximum(0.0, now - np.array(as_of, dtype=float))
        value = np.array(values, dtype=float) * np.power(2.0, -elapsed / plan.half_life[rule])
        weights = np.minimum(plan.cap[rule], value) * plan.points[rule]
        intent = np.bincount(np.array(at, dtype=np.intp), weights=weights, minlength=n)
    with np.errstate(invalid="ignore"):
        for idle in plan.model.inactivity_rules:
            if idle.inactive_days is not None:
                intent += (now - since >= idle.inactive_days * DAY) * idle.points
    return fit, intent


def _scaled_points(states: Sequence[Mapping[str, Any]], model: Model) -> np.ndarray:
    """The points of the model's scaled rules, read off each decoded state's traits."""
    found = (scaled_points(model, s.get("traits") or {}) for s in states)
    return np.fromiter(found, dtype=float, count=len(states))


def _since(state: Mapping[str, Any]) -> float | None:
    """When inactivity counts from, as ``LeadState``: the last activity, else the first
    sighting (a first_seen of 0.0 counts as none there), else never (nan)."""
    active = state.get("active_at")
    if active is not None:
        return float(active)
    return state.get("first_seen") or np.nan


def _matrix(
    n: int,
    fit_cells: Sequence[tuple[int, int]],
    intent_cells: Sequence[tuple[int, int, float, float]],
    since: np.ndarray,
    plan: _Plan,
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


def _scaled_columns(X: np.ndarray, states: Sequence[LeadState], plan: _Plan) -> np.ndarray:
    for rule in plan.model.scaled_rules:
        X[:, plan.column[rule.id]] = [feature(rule, s, 0.0) for s in states]  # traits only
    return X


def feature_matrix(states: Sequence[LeadState], model: Model, now: float) -> np.ndarray:
    """``(leads, rules)``: ``scoring.engine.feature`` of every rule for every lead at
    ``now``, vectorised by rule kind (fit sets must already be refitted)."""
    plan = _Plan.of(model)
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
    worked: _Worked,
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
    states = [_dump(_state(worked, rows, i).to_dict()) for i in rewrite]
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


def _state(worked: _Worked, rows: Sequence[RescoreRow], i: int) -> LeadState:
    """Lead ``i``'s state refitted to the model, as ``LeadState.refit`` leaves it. A lead
    not decoded in this chunk was known with an unchanged fit set: its stored one is right."""
    done = worked.decoded.get(i)
    if done is None:
        return LeadState.from_dict(orjson.loads(rows[i].state))
    state = LeadState.from_dict(done[0])
    state.fit = done[1]
    return state


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


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _levels(cutoffs: Sequence[tuple[Any, float]], points: np.ndarray, below: Any) -> np.ndarray:
    """``engine._level`` for every row: the first cut-off the points reach."""
    out = np.full(points.shape, below, dtype=object)
    for level, least in reversed(cutoffs):
        out[points >= least] = level
    return out
