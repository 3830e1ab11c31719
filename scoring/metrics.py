"""Evaluation metrics for a score against 0/1 outcomes, and the time-ordered split.

``y`` is ``(n,)`` labels in {0, 1}; ``s`` is ``(n,)`` scores or probabilities (only their
order matters except for ``log_loss``). Ties in ``s`` are handled as if broken at random:
average ranks for the AUC, a shared fraction of the boundary for the top decile.
"""

from __future__ import annotations

import math

import numpy as np


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float).ravel()
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y: labels must be 0 or 1, got {float(y[(y != 0) & (y != 1)][0])!r}")
    return y


def _pair(y: np.ndarray, s: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y)
    s = np.asarray(s, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{name}: expected as many values as labels ({y.size}), got {s.size}")
    return y, s


def average_ranks(s: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``s``, ties sharing the average of the ranks they span."""
    s = np.asarray(s, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    # Each run of equal values gets the mean of its first and last 1-based position.
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    run = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], ordered.size] - 1
    ranks = np.empty(s.size)
    ranks[order] = (first[run] + last[run]) / 2.0 + 1.0
    return ranks


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """The probability that a random positive outscores a random negative (ties count ½),
    by the Mann–Whitney rank sum. ``nan`` when only one class is present."""
    y, s = _pair(y, s, "s")
    positives = float(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    rank_sum = float(average_ranks(s) @ y)
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood in nats; ``p`` is clipped to ``[eps, 1 − eps]`` so a
    confident mistake costs a lot but not infinity. ``nan`` for no labels."""
    y, p = _pair(y, p, "p")
    if y.size == 0:
        return math.nan
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def top_decile_lift(y: np.ndarray, s: np.ndarray, fraction: float = 0.1) -> float:
    """Conversion among the top ``fraction`` (10 %) by ``s``, ÷ overall conversion.

    The top holds ``ceil(fraction·n)`` leads. When a run of tied scores straddles the cut,
    each lead in it counts for the share of the run that fits (what random tie-breaking
    gives on average), so the lift never depends on the input order. ``nan`` when there are
    no labels or no positives."""
    y, s = _pair(y, s, "s")
    if y.size == 0 or y.sum() == 0:
        return math.nan
    take = math.ceil(fraction * y.size)
    order = np.argsort(-s, kind="mergesort")
    ordered, labels = s[order], y[order]
    cut = ordered[take - 1]
    above = ordered > cut
    tied = ordered == cut
    room = take - int(above.sum())
    share = room / int(tied.sum())
    converted = float(labels[above].sum()) + share * float(labels[tied].sum())
    return (converted / take) / float(y.mean())


def conversion_by_group(y: np.ndarray, groups: np.ndarray) -> dict[str, tuple[int, float]]:
    """For each group (by its ``str``, in sorted order): the number of labels and the share
    that converted."""
    y = _labels(y)
    names = np.asarray([str(g) for g in np.asarray(groups, dtype=object).ravel()], dtype=object)
    if names.size != y.size:
        raise ValueError(f"groups: expected one per label ({y.size}), got {names.size}")
    found: dict[str, tuple[int, float]] = {}
    for name in sorted(set(names.tolist())):
        members = y[names == name]
        found[name] = (int(members.size), float(members.mean()))
    return found


def time_split(at: np.ndarray, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(train, test)``: train on the older labels, test on the newer.

    The test set is the newest ``ceil(test_fraction·n)`` labels, extended to every label
    that shares the cut-off time, so every training label is strictly older than every
    test label (a tie would otherwise let the model see the test period). When all labels
    share one time, all of them are test and train is empty."""
    at = np.asarray(at, dtype=float).ravel()
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value between 0 and 1, got {test_fraction}")
    if at.size == 0:
        empty = np.zeros(0, dtype=bool)
        return empty, empty.copy()
    if not np.all(np.isfinite(at)):
        raise ValueError("at: every label time must be finite (found nan or inf)")
    take = math.ceil(test_fraction * at.size)
    cut = np.sort(at)[at.size - take]
    test = at >= cut
    return ~test, test
