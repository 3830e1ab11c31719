"""A retrain's new rules (``scoring.discover``) joined to its refit (``scoring.refit``).

The rules are chosen on the labels the refit trains on only (its time split: the older
ones), so the proposal's held-out metrics stay honest: the newest labels judge a model
whose rules never saw them. The chosen rules join the model with their fitted points as the
refit's prior, and the refit then moves every rule's points on all labels, as for any rule.

The proposal's "before" is the model as it is, without the new rules: ``propose`` measures
the model it is given, which holds them already (with the points chosen on the older
labels), and a proposal whose new rules make the held-out labels worse must read as worse,
or ``auto_apply`` would take it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scoring.discover import Discovery, NewRule, described, discover, reason_rules, rule_columns
from scoring.metrics import time_split
from scoring.model import Model
from scoring.refit import Guardrails, Proposal, evaluate, propose


@dataclass(frozen=True)
class Discovered:
    """The model with its new rules appended, the labels' features for it, the rules."""

    model: Model
    X: np.ndarray
    rules: tuple[NewRule, ...] = ()
    columns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    base: Model | None = None  # the model without the new rules
    at: np.ndarray = field(default_factory=lambda: np.zeros(0))
    test_fraction: float = Guardrails.test_fraction

    def report(self, proposal: Proposal) -> tuple[Proposal, tuple[Mapping[str, Any], ...]]:
        """The proposal with each new rule's change as ``0 → points`` (it had none before)
        and its metrics before measured without the new rules, and the new rules with their
        final points, support and won rate on every label."""
        used = self.weights > 0
        if self.base is not None and used.any():
            _, test = time_split(self.at[used], self.test_fraction)
            known = self.X[:, : len(self.base.rules)][used]
            before = evaluate(self.base, known[test], self.y[used][test])
            proposal = replace(proposal, metrics_before=before)
        changes: dict[str, tuple[float, float]] = {}  # the new rules first
        found = []
        for j, new in enumerate(self.rules):
            points = proposal.model.rule(new.rule.id).points
            changes[new.rule.id] = (0.0, points)
            column, y, w = self.columns[used, j], self.y[used], self.weights[used]
            found.append(described(replace(new.rule, points=points), column, y, w).to_dict())
        changes.update({k: v for k, v in proposal.changes.items() if k not in changes})
        return replace(proposal, changes=changes), tuple(found)


def with_new_rules(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    at: np.ndarray,
    weights: np.ndarray,
    snapshots: Sequence[Mapping[str, Any]],
    discovery: Discovery,
    guardrails: Guardrails,
    reasons: Sequence[str | None] = (),
    *,
    every_label: bool = False,
) -> Discovered:
    """``model`` and ``X`` extended by the rules ``discover`` finds on the training labels
    (the older ones, as ``propose`` splits them; ``every_label``: all of them), then by the
    negative rules of the disqualify reasons ``discovery.reasons`` names (``reason_rules``;
    ``reasons``: each label's reason)."""
    used = np.flatnonzero(weights > 0)
    train = np.zeros(y.size, dtype=bool)
    if used.size:
        older, _ = time_split(at[used], guardrails.test_fraction)
        train[used if every_label else used[older]] = True
    step = guardrails.points_step
    found = discover(model, snapshots, X, y, weights * train, discovery, step, at=at)
    extended, X_ = _extend(model, X, snapshots, at, found)
    if discovery.reasons and reasons:
        found += reason_rules(
            extended, snapshots, X_, y, weights * train, reasons, discovery, step, at=at
        )
        extended, X_ = _extend(model, X, snapshots, at, found)
    if not found:
        return Discovered(model, X)
    columns = X_[:, X.shape[1] :]
    return Discovered(
        extended, X_, tuple(found), columns, y, weights, model, at, guardrails.test_fraction
    )


def rules_to_propose(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    at: np.ndarray,
    weights: np.ndarray,
    snapshots: Sequence[Mapping[str, Any]],
    discovery: Discovery,
    guardrails: Guardrails,
    reasons: Sequence[str | None] = (),
) -> tuple[Discovered, Proposal]:
    """The rules a proposal adds, found on every label, and the check of that procedure: the
    rules found on the older labels, their points fitted on them, judged on the newest,
    which chose nothing (``Proposal.metrics_after``, what the proposal reports and
    ``auto_apply`` goes by). A quarter more labels to choose from is worth it where labels
    are few: 500 labels of a domain the model does not know are 375 for the choice
    otherwise."""
    older = with_new_rules(model, X, y, at, weights, snapshots, discovery, guardrails, reasons)
    checked = propose(older.model, older.X, y, at, weights=weights, guardrails=guardrails)
    found = with_new_rules(
        model, X, y, at, weights, snapshots, discovery, guardrails, reasons, every_label=True
    )
    return found, checked


def _extend(
    model: Model,
    X: np.ndarray,
    snapshots: Sequence[Mapping[str, Any]],
    at: np.ndarray,
    found: Sequence[NewRule],
) -> tuple[Model, np.ndarray]:
    if not found:
        return model, X
    rules = [new.rule for new in found]
    columns = rule_columns(snapshots, at.tolist(), rules)
    return replace(model, rules=(*model.rules, *rules)), np.hstack([X, columns])
