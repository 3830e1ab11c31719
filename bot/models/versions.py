"""Model versions: propose one from feedback (``retrain``), activate it or roll back, and
rescore every lead in the same transaction (``bot.models.rescore``).

The running ingest follows the active version by itself (``bot.models.live``): an activation made
here, by a manager's click or from the CLI, scores the next event committed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import RESCORE_SECONDS
from bot.models.backfill import recount_changed
from bot.models.discovered import Discovered, rules_to_propose
from bot.models.label_weights import Weighed, describe_sources, reason_of, weigh
from bot.models.live import model_of_yaml
from bot.models.rescore import Ahead, RescoreAlerts, prepare, rescore
from bot.models.snapshots import fill_fit_features, labelled_snapshots
from config.crm import Crm
from config.learning import DEFAULT_LABELS, LabelWeights
from config.writer import model_yaml
from scoring.discover import Discovery
from scoring.model import Model
from scoring.refit import Guardrails, Proposal, propose
from scoring.snapshot import LEAKS
from storage import abtests, offloop
from storage import models as repo
from storage.labels import Label, labels_of
from storage.models import Status
from storage.tables import ModelVersion

# Outcomes that are labels, and their value, unless the config's ``learning.labels`` says
# otherwise; other outcomes teach the refit nothing.
LABELS: Mapping[str, float] = DEFAULT_LABELS
CRM_WEIGHT = Crm().label_weight  # a CRM outcome's weight unless ``crm.label_weight`` says


@dataclass(frozen=True)
class RetrainResult:
    """The proposal, the version it was fitted against, and the stored version's number
    (None when nothing changed: then ``proposal.reason`` says why). ``sources``: labels
    the refit used per source ("rep", "crm:hubspot" …); ``set_aside``: labels a lead's CRM
    outcome replaced (``bot.models.label_weights``); ``new_rules``: the rules the proposal
    adds (id, label, points, support, won rate), apart from the reweighted ones."""

    proposal: Proposal
    base_id: int
    version_id: int | None
    sources: Mapping[str, int] = field(default_factory=dict)
    set_aside: int = 0
    new_rules: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Rescore:
    """What an activation or rollback did: the version now active, the one before, how
    many leads were rescored, history rows written and alerts queued."""

    version_id: int
    previous_id: int | None
    leads: int
    history: int
    alerts: int = 0
    held: int = 0  # turned hot, not alerted: past ``alerts.rescore_limit``


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def model_of(version: Any) -> Model:
    """The model a stored version holds."""
    return model_of_yaml(version.yaml, version.id)


async def active_model(engine: AsyncEngine) -> tuple[int, Model] | None:
    """The active stored version and its model, if a version was ever activated."""
    async with engine.connect() as conn:
        version = await conn.run_sync(repo.active_version)
    return None if version is None else (_id(version), model_of(version))


def ensure_active(conn: Connection, *, config_model: Model, now: float) -> tuple[int, Model]:
    """The active version and its model; on first use the configured model is stored as
    version 1, active."""
    active = repo.active_version(conn)
    if active is not None:
        return _id(active), model_of(active)
    yaml = model_yaml(config_model, header="the configured model, stored on first use")
    vid = repo.add_version(
        conn, yaml=yaml, status=Status.ACTIVE, created_by="config", created_at=_at(now)
    )
    return vid, config_model


def labelled_features(
    conn: Connection, model: Model, labels: Mapping[str, float] = LABELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features ``(n, rules)`` in ``model``'s rule order from each label's snapshot (a fit
    rule the snapshot lacks is read from the label's traits, ``fill_fit_features``; another
    rule counts 0), labels 0/1 and label times, oldest first. ``labels``
    maps the outcomes that are labels to their value."""
    X, y, at, _ = weighted_features(conn, model, labels)
    return X, y, at


def weighted_features(
    conn: Connection,
    model: Model,
    labels: Mapping[str, float] = LABELS,
    crm_weight: float = CRM_WEIGHT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Weighed]:
    """``labelled_features`` and each label's weight in the refit (a CRM outcome's is
    ``crm_weight``; see ``bot.models.label_weights`` for when one replaces a rep's)."""
    X, y, at, weighed, _ = _weighted(conn, model, labels, crm_weight)
    return X, y, at, weighed


