"""How well does ``leadbot learn``'s scorecard rank held-out X Education leads, beside
scikit-learn's logistic regression and gradient boosting on the same rows and folds?

Run on demand: ``python -m tests.bench.bench_learn`` (scikit-learn is a dev dependency only).
5-fold stratified cross-validation (seed 0), leak columns and ids excluded; each model sees
only its training fold (leadbot's bins are cut on the training fold too).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.models.learn_csv import LearnOptions, fit_scorecard, read_table, table_totals, traits_of
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


def main() -> int:
    if not DATA.exists():
        sys.stdout.write(f"skipped: {DATA} is absent (the X Education lead data)\n")
        return 0
    from sklearn.model_selection import StratifiedKFold

    table = read_table(DATA)
    columns = [c for c in table.columns if c not in (*EXCLUDED, OUTCOME)]
    rows = list(table.rows)
    y = np.array([float(r[OUTCOME]) for r in rows])
    scorers: dict[str, Scorer] = {
        "leadbot scorecard": leadbot,
        "logistic regression (one-hot + scaled)": _sklearn("lr"),
        "gradient boosting (HistGradientBoosting)": _sklearn("hgb"),
    }
    aucs: dict[str, list[float]] = {name: [] for name in scorers}
    seconds: dict[str, float] = dict.fromkeys(scorers, 0.0)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    for train, test in folds.split(np.zeros(len(y)), y):
        train_rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]
        for name, scorer in scorers.items():
            start = time.perf_counter()
            scores = scorer(train_rows, y[train], test_rows, columns)
            seconds[name] += time.perf_counter() - start
            aucs[name].append(roc_auc(y[test], scores))
    report(aucs, seconds, len(rows))
    return 0


def report(aucs: dict[str, list[float]], seconds: dict[str, float], n: int) -> None:
    out = sys.stdout
    out.write(f"X Education, {n} leads, {FOLDS}-fold stratified CV (seed 0), leak columns out\n\n")
    out.write(f"{'model':<42} {'ROC AUC':>8} {'± sd':>7} {'seconds':>8}\n")
    for name, values in aucs.items():
        mean, sd = float(np.mean(values)), float(np.std(values))
        out.write(f"{name:<42} {mean:8.4f} {sd:7.4f} {seconds[name]:8.1f}\n")
    best = max(float(np.mean(v)) for k, v in aucs.items() if k != "leadbot scorecard")
    ours = float(np.mean(aucs["leadbot scorecard"]))
    verdict = "meets" if ours >= 0.98 * best else "MISSES"
    out.write(
        f"\nleadbot − better of the two: {ours - best:+.4f}; "
        f"floor 0.98 × {best:.4f} = {0.98 * best:.4f}: {verdict}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
