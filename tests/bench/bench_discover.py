"""Does a retrain find the signals of traits the default model does not know? The retrain's
own functions (snapshots, ``rules_to_propose``, ``propose``), in process, on X Education or
a generated domain.

Run on demand: ``python -m tests.bench.bench_discover [--labels 50,100,250,500,1000,all]
[--seeds 3] [--max-rules 5] [--min-support 20] [--data x-education|bank|linear]``.

``--data bank`` / ``linear`` (``tests/bench/synthetic_domains.py``) draw ``--rows`` rows anew
for each seed: a bank's telemarketing export (period macro columns, "never contacted" mass
points, dotted column names) and a set whose log-odds are linear in its numbers.

Each seed shuffles the rows, holds 30 % out, and takes the first N of the rest as labels
(label time = order). Every row is a lead with its columns as traits (``leadbot learn``'s
exclusions: ids and leak columns), scored by the default B2B model. The retrain's model is
scored on the held-out rows; logistic regression and gradient boosting are trained on the
same N rows (``bench_learn``'s pipelines). Prints, per N and medians over seeds, each one's
held-out ROC AUC, lift in the top decile and Brier score of the probability (the activated
version's ``σ(intercept + total / points_per_logodds)``, the references' ``predict_proba``),
then the reliability by decile (mean predicted against observed rate, deciles of the
predicted probability) at the largest N, on the first seed's split.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time

import numpy as np

from bot.models.discovered import rules_to_propose
from bot.models.learn_csv import table_totals, traits_of
from config.loader import load_config
from scoring.discover import Discovery
from scoring.engine import feature
from scoring.learn import sigmoid
from scoring.metrics import roc_auc, top_decile_lift
from scoring.refit import Guardrails, propose
from scoring.snapshot import LEAKS, lead_snapshot, without
from scoring.state import LeadState
from tests.bench.bench_learn import DATA, EXCLUDED, OUTCOME, _sklearn
from tests.bench.synthetic_domains import DOMAINS, generate


def _leads(rows: list[dict[str, str]], columns: list[str]) -> list[LeadState]:
    model = load_config().model
    states = []
    for row in rows:
        state = LeadState()
        state.identify(traits_of(row, columns), model, 0.0)
        states.append(state)
    return states


def retrained(
    train: list[LeadState],
    y: np.ndarray,
    test: list[LeadState],
    discovery: Discovery,
) -> tuple[np.ndarray, int]:
    """The held-out probabilities of the default model retrained on ``train``, and how
    many new rules it has."""
    model = load_config().model
    X = np.array([[feature(r, s, 0.0) for r in model.rules] for s in train])
    snaps = [without(lead_snapshot(s.traits, {}), LEAKS) for s in train]
    at, w, guard = np.arange(y.size, dtype=float), np.ones(y.size), Guardrails()
    found, _ = rules_to_propose(model, X, y, at, w, snaps, discovery, guard)
    fitted = propose(found.model, found.X, y, at, weights=w, guardrails=guard).model
    totals = table_totals(fitted, [s.traits for s in test])
    return sigmoid(fitted.intercept + totals / fitted.points_per_logodds), len(found.rules)


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probability: 0 is perfect, 0.25 a coin toss at 50 %."""
    return float(np.mean((p - y) ** 2))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[tuple[float, float]]:
    """``(mean predicted, observed rate)`` per decile of the predicted probability."""
    order = np.argsort(p, kind="stable")
    return [(float(p[part].mean()), float(y[part].mean())) for part in np.array_split(order, bins)]


METHODS = ("leadbot retrain", "lr", "gb")
NAMES = {"leadbot retrain": "retrain", "lr": "LR", "gb": "GB"}


