"""How well does ``leadbot learn``'s scorecard rank held-out X Education leads, beside
scikit-learn's logistic regression and gradient boosting on the same rows and folds?

Run on demand: ``python -m tests.bench.bench_learn`` (scikit-learn is a dev dependency only).
Two protocols, leak columns and ids excluded, each model seeing only its training rows
(leadbot's bins are cut on them too): ``leadbot learn``'s own held-out split (a seeded
random 25 %; seeds 0–4, median) and 5-fold stratified cross-validation (seed 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.models.learn_csv import (
    TEST_FRACTION,
    LearnOptions,
    fit_scorecard,
    read_table,
    table_totals,
    traits_of,
)
from scoring.metrics import roc_auc

DATA = Path(__file__).parents[3] / "shared/data/x-education/leads.csv"
OUTCOME = "Converted"
EXCLUDED = (
    "Prospect ID",
    "Lead Number",
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
)
FOLDS = 5

Rows = Sequence[dict[str, str]]
Scorer = Callable[[Rows, np.ndarray, Rows, list[str]], np.ndarray]
Splits = Sequence[tuple[np.ndarray, np.ndarray]]
OURS = "leadbot scorecard"


def leadbot(train: Rows, y: np.ndarray, test: Rows, columns: list[str]) -> np.ndarray:
    model, _ = fit_scorecard(train, y, columns, LearnOptions(outcome=OUTCOME), lambda *_: None)
    return table_totals(model, [traits_of(r, columns) for r in test])


def _arrays(rows: Rows, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns as floats (nan = missing), the others as lower-cased strings."""
    from scoring.binning import clean, is_numeric

    data = {c: [clean(r[c]) for r in rows] for c in columns}
    numeric = [c for c in columns if is_numeric([v for v in data[c] if v is not None])]
    categorical = [c for c in columns if c not in numeric]

    def number(v: str | None) -> float:
        try:
            return float(v) if v is not None else np.nan
        except ValueError:
            return np.nan

    nums = np.array([[number(v) for v in data[c]] for c in numeric]).T
    cats = np.array([[(v or "missing").lower() for v in data[c]] for c in categorical]).T
    return nums, cats


def _sklearn(kind: str) -> Scorer:
    def run(train: Rows, y: np.ndarray, test: Rows, columns: list[str]) -> np.ndarray:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

        nums, cats = _arrays([*train, *test], columns)
        n = len(train)
        if kind == "lr":
            scale = make_pipeline(SimpleImputer(add_indicator=True), StandardScaler())
            onehot = OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)
            scale.fit(nums[:n])
            onehot.fit(cats[:n])
            X = np.hstack([scale.transform(nums), onehot.transform(cats)])
            lr = LogisticRegression(max_iter=5000).fit(X[:n], y)
            return np.asarray(lr.predict_proba(X[n:])[:, 1])
        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
        codes.fit(cats[:n])
        X = np.hstack([nums, codes.transform(cats)])
        mask = [False] * nums.shape[1] + [True] * cats.shape[1]
        hgb = HistGradientBoostingClassifier(categorical_features=mask, random_state=0)
        hgb.fit(X[:n], y)
        return np.asarray(hgb.predict_proba(X[n:])[:, 1])

    return run


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``leadbot learn``'s own held-out split (``learn_csv._held_out``): a seeded random 25 %."""
    test = np.random.default_rng(seed).permutation(n)[: round(n * TEST_FRACTION)]
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _run(
    scorers: dict[str, Scorer], rows: Rows, y: np.ndarray, columns: list[str], splits: Splits
) -> tuple[dict[str, list[float]], dict[str, float]]:
    aucs: dict[str, list[float]] = {name: [] for name in scorers}
    seconds: dict[str, float] = dict.fromkeys(scorers, 0.0)
    for train, test in splits:
        train_rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]
        for name, scorer in scorers.items():
            start = time.perf_counter()
            scores = scorer(train_rows, y[train], test_rows, columns)
            seconds[name] += time.perf_counter() - start
            aucs[name].append(roc_auc(y[test], scores))
    return aucs, seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_learn", description=__doc__)
    parser.add_argument("--folds", type=int, default=FOLDS, help="CV folds (0: skip the CV)")
    parser.add_argument(
        "--splits", type=int, default=5, help="learn's own 75/25 split, seeds 0..N-1 (0: skip)"
    )
    args = parser.parse_args(argv)
    if not DATA.exists():
        sys.stdout.write(f"skipped: {DATA} is absent (the X Education lead data)\n")
        return 0
    from sklearn.model_selection import StratifiedKFold

    table = read_table(DATA)
    columns = [c for c in table.columns if c not in (*EXCLUDED, OUTCOME)]
    rows = list(table.rows)
    y = np.array([float(r[OUTCOME]) for r in rows])
    scorers: dict[str, Scorer] = {
        OURS: leadbot,
        "logistic regression (one-hot + scaled)": _sklearn("lr"),
        "gradient boosting (HistGradientBoosting)": _sklearn("hgb"),
    }
    if args.splits > 0:
        splits = [_split(len(rows), seed) for seed in range(args.splits)]
        title = (
            f"X Education, {len(rows)} leads, learn's held-out split (random 25 %, "
            f"seeds 0–{args.splits - 1}; seed 0 is what `leadbot learn` prints), leak columns out"
        )
        report(title, *_run(scorers, rows, y, columns, splits), by_split=True)
    if args.folds > 1:
        folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
        title = (
            f"X Education, {len(rows)} leads, {args.folds}-fold stratified CV (seed 0), "
            "leak columns out"
        )
        report(title, *_run(scorers, rows, y, columns, list(folds.split(rows, y))))
    return 0


def report(
    title: str, aucs: dict[str, list[float]], seconds: dict[str, float], by_split: bool = False
) -> None:
    out = sys.stdout
    out.write(f"{title}\n\n")
    columns = "".join(f" {f'seed {i}':>8}" for i in range(len(next(iter(aucs.values())))))
    each = columns if by_split else ""
    out.write(f"{'model':<42} {'ROC AUC':>8} {'median':>8} {'± sd':>7} {'seconds':>8}{each}\n")
    for name, values in aucs.items():
        mean, sd, median = float(np.mean(values)), float(np.std(values)), float(np.median(values))
        each = "".join(f" {v:8.4f}" for v in values) if by_split else ""
        out.write(f"{name:<42} {mean:8.4f} {median:8.4f} {sd:7.4f} {seconds[name]:8.1f}{each}\n")
    best = max(float(np.median(v)) for k, v in aucs.items() if k != OURS)
    ours = float(np.median(aucs[OURS]))
    verdict = "meets" if ours >= best else "MISSES"
    out.write(
        f"\nleadbot − better of the two (medians): {ours - best:+.4f}: {verdict} learn ≥ best\n"
    )
    if by_split:
        gaps = [a - max(b, c) for a, b, c in zip(*aucs.values(), strict=True)]
        out.write(f"per seed: {' '.join(f'{g:+.4f}' for g in gaps)}\n")
    out.write("\n")


if __name__ == "__main__":
    sys.exit(main())