def _weighted(
    conn: Connection,
    model: Model,
    labels: Mapping[str, float],
    crm_weight: float,
    by: LabelWeights | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Weighed, list[Label]]:
    ids = [rule.id for rule in model.rules]
    X, y, at = [], [], []
    read = labels_of(conn, outcomes=list(labels))
    for label in read:
        snapshot = (label.features or {}).get("rules") or {}
        X.append([float(snapshot.get(rid) or 0.0) for rid in ids])
        y.append(labels[label.outcome])
        at.append(label.at.timestamp())
    X_ = np.array(X, dtype=float).reshape(len(y), len(ids))
    fill_fit_features(conn, model, read, X_)
    return X_, np.array(y), np.array(at), weigh(read, crm_weight, by), read


async def retrain(
    *,
    engine: AsyncEngine,
    config_model: Model,
    guardrails: Guardrails,
    now: float,
    created_by: str = "retrain",
    labels: Mapping[str, float] = LABELS,
    then: Callable[[Connection, RetrainResult], None] | None = None,
    crm_weight: float = CRM_WEIGHT,
    discovery: Discovery | None = None,
    excluded: Collection[str] = LEAKS,
    label_weights: LabelWeights | None = None,
) -> RetrainResult:
    """Refit the active model on every label; store a ``proposed`` version when the refit
    changes something. With ``discovery``, the refit may add rules the labels' snapshots
    support (``bot.models.discovered``; never from ``excluded`` traits). ``label_weights``
    (``learning.weights``) weighs labels by source and disqualify reason. ``then`` runs in
    the same transaction (the learner queues the proposal's message there, so a stored
    proposal is never left unannounced). ``bot.models.learning.retrain_now`` is what the
    bot and its schedules call."""

    def run(conn: Connection) -> RetrainResult:
        result = _retrain(conn)
        if then is not None:
            then(conn, result)
        return result

    def _retrain(conn: Connection) -> RetrainResult:
        base_id, model = ensure_active(conn, config_model=config_model, now=now)
        X, y, at, weighed, read = _weighted(conn, model, labels, crm_weight, label_weights)
        weights = np.array(weighed.weights, dtype=float)
        found: Discovered | None = None
        checked: Proposal | None = None
        if discovery is not None and discovery.max_rules > 0:
            snaps = labelled_snapshots(conn, read, excluded)
            reasons = [reason_of(label) for label in read]
            found, checked = rules_to_propose(
                model, X, y, at, weights, snaps, discovery, guardrails, reasons
            )
            model, X = found.model, found.X
        proposal = propose(model, X, y, at, weights=weights, guardrails=guardrails)
        if checked is not None:  # set with ``found``: report the older labels' choice
            proposal = replace(proposal, metrics_after=checked.metrics_after)
        sources, aside = weighed.used, weighed.set_aside
        if proposal.reason is not None:
            return RetrainResult(proposal, base_id, None, sources, aside)
        new_rules: tuple[Mapping[str, Any], ...] = ()
        if found is not None and found.rules:
            proposal, new_rules = found.report(proposal)
        header = f"refit of v{base_id} on {y.size} labels ({describe_sources(sources, aside)})"
        if new_rules:
            header += f", {len(new_rules)} new rule(s)"
        vid = repo.add_version(
            conn,
            yaml=model_yaml(proposal.model, header=header),
            status=Status.PROPOSED,
            created_by=created_by,
            created_at=_at(now),
            labels=proposal.labels,
            metrics={"before": proposal.metrics_before, "after": proposal.metrics_after},
            parent_id=base_id,
        )
        repo.supersede_proposals(conn, keep=vid)
        return RetrainResult(proposal, base_id, vid, sources, aside, new_rules)

    return await offloop.write(engine, run)


async def activate(
    *,
    engine: AsyncEngine,
    version_id: int,
    by: str,
    now: float,
    history_delta: float = 5.0,
    only_if: Status | None = None,
    alerts: RescoreAlerts | None = None,
) -> Rescore:
    """Make ``version_id`` active (the active one retires; a running A/B test stops) and
    rescore every lead, in one transaction, queueing the alerts ``alerts`` owes (none when
    None). Raises LookupError/ValueError from ``storage.models.set_active``.

    Off the event loop (``storage.offloop``): every lead is read and worked out first,
    outside the write transaction; that transaction redoes only the leads written since."""

    def ready(conn: Connection) -> Ahead | None:
        version = repo.get_version(conn, version_id)
        return None if version is None else prepare(conn, model=model_of(version), now=now)

    def run(conn: Connection, ahead: Ahead | None) -> Rescore:
        previous = repo.set_active(conn, version_id=version_id, by=by, at=_at(now), only_if=only_if)
        abtests.stop_test(conn, by=f"activation of v{version_id}", at=_at(now))
        return _rescored(conn, version_id, previous, now, history_delta, alerts, ahead)

    return await _prepared_then(engine, ready, run)


