"""propose(): a refit moves toward the weights the labels were generated from, and the
guardrails hold (minimum labels, maximum change, signs, untouched rules, calibration)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import Model, Rule, RuleKind
from scoring.learn import sigmoid
from scoring.refit import Guardrails, evaluate, logodds, propose

PPL = 20.0
TRUTH = np.array([30.0, 10.0, -20.0, 0.0])  # points at PPL, intercept -2
WRONG = (10.0, 25.0, -5.0, 15.0)
LOOSE = Guardrails(max_change_points=1_000.0)


def _model(points: tuple[float, ...], intercept: float = -3.0) -> Model:
    rules = tuple(Rule(f"r{j}", f"rule {j}", RuleKind.FIT, p) for j, p in enumerate(points))
    return Model(rules=rules, points_per_logodds=PPL, intercept=intercept)


def _labels(
    rng: np.random.Generator, n: int, truth: np.ndarray, intercept: float = -2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = (rng.random((n, truth.size)) < 0.5).astype(float)
    y = (rng.random(n) < sigmoid(intercept + X @ truth / PPL)).astype(float)
    return X, y, np.arange(n, dtype=float) * 3_600.0


def _weights(model: Model) -> np.ndarray:
    return np.array([r.points for r in model.rules]) / model.points_per_logodds


def test_a_refit_recovers_the_true_weights_from_many_labels() -> None:
    X, y, at = _labels(np.random.default_rng(0), 40_000, TRUTH)
    proposal = propose(_model(WRONG), X, y, at, guardrails=LOOSE)
    assert proposal.reason is None
    assert proposal.model.points_per_logodds == PPL
    assert _weights(proposal.model) == pytest.approx(TRUTH / PPL, abs=0.1)
    assert proposal.model.intercept == pytest.approx(-2.0, abs=0.1)


def test_a_refit_moves_toward_the_truth_as_labels_grow() -> None:
    X, y, at = _labels(np.random.default_rng(1), 20_000, TRUTH)
    start = _model(WRONG)
    distances = [np.abs(_weights(start) - TRUTH / PPL).sum()]
    for n in (60, 600, 20_000):
        proposal = propose(start, X[:n], y[:n], at[:n], guardrails=LOOSE)
        distances.append(np.abs(_weights(proposal.model) - TRUTH / PPL).sum())
    assert distances == sorted(distances, reverse=True)
    assert distances[-1] < 0.1 * distances[0]


def test_held_out_metrics_improve_when_the_current_model_is_wrong() -> None:
    X, y, at = _labels(np.random.default_rng(2), 4_000, TRUTH)
    proposal = propose(_model(WRONG), X, y, at)
    assert proposal.labels == 4_000
    assert proposal.metrics_after["roc_auc"] > proposal.metrics_before["roc_auc"] + 0.05
    assert proposal.metrics_after["log_loss"] < proposal.metrics_before["log_loss"]
    assert set(proposal.metrics_before) == {"roc_auc", "log_loss", "top_decile_lift"} | {
        f"{band}_{what}" for band in ("hot", "warm", "cold") for what in ("conversion", "labels")
    }


def test_conversion_by_band_counts_the_held_out_labels_in_each_band() -> None:
    # Model bands at the defaults (warm 40, hot 70 points): r0+r1 = 40 is warm, all three
    # fit rules = 70 is hot; the metric is each band's share of positive labels.
    model = _model((30.0, 10.0, 30.0, -5.0))
    X = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]], float)
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    metrics = evaluate(model, X, y)
    assert (metrics["hot_labels"], metrics["hot_conversion"]) == (2.0, 1.0)
    assert (metrics["warm_labels"], metrics["warm_conversion"]) == (2.0, 0.5)
    assert (metrics["cold_labels"], metrics["cold_conversion"]) == (1.0, 0.0)


def test_nothing_moves_below_the_label_minimum() -> None:
    X, y, at = _labels(np.random.default_rng(3), 29, TRUTH)
    y[:2] = [0.0, 1.0]
    model = _model(WRONG)
    proposal = propose(model, X, y, at)
    assert proposal.model is model
    assert proposal.changes == {}
    assert proposal.reason == "29 labels, fewer than the minimum of 30"


def test_one_outcome_only_is_refused() -> None:
    X, _, at = _labels(np.random.default_rng(4), 50, TRUTH)
    proposal = propose(_model(WRONG), X, np.ones(50), at)
    assert proposal.changes == {}
    assert proposal.reason == "all 50 labels are positive: a refit needs both outcomes"


def test_the_maximum_change_holds_and_is_reached_when_the_data_pull_hard() -> None:
    X, y, at = _labels(np.random.default_rng(5), 20_000, TRUTH)
    proposal = propose(_model(WRONG), X, y, at)  # default: 10 points per refit
    assert proposal.changes["r0"] == (10.0, 20.0)
    assert proposal.changes["r1"] == (25.0, 15.0)
    assert proposal.changes["r3"] == (15.0, 5.0)


def test_rules_no_label_touches_keep_their_points_exactly() -> None:
    X, y, at = _labels(np.random.default_rng(6), 2_000, TRUTH)
    X = np.c_[X, np.zeros(2_000)]
    model = _model((*WRONG, 7.3))
    proposal = propose(model, X, y, at, guardrails=LOOSE)
    assert proposal.model.rules[4] is model.rules[4]
    assert "r4" not in proposal.changes


def test_the_intercept_is_calibrated_on_the_labels() -> None:
    X, y, at = _labels(np.random.default_rng(7), 3_000, TRUTH, intercept=-0.5)
    proposal = propose(_model(WRONG, intercept=-4.0), X, y, at)
    mean = sigmoid(logodds(proposal.model, X)).mean()
    assert mean == pytest.approx(y.mean(), abs=1e-3)


def test_points_per_logodds_follows_a_large_change_of_scale() -> None:
    # The labels say every weight is four times what the model has: ppl shrinks, so the
    # points keep their familiar size instead of quadrupling.
    old = np.array([10.0, 10.0, -10.0])
    X, y, at = _labels(np.random.default_rng(8), 20_000, 4 * old, intercept=0.0)
    proposal = propose(_model(tuple(old), intercept=0.0), X, y, at, guardrails=LOOSE)
    assert proposal.model.points_per_logodds < PPL / 2
    assert _weights(proposal.model) == pytest.approx(4 * old / PPL, abs=0.25)
    assert np.abs([r.points for r in proposal.model.rules]).max() < 25.0


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(30, 200),
    old=st.lists(
        st.sampled_from([-25.0, -8.0, -0.5, 0.0, 3.0, 12.5, 40.0]), min_size=1, max_size=5
    ),
    truth_scale=st.floats(-60.0, 60.0),
    most=st.sampled_from([0.0, 0.25, 3.0, 10.0]),
    strength=st.sampled_from([0.0, 0.5, 1.0, 20.0]),
)
def test_guardrails_hold_for_any_labels(
    seed: int,
    n: int,
    old: list[float],
    truth_scale: float,
    most: float,
    strength: float,
) -> None:
    rng = np.random.default_rng(seed)
    truth = truth_scale * rng.normal(size=len(old))
    X, y, at = _labels(rng, n, truth, intercept=rng.normal())
    X[:, 0] = 0.0  # one rule no label touches
    if y.min() == y.max():
        y[0] = 1.0 - y[0]
    guardrails = Guardrails(max_change_points=most, prior_strength=strength)
    model = _model(tuple(old))
    proposal = propose(model, X, y, at, guardrails=guardrails)
    new = np.array([r.points for r in proposal.model.rules])
    assert new[0] == old[0]
    assert np.all(np.abs(new - old) <= most + 1e-9)
    # Signs hold strictly: no rule is refitted to 0 and so dropped from the model.
    assert np.all(new[np.array(old) < 0] < 0)
    assert np.all(new[np.array(old) > 0] > 0)
    for rule_id, (before, after) in proposal.changes.items():
        assert before != after
        assert model.rule(rule_id).points == before
        assert proposal.model.rule(rule_id).points == after
    assert np.isfinite(proposal.model.intercept)


def test_bad_shapes_name_the_argument() -> None:
    model = _model(WRONG)
    with pytest.raises(ValueError, match=r"features: expected shape \(3, 4\)"):
        propose(model, np.zeros((3, 2)), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"at: expected one time per label \(3\), got 2"):
        propose(model, np.zeros((3, 4)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"guardrails\.points_step: out of range, got 0"):
        Guardrails(points_step=0)


def test_a_rule_the_labels_contradict_keeps_its_sign_and_one_step() -> None:
    # The labels say the penalty r2 is really a +20 bonus: the refit may not flip it, and
    # it may not drop it either (0 points would remove it from the written model), so it
    # stops at one step below zero, where a later refit can still move it.
    truth = np.array([30.0, 10.0, 20.0, 0.0])
    X, y, at = _labels(np.random.default_rng(9), 20_000, truth)
    proposal = propose(_model(WRONG), X, y, at, guardrails=LOOSE)
    assert proposal.model.rule("r2").points == -LOOSE.points_step
    assert 0 < proposal.model.rule("r3").points <= 3.0  # truth 0, old +15: near 0, still in
