"""Weighted labels in a refit: a label of weight k is that label given k times, weights of
1 are the unweighted refit exactly, and weight 0 sets a label aside."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scoring import Model, Rule, RuleKind
from scoring.learn import sigmoid
from scoring.refit import Guardrails, propose, refit

PPL = 20.0
# A fine step so the comparison sees the fitted points, not a rounding of them.
FINE = Guardrails(min_labels=1, max_change_points=1_000.0, points_step=1e-9)


def _model(points: tuple[float, ...] = (10.0, 25.0, -5.0)) -> Model:
    rules = tuple(Rule(f"r{j}", f"rule {j}", RuleKind.FIT, p) for j, p in enumerate(points))
    return Model(rules=rules, points_per_logodds=PPL, intercept=-1.0)


def _points(model: Model) -> list[float]:
    return [rule.points for rule in model.rules]


@st.composite
def labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(4, 30))
    bits = draw(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=n, max_size=n))
    y = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if all(y) or not any(y):
        y[0] = not y[0]
    weights = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    return np.array(bits, dtype=float), np.array(y, dtype=float), np.array(weights)


# Found by hypothesis: the fit gives no ranking (0 weighted, 2e-17 repeated), which once
# rescaled points_per_logodds by the rounding noise and moved a rule by 27.5 points.
_NO_RANKING = (
    np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0],
              [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=float),
    np.array([0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0], dtype=float),
    np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]),
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(labelled())
@example(_NO_RANKING)
def test_a_label_of_weight_k_is_that_label_k_times(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, w = data
    weighted = refit(_model(), X, y, FINE, w.astype(float))
    repeated = refit(_model(), np.repeat(X, w, axis=0), np.repeat(y, w), FINE)
    assert _points(weighted) == pytest.approx(_points(repeated), rel=1e-6, abs=1e-6)
    assert weighted.points_per_logodds == repeated.points_per_logodds
    assert weighted.intercept == pytest.approx(repeated.intercept, abs=2e-4)


@settings(max_examples=25, deadline=None)
@given(labelled())
def test_weights_of_one_are_the_unweighted_refit_exactly(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, _ = data
    at = np.arange(y.size, dtype=float)
    guard = Guardrails(min_labels=1)
    plain = propose(_model(), X, y, at, guardrails=guard)
    ones = propose(_model(), X, y, at, weights=np.ones(y.size), guardrails=guard)
    assert ones.model == plain.model
    assert (ones.changes, ones.labels, ones.reason) == (plain.changes, plain.labels, plain.reason)
    for before, after in ((plain.metrics_before, ones.metrics_before),
                          (plain.metrics_after, ones.metrics_after)):  # fmt: skip
        assert before.keys() == after.keys()
        assert all(
            (math.isnan(before[k]) and math.isnan(after[k])) or before[k] == after[k]
            for k in before
        )


def _noisy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 3)) < 0.5).astype(float)
    y = (rng.random(n) < sigmoid(-1.0 + X @ np.array([30.0, 10.0, -20.0]) / PPL)).astype(float)
    return X, y, np.arange(n, dtype=float) * 60.0


def test_a_heavier_label_pulls_the_fit_further_than_a_light_one() -> None:
    # Leads where rule r1 fired and the deal was won: weighed 3, they raise r1 more.
    X, y, at = _noisy(300, 4)
    w = np.where((X[:, 1] == 1) & (y == 1), 3.0, 1.0)
    light = propose(_model(), X, y, at, guardrails=FINE)
    heavy = propose(_model(), X, y, at, weights=w, guardrails=FINE)
    assert heavy.model.rules[1].points > light.model.rules[1].points


def test_weight_zero_sets_a_label_aside_but_counts_it_as_read() -> None:
    X, y, at = _noisy(120, 5)
    w = np.ones(y.size)
    w[::4] = 0.0
    kept = w > 0
    aside = propose(_model(), X, y, at, weights=w, guardrails=FINE)
    without = propose(_model(), X[kept], y[kept], at[kept], guardrails=FINE)
    assert aside.model == without.model
    assert aside.labels == 120
    assert without.labels == int(kept.sum())


def test_too_few_labels_left_after_setting_aside_says_so() -> None:
    X, y, at = _noisy(40, 6)
    w = np.where(np.arange(40) < 15, 0.0, 2.0)
    proposal = propose(_model(), X, y, at, weights=w, guardrails=Guardrails(min_labels=30))
    assert proposal.reason == "25 labels (15 more set aside), fewer than the minimum of 30"
    assert proposal.model == _model()


def test_bad_weights_name_the_argument() -> None:
    X, y, at = _noisy(10, 7)
    with pytest.raises(ValueError, match="weights: expected one weight per label"):
        propose(_model(), X, y, at, weights=np.ones(3))
    with pytest.raises(ValueError, match="weights: every weight must be finite and 0 or more"):
        propose(_model(), X, y, at, weights=-np.ones(10))