async def rollback(
    *,
    engine: AsyncEngine,
    by: str,
    now: float,
    history_delta: float = 5.0,
    alerts: RescoreAlerts | None = None,
) -> Rescore:
    """Re-activate the version active before the current one (which becomes ``rejected``)
    and rescore every lead, in one transaction, with ``alerts`` as for ``activate``.
    Raises LookupError when there is no earlier version. Off the event loop, as
    ``activate``."""

    def ready(conn: Connection) -> Ahead | None:
        target = repo.rollback_target(conn)
        return None if target is None else prepare(conn, model=model_of(target), now=now)

    def run(conn: Connection, ahead: Ahead | None) -> Rescore:
        target = repo.rollback_target(conn)
        if target is None:
            raise LookupError("no earlier active model version to roll back to")
        previous = repo.set_active(
            conn, version_id=_id(target), by=by, at=_at(now), previous_becomes=Status.REJECTED
        )
        abtests.stop_test(conn, by=f"rollback to v{_id(target)}", at=_at(now))
        return _rescored(conn, _id(target), previous, now, history_delta, alerts, ahead)

    return await _prepared_then(engine, ready, run)


async def _prepared_then(
    engine: AsyncEngine,
    ready: Callable[[Connection], Ahead | None],
    run: Callable[[Connection, Ahead | None], Rescore],
) -> Rescore:
    """``ready``'s preparation on a read, then ``run``'s write transaction with it, on one
    worker off the event loop; a helper process the preparation started is stopped after
    (off the loop too: it may take the helper a page to notice)."""
    async with offloop.Worker(engine) as worker:
        ahead = await worker.read(ready)
        try:
            return await worker.write(run, ahead)
        finally:
            if ahead is not None:
                await asyncio.to_thread(ahead.close)


def _rescored(
    conn: Connection,
    version_id: int,
    previous: Any,
    now: float,
    history_delta: float,
    alerts: RescoreAlerts | None,
    ahead: Ahead | None = None,
) -> Rescore:
    model = model_of(repo.get_version(conn, version_id))
    recount_changed(conn, None if previous is None else model_of(previous), model)
    with RESCORE_SECONDS.time():
        done = rescore(
            conn, model=model, now=now, history_delta=history_delta,
            cause=f"model v{version_id}", alerts=alerts, ahead=ahead,
        )  # fmt: skip
    before = None if previous is None else int(previous.id)
    return Rescore(version_id, before, done.leads, done.history, done.alerts, done.held)


def improved(proposal: Proposal) -> bool:
    """``auto_apply``'s test: on the held-out labels the refit is no worse on ROC AUC and
    log loss, and better on at least one. With a dozen held-out labels AUC often ties;
    a better log loss then still counts. Undefined metrics (nan) never count as better."""
    before, after = proposal.metrics_before, proposal.metrics_after
    auc_up, auc_kept = after["roc_auc"] > before["roc_auc"], after["roc_auc"] >= before["roc_auc"]
    loss_down = after["log_loss"] < before["log_loss"]
    loss_kept = after["log_loss"] <= before["log_loss"]
    return bool(auc_kept and loss_kept and (auc_up or loss_down))


def metric_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The held-out metrics, before → after, one per line (conversion by band as %)."""

    def number(value: Any, percent: bool = False) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return f"{value:.0%}" if percent else f"{value:.3f}"

    lines = [
        f"{label}: {number(before.get(key))} → {number(after.get(key))}"
        for key, label in (
            ("roc_auc", "ROC AUC"),
            ("log_loss", "log loss"),
            ("top_decile_lift", "top-decile lift"),
        )
    ]
    for band in ("hot", "warm", "cold"):
        key, count = f"{band}_conversion", f"{band}_labels"
        lines.append(
            f"{band} conversion: {number(before.get(key), True)} of {before.get(count) or 0:.0f}"
            f" → {number(after.get(key), True)} of {after.get(count) or 0:.0f}"
        )
    return lines


def _id(version: ModelVersion) -> int:
    """A stored version always has its number."""
    assert version.id is not None
    return version.id
