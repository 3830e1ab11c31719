"""Columns a learner must not trust: ids, and likely leaks (filled in after the outcome).

A history export often carries the row id and fields a salesperson fills in after talking
to the lead. A model learned from them scores the past well and live leads badly: a live
lead has no such field yet, and an id says nothing about a new lead. These checks look at
each column alone, on cleaned cells (None = missing, as :func:`scoring.binning.clean`).

- an id: text ≥ 95 % distinct among its values, or numbers that are all integers and
  unique per row, or numbers monotonic with row order (a counter, a creation stamp);
- a leak: its single-column out-of-fold ROC AUC beats every other column by ``margin`` (and
  by more than the noise of an AUC on this many rows), or it is filled for under
  ``empty_share`` of one outcome and over ``filled_share`` of the other.

These are heuristics: a leak with no single-column signal of its own (X Education's
``Asymmetrique …`` scores) passes unseen; the user's ``--ignore`` remains the last word.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scoring.metrics import roc_auc

DISTINCT_SHARE = 0.95
MIN_VALUES = 20
MIN_COLUMNS = 5
FOLDS = 3
MARGIN = 0.04  # Lead Quality on X Education leads by 0.046–0.053 over 5 seeds


@dataclass(frozen=True, slots=True)
class Flag:
    """A column and why: ``reason`` is the human text, ``figure`` the number behind it."""

    column: str
    reason: str
    figure: float


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def id_reason(cells: Sequence[str | None]) -> str | None:
    """Why this column identifies rows rather than describing them, or None."""
    values = [c for c in cells if c is not None]
    if len(values) < MIN_VALUES:
        return None
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        array = np.array(numbers, dtype=float)
        distinct = np.unique(array).size
        if distinct == array.size and np.all(array == np.round(array)):
            return "an id (unique per row)"
        steps = np.diff(array)
        # Monotonic with row order: a counter or a timestamp, which no new lead can share.
        if distinct >= MIN_VALUES / 2 and (np.all(steps >= 0) or np.all(steps <= 0)):
            return "an id (numbers monotonic with row order)"
        return None  # a continuous measure is naturally all-distinct: keep it
    distinct = len({v.lower() for v in values})
    if distinct == len(values):
        return "an id (unique per row)"
    if distinct >= DISTINCT_SHARE * len(values):
        return f"an id ({100 * distinct / len(values):.0f} % distinct)"
    return None


def id_columns(columns: Mapping[str, Sequence[str | None]]) -> list[Flag]:
    """Every id-like column, in the given order."""
    flags = []
    for column, cells in columns.items():
        reason = id_reason(cells)
        if reason is not None:
            flags.append(Flag(column, reason, 1.0))
    return flags


def _keys(cells: Sequence[str | None], bins: int = 10) -> list[str]:
    """One group key per cell: the case-folded category, or the decile of a number."""
    present = [c for c in cells if c is not None]
    numbers = [_number(c) for c in present]
    if present and sum(n is not None for n in numbers) >= 0.95 * len(present):
        known = np.array([n for n in numbers if n is not None])
        edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1]))
        out = []
        for c in cells:
            n = None if c is None else _number(c)
            out.append("∅" if n is None else f"#{int(np.searchsorted(edges, n, side='right'))}")
        return out
    return ["∅" if c is None else c.strip().lower() for c in cells]


def single_column_auc(
    cells: Sequence[str | None], y: np.ndarray, folds: np.ndarray, smoothing: float = 10.0
) -> float:
    """Out-of-fold ROC AUC of the column alone: each row scored by its group's won rate on
    the other folds (shrunk towards the base rate, so a rare value does not score 0 or 1).
    ``folds`` gives each row's fold number; out-of-fold, an id-like column scores ~0.5."""
    keys = np.array(_keys(cells), dtype=object)
    scores = np.empty(y.size)
    for fold in np.unique(folds):
        held = folds == fold
        base = float(y[~held].mean()) if (~held).any() else 0.5
        won: dict[str, float] = {}
        seen: dict[str, int] = {}
        for key, label in zip(keys[~held], y[~held], strict=True):
            won[key] = won.get(key, 0.0) + float(label)
            seen[key] = seen.get(key, 0) + 1
        rate = {k: (won[k] + smoothing * base) / (seen[k] + smoothing) for k in seen}
        scores[held] = [rate.get(k, base) for k in keys[held]]
    auc = roc_auc(y, scores)
    return 0.5 if math.isnan(auc) else auc


def leaks(
    columns: Mapping[str, Sequence[str | None]],
    y: np.ndarray,
    *,
    seed: int = 0,
    margin: float = MARGIN,
    empty_share: float = 0.20,
    filled_share: float = 0.60,
) -> list[Flag]:
    """Likely leaks among ``columns`` (outcome ``y`` 0/1 per row), most suspicious first."""
    y = np.asarray(y, dtype=float)
    n = y.size
    flags: list[Flag] = []
    for column, cells in columns.items():
        filled = np.array([c is not None for c in cells])
        won, lost = filled[y == 1].mean(), filled[y == 0].mean()
        low, high = sorted((won, lost))
        if low < empty_share and high > filled_share:
            sparse = "won" if won < lost else "lost"
            reason = (
                f"filled for {100 * won:.0f} % of won and {100 * lost:.0f} % of lost leads "
                f"(mostly empty when {sparse})"
            )
            flags.append(Flag(column, reason, float(high - low)))
    # "Beats the rest" needs a rest: with a handful of columns one real signal may lead alone.
    if len(columns) < MIN_COLUMNS or len(set(y.tolist())) < 2:
        return flags
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    aucs = sorted(
        ((single_column_auc(cells, y, folds), c) for c, cells in columns.items()), reverse=True
    )
    # A leak stands out from the pack: the best column alone beats the next by more than
    # the noise of an AUC on this many rows (a gap of 2/√(smaller class) is about four
    # standard errors), and by at least ``margin``.
    smaller = min(int(y.sum()), int(n - y.sum()))
    needed = max(margin, 2.0 / math.sqrt(smaller))
    (best, column), (next_best, _) = aucs[0], aucs[1]
    if best - next_best >= needed and column not in {f.column for f in flags}:
        flags.append(Flag(column, f"AUC {best:.2f} alone (next best {next_best:.2f})", best))
    return flags
