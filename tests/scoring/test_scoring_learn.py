"""fit_logistic: the MAP logistic regression behind refits, checked against the truth it was
generated from, against scikit-learn, and at the edges (separable data, empty and constant
columns, no features)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from scoring.learn import Fit, choose_precision, fit_logistic, predict_logodds, sigmoid


def _generate(
    rng: np.random.Generator, n: int, weights: np.ndarray, intercept: float
) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, weights.size))
    y = (rng.random(n) < sigmoid(intercept + X @ weights)).astype(float)
    return X, y


def _gradient(X: np.ndarray, y: np.ndarray, fit: Fit, precision: float) -> np.ndarray:
    r = sigmoid(predict_logodds(X, fit)) - y
    return np.r_[r.sum(), X.T @ r + precision * fit.weights]


def test_sigmoid_is_finite_and_exact_at_the_extremes() -> None:
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    p = sigmoid(z)
    assert p[0] == 0.0
    assert p[-1] == 1.0
    assert p[2] == 0.5
    assert p[1] == pytest.approx(np.exp(-30.0), rel=1e-12)
    assert 1.0 - p[3] == pytest.approx(np.exp(-30.0), rel=1e-3)


def test_recovers_the_true_weights_at_large_n() -> None:
    rng = np.random.default_rng(1)
    truth = np.array([1.0, -2.0, 0.5, 0.0])
    X, y = _generate(rng, 40_000, truth, -1.0)
    fit = fit_logistic(X, y, prior_precision=1.0)
    assert fit.converged
    assert fit.weights == pytest.approx(truth, abs=0.06)
    assert fit.intercept == pytest.approx(-1.0, abs=0.06)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scikit_learn_with_the_same_l2_penalty(seed: int) -> None:
    # scikit-learn minimises ½‖w‖² + C·Σ loss: the same optimum as precision 1/C.
    rng = np.random.default_rng(seed)
    X, y = _generate(rng, 800, rng.normal(size=6), 0.3)
    fit = fit_logistic(X, y, prior_precision=0.5)
    reference = LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000).fit(X, y)
    assert fit.weights == pytest.approx(reference.coef_[0], abs=1e-5)
    assert fit.intercept == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_a_strong_prior_holds_the_weights_at_its_mean() -> None:
    rng = np.random.default_rng(3)
    X, y = _generate(rng, 500, np.array([2.0, -1.0]), 0.0)
    mean = np.array([-0.5, 0.7])
    weak = fit_logistic(X, y, prior_mean=mean, prior_precision=1e-3)
    strong = fit_logistic(X, y, prior_mean=mean, prior_precision=1e7)
    assert strong.weights == pytest.approx(mean, abs=1e-3)
    assert weak.weights == pytest.approx([2.0, -1.0], abs=0.4)


def test_precision_per_weight_penalises_only_where_asked() -> None:
    rng = np.random.default_rng(4)
    X, y = _generate(rng, 2_000, np.array([1.5, 1.5]), 0.0)
    mean = np.array([0.0, 1.5])
    fit = fit_logistic(X, y, prior_mean=mean, prior_precision=np.array([0.0, 1e6]))
    assert fit.weights[0] == pytest.approx(1.5, abs=0.2)
    assert fit.weights[1] == pytest.approx(1.5, abs=1e-3)
    both = fit_logistic(X, y, prior_mean=mean, prior_precision=np.array([1e6, 1e6]))
    assert abs(both.weights[0]) < 1e-3


def test_separable_data_gives_finite_weights_under_a_prior() -> None:
    X = np.r_[np.zeros((20, 1)), np.ones((20, 1))]
    y = np.r_[np.zeros(20), np.ones(20)]
    fit = fit_logistic(X, y, prior_precision=1.0)
    assert fit.converged
    assert np.all(np.isfinite(fit.weights))
    assert 1.0 < fit.weights[0] < 10.0
    assert np.abs(_gradient(X, y, fit, 1.0)).max() < 1e-6


def test_no_features_fits_the_base_rate() -> None:
    y = np.array([1.0, 0.0, 0.0, 0.0])
    fit = fit_logistic(np.zeros((4, 0)), y)
    assert fit.weights.shape == (0,)
    assert fit.intercept == pytest.approx(np.log(1 / 3))


def test_an_all_zero_column_keeps_its_prior_mean_exactly() -> None:
    rng = np.random.default_rng(5)
    X, y = _generate(rng, 300, np.array([1.0]), 0.0)
    X = np.c_[X, np.zeros(300)]
    fit = fit_logistic(X, y, prior_mean=np.array([0.0, 0.75]), prior_precision=1.0)
    assert fit.weights[1] == 0.75


def test_a_constant_column_without_prior_does_not_break_the_fit() -> None:
    rng = np.random.default_rng(6)
    X, y = _generate(rng, 300, np.array([1.0]), -0.5)
    with_constant = fit_logistic(np.c_[X, np.full(300, 2.0)], y, prior_precision=0.0)
    without = fit_logistic(X, y, prior_precision=0.0)
    assert with_constant.converged
    assert with_constant.weights[0] == pytest.approx(without.weights[0], abs=1e-6)
    same = predict_logodds(np.c_[X, np.full(300, 2.0)], with_constant)
    assert same == pytest.approx(predict_logodds(X, without), abs=1e-6)


def test_sample_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(7)
    X, y = _generate(rng, 200, np.array([1.0, -1.0]), 0.0)
    counts = rng.integers(0, 4, size=200)
    weighted = fit_logistic(X, y, sample_weight=counts.astype(float))
    repeated = fit_logistic(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    assert weighted.weights == pytest.approx(repeated.weights, abs=1e-8)
    assert weighted.intercept == pytest.approx(repeated.intercept, abs=1e-8)


def test_an_offset_is_a_weight_held_fixed() -> None:
    rng = np.random.default_rng(8)
    X, y = _generate(rng, 500, np.array([1.0, 0.8]), 0.2)
    offset_fit = fit_logistic(X[:, :1], y, offset=0.8 * X[:, 1])
    pinned = fit_logistic(
        X, y, prior_mean=np.array([0.0, 0.8]), prior_precision=np.array([1.0, 1e12])
    )
    assert offset_fit.weights[0] == pytest.approx(pinned.weights[0], abs=1e-6)
    assert offset_fit.intercept == pytest.approx(pinned.intercept, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(0, 4),
    seed=st.integers(0, 2**32 - 1),
    precision=st.floats(0.01, 10.0),
)
def test_any_small_problem_reaches_a_stationary_point(
    n: int, k: int, seed: int, precision: float
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(n, k)).astype(float)  # ties, duplicates, separable cases
    y = rng.integers(0, 2, size=n).astype(float)
    if y.min() == y.max():
        y[0] = 1.0 - y[0]
        if n == 1:
            return  # one label has no finite intercept
    fit = fit_logistic(X, y, prior_precision=precision)
    assert fit.converged
    assert np.all(np.isfinite(fit.weights))
    assert np.abs(_gradient(X, y, fit, precision)).max() < 1e-5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"X": np.zeros(3), "y": np.zeros(3)}, "X: expected a 2-d array"),
        ({"X": np.zeros((3, 1)), "y": np.zeros(2)}, r"y: expected shape \(3,\)"),
        ({"X": np.zeros((2, 1)), "y": np.array([0.0, 2.0])}, "y: labels must be 0 or 1, got 2.0"),
        ({"X": np.full((2, 1), np.nan), "y": np.zeros(2)}, "X: every feature value"),
        (
            {"X": np.zeros((2, 2)), "y": np.zeros(2), "prior_mean": np.zeros(3)},
            r"prior_mean: expected a scalar or shape \(2,\)",
        ),
        (
            {"X": np.zeros((2, 1)), "y": np.zeros(2), "sample_weight": np.array([1.0, -1.0])},
            "sample_weight: weights must be finite and non-negative",
        ),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, np.ndarray], message: str) -> None:
    X, y = kwargs.pop("X"), kwargs.pop("y")
    with pytest.raises(ValueError, match=message):
        fit_logistic(X, y, **kwargs)  # type: ignore[arg-type]


def test_choose_precision_shrinks_noise_and_trusts_plenty() -> None:
    rng = np.random.default_rng(7)
    grid = (0.1, 1.0, 30.0)
    # Few rows, many pure-noise features: the strongest shrinkage predicts best.
    X = rng.normal(size=(80, 30))
    y = (rng.uniform(size=80) < 0.5).astype(float)
    assert choose_precision(X, y, grid) == 30.0
    # Many rows and large true weights: shrinking only biases them.
    X = rng.normal(size=(4000, 3))
    y = (rng.uniform(size=4000) < sigmoid(X @ np.array([3.0, -3.0, 2.0]))).astype(float)
    assert choose_precision(X, y, grid) == 0.1


def test_a_warm_start_reaches_the_same_optimum_in_fewer_steps() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2000, 6))
    y = (rng.uniform(size=2000) < sigmoid(X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5, -1.0]))).astype(
        float
    )
    cold = fit_logistic(X, y, prior_precision=1.0)
    near = fit_logistic(X, y, prior_precision=1.0, weights_init=cold.weights + 0.01)
    assert np.allclose(near.weights, cold.weights, atol=1e-6)
    assert near.iterations < cold.iterations
    with pytest.raises(ValueError, match="weights_init"):
        fit_logistic(X, y, weights_init=np.zeros(2))
