"""Points for candidate fit rules: the fit behind ``leadbot learn``.

1. Numeric bins enter the fit as steps (``scoring.binning.steps``): a weight is the change
   from the bin below, so the prior smooths a trait's shape across fine bins.
2. The prior's strength is chosen by out-of-fold log loss (``scoring.learn.choose_precision``).
3. Pairwise AND rules are added greedily and kept as far as held-out rows gain from them
   (``scoring.interactions``).
4. One fit on all of it; step weights go back to each bin's own points, so the written
   model holds plain disjoint ``range`` bins, and each pair is one rule with two conditions.
   Points are ``round(weight × points_per_logodds)``; rules worth 0 points are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scoring.binning import bin_weights, ladders, number_text, slug, steps
from scoring.interactions import PairSearch, choose_pairs, pair_features
from scoring.learn import choose_precision, fit_logistic
from scoring.model import Condition, Op, Rule, RuleKind

PRECISIONS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # geometric: log loss is flat near its best


@dataclass(frozen=True)
class Scorecard:
    """``rules`` with their points (0-point rules dropped), the intercept in log-odds, the
    prior precision chosen, the number of pair rules among ``rules`` and each training
    row's total points."""

    rules: tuple[Rule, ...]
    intercept: float
    precision: float
    pairs: int
    totals: np.ndarray


@dataclass(frozen=True)
class Recipe:
    """How to fit: ``precisions`` to choose from (one value: no choice); ``search`` None
    adds no pairs; ``steps_from`` is the first candidate whose numeric bins may be steps
    (rules before it, e.g. a base model's, stay as they are)."""

    points_per_logodds: float = 20.0
    precisions: tuple[float, ...] = PRECISIONS
    search: PairSearch | None = field(default_factory=PairSearch)
    steps_from: int = 0


def _group(rule: Rule) -> str:
    return "&".join(sorted(".".join(c.path) for c in rule.conditions))


def _step_rule(rule: Rule) -> Rule:
    """A bin read as a step: "at or above its low edge" (the lowest and the top bin are
    already that, or need no step)."""
    condition = rule.conditions[0]
    low, high = condition.value
    if low is None or high is None:
        return rule
    column = ".".join(condition.path)
    at_least = Condition(condition.path, Op.RANGE, (low, None))
    text = number_text(low)
    return Rule(slug(f"{column} ge_{text}"), f"{column} {text} or more", RuleKind.FIT, 0.0,
                (at_least,))  # fmt: skip


def _pair_rule(a: Rule, b: Rule, taken: set[str]) -> Rule:
    """``a`` and ``b`` as one rule; its id gets a suffix if a candidate already has it."""
    rule_id, suffix = f"{a.id}_and_{b.id}", 1
    while rule_id in taken:
        suffix += 1
        rule_id = f"{a.id}_and_{b.id}_{suffix}"
    taken.add(rule_id)
    return Rule(rule_id, f"{a.label} and {b.label}", RuleKind.FIT, 0.0,
                (*a.conditions, *b.conditions))  # fmt: skip


def fit_scorecard_points(
    candidates: Sequence[Rule], X: np.ndarray, y: np.ndarray, prior: np.ndarray, recipe: Recipe
) -> Scorecard:
    """Points for ``candidates`` (features ``X``, outcomes ``y``, prior means ``prior`` in
    log-odds, one per candidate) and the pair rules worth adding."""
    first = recipe.steps_from
    found = [[first + j for j in ladder] for ladder in ladders(candidates[first:])]
    Z = steps(X, found)
    if len(recipe.precisions) > 1:
        precision = choose_precision(Z, y, recipe.precisions, prior_mean=prior)
    else:
        precision = recipe.precisions[0]
    step_rules = list(candidates)
    for ladder in found:
        for j in ladder[1:]:
            step_rules[j] = _step_rule(candidates[j])
    pairs = []
    if recipe.search is not None:
        groups = [_group(r) for r in candidates]
        pairs = choose_pairs(Z, y, groups, precision, recipe.search)
    design = np.hstack([Z, pair_features(Z, pairs)])
    mean = np.concatenate([prior, np.zeros(len(pairs))])
    fit = fit_logistic(design, y, prior_mean=mean, prior_precision=precision)
    k = len(candidates)
    weights = np.concatenate([bin_weights(fit.weights[:k], found), fit.weights[k:]])
    points = np.round(weights * recipe.points_per_logodds)
    taken = {r.id for r in candidates}
    rules = [*candidates, *(_pair_rule(step_rules[a], step_rules[b], taken) for a, b in pairs)]
    kept = tuple(
        Rule(r.id, r.label, RuleKind.FIT, float(p), r.conditions)
        for r, p in zip(rules, points, strict=True)
        if p != 0
    )
    pair_ids = {r.id for r in rules[k:]}
    totals = np.hstack([X, design[:, k:]]) @ points
    count = sum(r.id in pair_ids for r in kept)
    return Scorecard(kept, round(fit.intercept, 4), precision, count, totals)
