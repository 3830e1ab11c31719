"""MAP logistic regression with a Gaussian prior on the weights: the learner behind refits.

Shapes: ``X`` is ``(n, k)`` feature values, ``y`` is ``(n,)`` labels in {0, 1}. The model is
``P(y = 1) = σ(b + X·w)``. The fit maximises the log-likelihood minus
``½·Σⱼ precisionⱼ·(wⱼ − meanⱼ)²``; the intercept ``b`` is not penalised. The prior is what
lets a refit start from the current weights: few labels move them little, many labels move
them to what the data says, and perfectly separable data still gives finite weights.

Newton's method (IRLS) with a backtracking line search, so each step never increases the
objective; the Hessian is accumulated in row chunks, so memory stays ``O(chunk·k + k²)``
beyond ``X`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK_ROWS = 16_384
_ARMIJO = 1e-4


@dataclass(frozen=True)
class Fit:
    """``weights`` (k,) in log-odds per unit of feature; ``intercept`` in log-odds."""

    weights: np.ndarray
    intercept: float
    iterations: int
    converged: bool


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^−z)`` elementwise, without overflow for any finite ``z``."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def predict_logodds(X: np.ndarray, fit: Fit) -> np.ndarray:
    """``b + X·w`` for each row: the log-odds the fit gives."""
    X = np.asarray(X, dtype=float)
    return fit.intercept + X @ fit.weights


def _as_vector(value: float | np.ndarray | None, k: int, name: str, default: float) -> np.ndarray:
    if value is None:
        return np.full(k, default)
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return np.full(k, float(array))
    if array.shape != (k,):
        raise ValueError(f"{name}: expected a scalar or shape ({k},), got shape {array.shape}")
    return array


def _check(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array (rows, features), got shape {X.shape}")
    n = X.shape[0]
    if y.shape != (n,):
        raise ValueError(f"y: expected shape ({n},) to match X, got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        bad = y[(y != 0) & (y != 1)][0]
        raise ValueError(f"y: labels must be 0 or 1, got {float(bad)!r}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X: every feature value must be finite (found nan or inf)")
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"sample_weight: expected shape ({n},), got {s.shape}")
    if np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("sample_weight: weights must be finite and non-negative")
    return X, y, s


class _Problem:
    """The penalised negative log-likelihood over ``θ = (b, w)`` and its derivatives."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        s: np.ndarray,
        mean: np.ndarray,
        precision: np.ndarray,
        offset: np.ndarray,
    ) -> None:
        self.X, self.y, self.s = X, y, s
        self.mean, self.precision, self.offset = mean, precision, offset

    def logodds(self, theta: np.ndarray) -> np.ndarray:
        return self.offset + theta[0] + self.X @ theta[1:]

    def objective(self, theta: np.ndarray, z: np.ndarray) -> float:
        # log(1 + e^z) − y·z, summed with weights: log-sum-exp keeps it finite at any z.
        nll = float(self.s @ (np.logaddexp(0.0, z) - self.y * z))
        diff = theta[1:] - self.mean
        return nll + 0.5 * float(self.precision @ (diff * diff))

    def gradient(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        r = self.s * (sigmoid(z) - self.y)
        g = np.empty_like(theta)
        g[0] = r.sum()
        g[1:] = self.X.T @ r + self.precision * (theta[1:] - self.mean)
        return g

    def hessian(self, z: np.ndarray) -> np.ndarray:
        p = sigmoid(z)
        d = self.s * p * (1.0 - p)
        k = self.X.shape[1]
        H = np.zeros((k + 1, k + 1))
        H[0, 0] = d.sum()
        H[0, 1:] = d @ self.X
        for start in range(0, self.X.shape[0], _CHUNK_ROWS):
            rows = self.X[start : start + _CHUNK_ROWS]
            scaled = rows * np.sqrt(d[start : start + _CHUNK_ROWS])[:, None]
            H[1:, 1:] += scaled.T @ scaled
        H[1:, 0] = H[0, 1:]
        H[1:, 1:] += np.diag(self.precision)
        return H


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``−H⁻¹g``, damped just enough to be solvable: a constant or all-zero column with no
    prior makes ``H`` singular, and the damping then leaves that direction alone. The
    damping is relative to each diagonal entry, so one very strong prior does not slow
    the other weights down."""
    diagonal = np.diag(np.maximum(np.diag(H), 1.0))
    damping = 1e-10
    while True:
        try:
            L = np.linalg.cholesky(H + damping * diagonal)
        except np.linalg.LinAlgError:
            damping *= 100.0
            continue
        return -np.linalg.solve(L.T, np.linalg.solve(L, g))


def _initial(
    y: np.ndarray, s: np.ndarray, X: np.ndarray, mean: np.ndarray, offset: np.ndarray
) -> float:
    """The intercept that matches the base rate given the prior weights."""
    total = s.sum()
    if total <= 0:
        return 0.0
    rate = float(np.clip((s @ y) / total, 1e-6, 1 - 1e-6))
    shift = float(s @ (offset + X @ mean)) / total
    return float(np.log(rate / (1 - rate))) - shift


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    *,
    prior_mean: np.ndarray | None = None,
    prior_precision: float | np.ndarray = 1.0,
    intercept_init: float | None = None,
    sample_weight: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-8,
    offset: np.ndarray | None = None,
    weights_init: np.ndarray | None = None,
) -> Fit:
    """Fit ``P(y=1) = σ(offset + b + X·w)`` by MAP under ``w ~ N(prior_mean, 1/precision)``.

    ``prior_precision`` is a scalar or ``(k,)``; 0 leaves that weight unpenalised (then
    separable data drives it towards ±∞: the weights grow until the objective is within
    ``tol`` of its infimum, large but finite).
    ``offset`` (n,) is a fixed log-odds term per row, e.g. the part of a score whose weights
    are held fixed. ``weights_init`` (k,) starts Newton there instead of at the prior mean
    (a warm start from a fit of a nearby problem; the optimum is the same). Converged means
    the Newton decrement ``½·gᵀH⁻¹g`` — the predicted gain in objective, in nats — fell
    below ``tol``.
    """
    X, y, s = _check(X, y, sample_weight)
    n, k = X.shape
    mean = _as_vector(prior_mean, k, "prior_mean", 0.0)
    precision = _as_vector(prior_precision, k, "prior_precision", 1.0)
    if np.any(precision < 0):
        raise ValueError("prior_precision: must be non-negative")
    base = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    if base.shape != (n,):
        raise ValueError(f"offset: expected shape ({n},), got {base.shape}")
    problem = _Problem(X, y, s, mean, precision, base)
    theta = np.empty(k + 1)
    start = mean if weights_init is None else _as_vector(weights_init, k, "weights_init", 0.0)
    theta[1:] = start
    theta[0] = _initial(y, s, X, start, base) if intercept_init is None else intercept_init
    z = problem.logodds(theta)
    f = problem.objective(theta, z)
    for iteration in range(1, max_iter + 1):
        g = problem.gradient(theta, z)
        step = _newton_step(problem.hessian(z), g)
        decrement = -0.5 * float(g @ step)
        if decrement <= tol:
            # Inside the quadratic region: the full step is free and squares the error.
            theta = theta + step
            return Fit(theta[1:].copy(), float(theta[0]), iteration, True)
        moved = _line_search(problem, theta, z, f, g, step)
        if moved is None:  # no decrease left to find: at the optimum to rounding error
            return Fit(theta[1:].copy(), float(theta[0]), iteration, decrement <= 1e3 * tol)
        theta, z, f = moved
    return Fit(theta[1:].copy(), float(theta[0]), max_iter, False)


def _line_search(
    problem: _Problem,
    theta: np.ndarray,
    z: np.ndarray,
    f: float,
    g: np.ndarray,
    step: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Backtrack from the full Newton step until the objective falls enough (Armijo).
    Rounding in a large sum can hide a tiny true decrease, hence the slack."""
    slope = float(g @ step)
    slack = 1e-12 * (1.0 + abs(f))
    z_step = z - problem.offset - theta[0]  # X·w, reused: X·(w + t·δ) = X·w + t·X·δ
    x_dir = problem.X @ step[1:]
    t = 1.0
    for _ in range(60):
        candidate = theta + t * step
        cz = problem.offset + candidate[0] + z_step + t * x_dir
        cf = problem.objective(candidate, cz)
        if cf <= f + _ARMIJO * t * slope + slack:
            return candidate, cz, cf
        t *= 0.5
    return None


def choose_precision(
    X: np.ndarray,
    y: np.ndarray,
    grid: tuple[float, ...],
    *,
    prior_mean: np.ndarray | None = None,
    folds: int = 3,
    seed: int = 0,
) -> float:
    """The prior precision in ``grid`` whose fits have the lowest out-of-fold log loss
    (``folds`` seeded random folds): how strongly to shrink, chosen by the data rather than
    fixed. The first of equals wins; a fold missing a class is skipped."""
    y = np.asarray(y, dtype=float)
    fold = np.random.default_rng(seed).permutation(y.size) % folds
    losses = np.zeros(len(grid))
    for k in range(folds):
        held = fold == k
        if len(set(y[held].tolist())) < 2 or len(set(y[~held].tolist())) < 2:
            continue
        warm: np.ndarray | None = None  # the neighbouring strength's optimum
        for i, precision in enumerate(grid):
            fit = fit_logistic(
                X[~held], y[~held], prior_mean=prior_mean, prior_precision=precision,
                weights_init=warm,
            )  # fmt: skip
            warm = fit.weights
            p = np.clip(sigmoid(predict_logodds(X[held], fit)), 1e-15, 1 - 1e-15)
            losses[i] -= float(np.sum(y[held] * np.log(p) + (1 - y[held]) * np.log1p(-p)))
    return float(grid[int(np.argmin(losses))])
