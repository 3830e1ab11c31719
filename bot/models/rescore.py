"""Rescoring every lead with another model without replaying events, and the alerts a
rescore may owe.

A rescore replays no events: each lead's stored state already holds what the model needs
(traits for the fit rules, ``(value, as_of)`` per intent rule, activity times), so the new
scores are one feature matrix built with numpy and one matrix–vector product with the new
points. A rescore alerts only as ``RescoreAlerts`` says.

It rewrites every lead's score, alert time and (when a fit rule changed) state, so on
PostgreSQL it first takes the ingest gate exclusively (``storage.locks``): every replica's
ingest transaction finishes before it reads, and the next ones wait for its commit and then
score with the model it activated. Ingest pauses for the rescore; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from scoring.learn import sigmoid
from scoring.model import DAY, Model, RuleKind
from scoring.state import LeadState
from storage import locks
from storage.crm import touch_linked
from storage.ingest import add_history, enqueue
from storage.rawsql import time_encoder, time_out
from storage.rescores import RescoreRow, leads_to_rescore, set_columns


@dataclass(frozen=True)
class RescoreAlerts:
    """Who hears of leads a rescore turns hot. A lead never alerted gets its first alert
    (reps have not seen it yet); a lead alerted before only with ``alerts.on_rescore`` and
    outside the cooldown. The "why now" is the model version."""

    router: Router
    policy: AlertSettings


@dataclass(frozen=True)
class Rescored:
    leads: int
    history: int
    alerts: int


@dataclass(frozen=True)
class _Scores:
    total: np.ndarray
    fit: np.ndarray
    intent: np.ndarray
    band: np.ndarray
    edges: Thresholds


@dataclass(frozen=True)
class Ahead:
    """The costly part of a rescore, done before its transaction (``prepare``): per lead
    id, the row as read, its state refitted to ``model``, whether its fit set changed, and
    its fit and intent points at ``now``. ``rescore`` reuses a lead's work when its row is
    still the same, so a write transaction holds the lock only for what changed since."""

    model: Model
    now: float
    leads: dict[str, tuple[RescoreRow, LeadState, bool, float, float]]


def prepare(
    conn: Connection, *, model: Model, now: float, only: Callable[[str], bool] | None = None
) -> Ahead:
    """Read every lead ``rescore`` would and do its per-lead work (no write, no lock)."""
    rows = _read(conn, only)
    states, changed, fit, intent = _compute(rows, model, now)
    leads = {
        row[0]: (row, states[i], i in changed, float(fit[i]), float(intent[i]))
        for i, row in enumerate(rows)
    }
    return Ahead(model, now, leads)


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
) -> Rescored:
    """Rescore every non-anonymous lead (those whose id ``only`` accepts, when given) with
    ``model`` at ``now``: one feature matrix, one product with the points, bulk updates,
    history with ``cause``, and the alerts ``alerts`` owes (none when it is None). With
    ``ahead`` (``prepare`` for the same model and ``now``), only leads whose row changed
    since are worked out again."""
    locks.enter(conn, alone=True)
    rows = _read(conn, only)
    if not rows:
        return Rescored(0, 0, 0)
    ids = [r[0] for r in rows]
    states, changed, fit, intent = _reuse(rows, model, now, ahead)
    new = _bands(model, fit, intent)
    grade = _levels(model.grades, new.fit, "D")
    engagement = _levels(model.engagement, new.intent, 1)
    prob = sigmoid(model.intercept + new.total / model.points_per_logodds)
    time = time_encoder(conn)(now)
    values = [
        (float(new.total[i]), float(new.fit[i]), float(new.intent[i]), str(new.band[i]),
         str(grade[i]), int(engagement[i]), float(prob[i]), time, ids[i])
        for i in range(len(ids))
    ]  # fmt: skip
    columns = ("score", "fit", "intent", "band", "grade", "engagement", "probability")
    set_columns(conn, (*columns, "scored_at"), values)
    set_columns(conn, ("state",), [(_dump(states[i].to_dict()), ids[i]) for i in changed])
    history = [
        (ids[i], now, float(new.total[i]), str(new.band[i]), rows[i][2], rows[i][3], cause)
        for i in range(len(ids))
        if new.band[i] != rows[i][3] or abs(new.total[i] - rows[i][2]) >= history_delta
    ]
    add_history(conn, rows=history)
    touch_linked(conn, lead_ids=[h[0] for h in history], at=now)  # their CRM records too
    sent = 0 if alerts is None else _alert(conn, rows, states, new, model, now, cause, alerts)
    return Rescored(len(ids), len(history), sent)


def _read(conn: Connection, only: Callable[[str], bool] | None) -> list[RescoreRow]:
    rows = leads_to_rescore(conn)
    return rows if only is None else [r for r in rows if only(r[0])]


def _compute(
    rows: Sequence[Sequence[Any]], model: Model, now: float
) -> tuple[list[LeadState], list[int], np.ndarray, np.ndarray]:
    """States refitted to ``model``, the indexes whose fit set changed, fit and intent."""
    states = [LeadState.from_dict(_state(r[1])) for r in rows]
    changed = _refit_states(states, model)
    fit, intent = _points(states, model, now)
    return states, changed, fit, intent


def _reuse(
    rows: Sequence[RescoreRow], model: Model, now: float, ahead: Ahead | None
) -> tuple[list[LeadState], list[int], np.ndarray, np.ndarray]:
    """``_compute`` for the rows ``ahead`` did not see as they are now; its work for the rest."""
    if ahead is None or ahead.now != now or ahead.model != model:
        return _compute(rows, model, now)
    done = [ahead.leads.get(r[0]) for r in rows]
    again = [i for i, (r, d) in enumerate(zip(rows, done, strict=True)) if d is None or d[0] != r]
    states: list[LeadState] = [LeadState() if d is None else d[1] for d in done]
    fit = np.array([0.0 if d is None else d[3] for d in done])
    intent = np.array([0.0 if d is None else d[4] for d in done])
    changed = {i for i, d in enumerate(done) if d is not None and d[2]} - set(again)
    if again:
        fresh, moved, fit_again, intent_again = _compute([rows[i] for i in again], model, now)
        for k, i in enumerate(again):
            states[i] = fresh[k]
        fit[again], intent[again] = fit_again, intent_again
        changed |= {again[k] for k in moved}
    return states, sorted(changed), fit, intent


def _points(states: Sequence[LeadState], model: Model, now: float) -> tuple[np.ndarray, np.ndarray]:
    X = feature_matrix(states, model, now)
    points = np.array([rule.points for rule in model.rules])
    is_fit = np.array([rule.kind is RuleKind.FIT for rule in model.rules], dtype=bool)
    return X[:, is_fit] @ points[is_fit], X[:, ~is_fit] @ points[~is_fit]


def _bands(model: Model, fit: np.ndarray, intent: np.ndarray) -> _Scores:
    """Totals, band edges (percentiles of every total, when the model uses them), bands."""
    total = fit + intent
    edges = (
        resolve_thresholds(model.bands, total.tolist())
        if model.bands.uses_percentiles
        else default_thresholds(model.bands)
    )
    band = np.where(total >= edges.hot, "hot", np.where(total >= edges.warm, "warm", "cold"))
    return _Scores(total, fit, intent, band, edges)


def _alert(
    conn: Connection,
    rows: Sequence[Sequence[Any]],
    states: Sequence[LeadState],
    new: _Scores,
    model: Model,
    now: float,
    cause: str,
    alerts: RescoreAlerts,
) -> int:
    """Queue the alerts owed to leads the rescore turned hot; returns how many."""
    cooldown = alerts.policy.cooldown_hours * 3600
    outbox, alerted = [], []
    for i, row in enumerate(rows):
        if new.band[i] != "hot" or row[3] == "hot":
            continue
        last = time_out(row[4])
        if last is not None and not (alerts.policy.on_rescore and now - last >= cooldown):
            continue
        lead = {"id": row[0], "email": row[5], "name": row[6], "company": row[7]}
        explained = score(states[i], model, now, new.edges)
        payload = alert_payload(
            lead=lead, traits=states[i].traits, score=explained,
            why=WhyNow("model", cause, now), now=now,
        )  # fmt: skip
        outbox += [
            {
                "kind": Kind.ALERT, "lead_id": row[0], "destination": dest,
                "dedupe_key": f"alert:{row[0]}:{int(now)}:{dest}"[:255], "payload": payload,
                "status": "pending", "attempts": 0, "available_at": now, "created_at": now,
            }
            for dest in alerts.router.destinations(states[i].traits)
        ]  # fmt: skip
        alerted.append((time_encoder(conn)(now), row[0]))
    set_columns(conn, ("alerted_at",), alerted)
    enqueue(conn, rows=outbox)
    return len(alerted)


def _state(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else orjson.loads(value)


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _refit_states(states: Sequence[LeadState], model: Model) -> list[int]:
    """Re-evaluate fit rules with the new model; the indexes whose fit set changed."""
    changed = []
    for i, state in enumerate(states):
        before = state.fit
        state.refit(model)
        if state.fit != before:
            changed.append(i)
    return changed


def _levels(cutoffs: Sequence[tuple[Any, float]], points: np.ndarray, below: Any) -> np.ndarray:
    """``engine._level`` for every row: the first cut-off the points reach."""
    out = np.full(points.shape, below, dtype=object)
    for level, least in reversed(cutoffs):
        out[points >= least] = level
    return out


def feature_matrix(states: Sequence[LeadState], model: Model, now: float) -> np.ndarray:
    """``(leads, rules)``: ``scoring.engine.feature`` of every rule for every lead at
    ``now``, vectorised by rule kind (fit sets must already be refitted)."""
    column = {rule.id: j for j, rule in enumerate(model.rules)}
    X = np.zeros((len(states), len(model.rules)))
    cells: list[tuple[int, int, float, float]] = []
    for i, state in enumerate(states):
        for rid in state.fit:
            X[i, column[rid]] = 1.0
        for rid, counted in state.intent.items():
            j = column.get(rid)
            if j is not None and model.rules[j].kind is RuleKind.INTENT:
                cells.append((i, j, counted.value, counted.as_of))
    if cells:
        _fill_intent(X, np.array(cells), model, now)
    _fill_inactivity(X, states, model, now, column)
    return X


def _fill_intent(X: np.ndarray, cells: np.ndarray, model: Model, now: float) -> None:
    rows, cols = cells[:, 0].astype(int), cells[:, 1].astype(int)
    half = np.array([r.half_life_seconds or np.inf for r in model.rules])[cols]
    cap = np.array([np.inf if r.cap is None else r.cap for r in model.rules])[cols]
    elapsed = np.maximum(0.0, now - cells[:, 3])
    value = cells[:, 2] * np.power(2.0, -elapsed / half)
    X[rows, cols] = np.minimum(cap, value)


def _fill_inactivity(
    X: np.ndarray, states: Sequence[LeadState], model: Model, now: float, column: dict[str, int]
) -> None:
    if not model.inactivity_rules:
        return
    since = np.array(
        [
            s.active_at if s.active_at is not None else (s.first_seen or np.nan)
            if s.first_seen is not None else np.nan
            for s in states
        ]
    )  # fmt: skip
    with np.errstate(invalid="ignore"):
        for rule in model.inactivity_rules:
            if rule.inactive_days is not None:
                X[:, column[rule.id]] = (now - since >= rule.inactive_days * DAY).astype(float)