def _measure(got: dict[str, list[float]], method: str, y: np.ndarray, p: np.ndarray) -> None:
    got.setdefault(f"{method} auc", []).append(float(roc_auc(y, p)))
    got.setdefault(f"{method} lift", []).append(float(top_decile_lift(y, p)))
    got.setdefault(f"{method} brier", []).append(brier(y, p))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="50,100,250,500,1000,all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-rules", type=int, default=Discovery.max_rules)
    parser.add_argument("--min-support", type=int, default=Discovery.min_support)
    parser.add_argument("--min-gain", type=float, default=Discovery.min_gain)
    parser.add_argument("--penalty", type=float, default=Discovery.penalty)
    parser.add_argument(
        "--data", choices=("x-education", *DOMAINS), default="x-education",
        help="X Education, or a generated domain (tests/bench/synthetic_domains.py)",
    )  # fmt: skip
    parser.add_argument("--rows", type=int, default=10_000, help="rows of a generated domain")
    args = parser.parse_args()
    discovery = Discovery(
        max_rules=args.max_rules, min_support=args.min_support, min_gain=args.min_gain,
        penalty=args.penalty,
    )  # fmt: skip
    rows, columns, outcome = _data(args.data, args.rows)
    pool_size = len(rows) - int(len(rows) * 0.3)
    sizes = [pool_size if n == "all" else int(n) for n in args.labels.split(",")]
    results: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
    curves: dict[str, list[tuple[float, float]]] = {}
    started = time.perf_counter()
    for seed in range(args.seeds):
        if args.data in DOMAINS:  # a new draw per seed, as a new customer's data would be
            rows = generate(args.data, args.rows, seed)
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        cut = int(len(shuffled) * 0.3)
        test_rows, pool = shuffled[:cut], shuffled[cut:]
        y_test = np.array([float(r[outcome]) for r in test_rows])
        test_states = _leads(test_rows, columns)
        for n in sizes:
            train_rows = pool[:n]
            y = np.array([float(r[outcome]) for r in train_rows])
            p, kept = retrained(_leads(train_rows, columns), y, test_states, discovery)
            got = results[n]
            got.setdefault("new rules", []).append(kept)
            probabilities = {"leadbot retrain": p}
            for kind in ("lr", "gb"):
                probabilities[kind] = _sklearn(kind)(train_rows, y, test_rows, columns)
            for method, q in probabilities.items():
                _measure(got, method, y_test, q)
                if seed == 0 and n == sizes[-1]:
                    curves[method] = reliability(y_test, q)
    elapsed = time.perf_counter() - started
    report(args.data, sizes, results, curves, args.seeds, elapsed)
    return 0


def _data(name: str, n: int) -> tuple[list[dict[str, str]], list[str], str]:
    """The rows, the columns sent as traits, and the outcome column."""
    if name in DOMAINS:
        rows = generate(name, n, 0)
        return rows, [c for c in rows[0] if c != "y"], "y"
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, [c for c in rows[0] if c not in EXCLUDED and c != OUTCOME], OUTCOME


def report(
    data: str,
    sizes: list[int],
    results: dict[int, dict[str, list[float]]],
    curves: dict[str, list[tuple[float, float]]],
    seeds: int,
    elapsed: float,
) -> None:
    title = "X Education" if data == "x-education" else f"the generated '{data}' domain"
    print(f"held-out metrics on {title}, medians of {seeds} seeds ({elapsed:.0f} s)")
    for metric, title in (("auc", "ROC AUC"), ("lift", "top-decile lift"),
                          ("brier", "Brier score (lower is better)")):  # fmt: skip
        print(f"\n{title}")
        heads = " ".join(f"{NAMES[m]:>8}" for m in METHODS)
        print(f"{'labels':>6} {heads} {'rules':>5} {'vs best':>7}")
        for n in sizes:
            med = {k: statistics.median(v) for k, v in results[n].items()}
            values = [med[f"{m} {metric}"] for m in METHODS]
            ours, refs = values[0], values[1:]
            best = min(refs) if metric == "brier" else max(refs)
            cells = " ".join(f"{v:>8.3f}" for v in values)
            print(f"{n:>6} {cells} {med['new rules']:>5.0f} {ours / best:>7.3f}")
    print(f"\nreliability by decile at {sizes[-1]} labels (seed 0): mean predicted / observed")
    for method in METHODS:
        cells = " ".join(f"{p:.2f}/{o:.2f}" for p, o in curves.get(method, []))
        print(f"{NAMES[method]:>8} {cells}")


if __name__ == "__main__":
    raise SystemExit(main())
