"""Pairwise AND rules for a points model: what a tree finds and an additive scorecard misses.

Gradient boosting beats a one-column-at-a-time scorecard mostly through interactions ("an
API lead whose last activity was an SMS"). A rule with two conditions (``all`` of them must
hold) expresses one and keeps the model additive and readable. Candidates are the products
of two 0/1 features from different columns; they are added greedily by the score statistic
``(Σ rᵢxᵢ)² / (Σ wᵢxᵢ + precision)`` — the gain in penalised log-likelihood a new weight
would bring, to second order — where ``r = y − p`` and ``w = p(1 − p)`` come from the current
fit. For 0/1 features every pair's sums are entries of ``Zᵀ·diag(r)·Z``, so scoring all
pairs costs one ``k × k`` product per round, not one pass per pair.

How many pairs to keep is chosen by cross-validation (:func:`choose_pairs`): the greedy
path on two folds, each prefix's log loss on the third, in turn; the shortest prefix length
within one standard error of the best; then the path again on every row up to that length.
Data without interactions keeps none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from scoring.learn import Fit, fit_logistic, sigmoid

Pair = tuple[int, int]


@dataclass(frozen=True, slots=True)
class PairSearch:
    """``max_pairs`` rules at most, added ``batch`` per refit; each pair must match at least
    ``min_support`` rows and miss at least as many; ``folds`` cross-validation folds choose
    how many to keep, ``tolerance`` how many standard errors of out-of-fold log loss a
    shorter list may lose to the best one and still be preferred."""

    max_pairs: int = 30
    batch: int = 3
    min_support: int = 30
    folds: int = 3
    tolerance: float = 1.0
    seed: int = 0


def pair_features(Z: np.ndarray, pairs: Sequence[Pair]) -> np.ndarray:
    """``(n, len(pairs))``: 1.0 where both features of the pair are 1."""
    if not pairs:
        return np.zeros((Z.shape[0], 0))
    a, b = np.array(pairs).T
    return Z[:, a] * Z[:, b]


def _stats(
    Z: np.ndarray, y: np.ndarray, logodds: np.ndarray, blocked: np.ndarray, precision: float
) -> np.ndarray:
    p = sigmoid(logodds)
    gain = Z.T @ (Z * (y - p)[:, None])
    curvature = Z.T @ (Z * (p * (1.0 - p))[:, None])
    stat = gain * gain / (curvature + precision)
    stat[blocked] = -1.0
    return stat


def greedy_pairs(
    Z: np.ndarray, y: np.ndarray, groups: Sequence[str], precision: float, search: PairSearch
) -> list[Pair]:
    """Pairs of columns of ``Z`` (0/1 features) in the order the greedy search adds them.
    ``groups[j]`` names the column feature ``j`` tests: a pair within one column is never
    proposed (it is that column's own bin, or empty)."""
    return _path(Z, y, groups, precision, search)[0]


def _path(
    Z: np.ndarray, y: np.ndarray, groups: Sequence[str], precision: float, search: PairSearch
) -> tuple[list[Pair], list[Fit]]:
    """The greedy pairs, and the fit made before each batch was added plus the final one:
    ``fits[m]`` uses the first ``m × batch`` pairs (fewer in the last, shorter batch)."""
    n, k = Z.shape
    names = np.asarray(groups)
    matched = Z.T @ Z
    blocked = (names[:, None] == names[None, :]) | (matched < search.min_support)
    blocked |= matched > n - search.min_support
    blocked |= ~np.triu(np.ones((k, k), dtype=bool), 1)
    pairs: list[Pair] = []
    fits: list[Fit] = []
    while True:
        X = np.hstack([Z, pair_features(Z, pairs)])
        warm = None
        if fits:  # the previous optimum, the new pairs at 0: a few Newton steps from here
            warm = np.concatenate([fits[-1].weights, np.zeros(X.shape[1] - fits[-1].weights.size)])
        fit = fit_logistic(X, y, prior_precision=precision, weights_init=warm)
        fits.append(fit)
        if len(pairs) >= search.max_pairs:
            break
        stat = _stats(Z, y, fit.intercept + X @ fit.weights, blocked, precision)
        order = np.argsort(stat, axis=None)[::-1][
            : min(search.batch, search.max_pairs - len(pairs))
        ]
        best = [(int(a), int(b)) for a, b in zip(*np.unravel_index(order, stat.shape), strict=True)]
        best = [pair for pair in best if stat[pair] > 0]
        if not best:
            break
        for pair in best:
            blocked[pair] = True
        pairs += best
    return pairs, fits


def _row_losses(Z: np.ndarray, y: np.ndarray, fit: Fit) -> np.ndarray:
    """Each row's log loss under ``fit`` (of ``Z`` and its first ``fit``-many pairs)."""
    p = np.clip(sigmoid(fit.intercept + Z @ fit.weights), 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def choose_pairs(
    Z: np.ndarray, y: np.ndarray, groups: Sequence[str], precision: float, search: PairSearch
) -> list[Pair]:
    """The greedy pairs on every row, as many as cross-validation chooses (maybe none): the
    fewest whose out-of-fold log loss is within ``tolerance`` standard errors of the best
    count's (the error of the per-row loss differences), so noise does not buy a rule."""
    n = Z.shape[0]
    fold = np.random.default_rng(search.seed).permutation(n) % search.folds
    counts = sorted({*range(0, search.max_pairs + 1, search.batch), search.max_pairs})
    losses = np.zeros((len(counts), n))
    for k in range(search.folds):
        held = fold == k
        if len(set(y[held].tolist())) < 2 or len(set(y[~held].tolist())) < 2:
            return []
        # The path's own fits, made on the other folds, are the ones to judge on this one; a
        # path that stopped early stands for every longer count.
        path, fits = _path(Z[~held], y[~held], groups, precision, search)
        made = [fit.weights.size - Z.shape[1] for fit in fits]
        for i, count in enumerate(counts):
            m = max(j for j, c in enumerate(made) if c <= count)
            X = np.hstack([Z[held], pair_features(Z[held], path[: made[m]])])
            losses[i, held] = _row_losses(X, y[held], fits[m])
    top = int(np.argmin(losses.mean(axis=1)))
    excess = losses - losses[top]
    error = excess.std(axis=1) / np.sqrt(n)
    best = counts[int(np.flatnonzero(excess.mean(axis=1) <= search.tolerance * error)[0])]
    if best == 0:
        return []
    return greedy_pairs(Z, y, groups, precision, replace(search, max_pairs=best))
