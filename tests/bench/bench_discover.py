"""Does a retrain find the signals of traits the default model does not know? The retrain's
own functions (snapshots, ``with_new_rules``, ``propose``), in process, on X Education.

Run on demand: ``python -m tests.bench.bench_discover [--labels 50,100,250,500,1000]
[--seeds 3] [--max-rules 5] [--min-support 20]``.

Each seed shuffles the rows, holds 30 % out, and takes the first N of the rest as labels
(label time = order). Every row is a lead with its columns as traits (``leadbot learn``'s
exclusions: ids and leak columns), scored by the default B2B model. The retrain's model is
scored on the held-out rows; logistic regression and gradient boosting are trained on the
same N rows (``bench_learn``'s pipelines). Prints held-out ROC AUC per N, medians over seeds.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time

import numpy as np

from bot.models.discovered import with_new_rules
from bot.models.learn_csv import table_totals, traits_of
from config.loader import load_config
from scoring.discover import Discovery
from scoring.engine import feature
from scoring.metrics import roc_auc
from scoring.refit import Guardrails, propose
from scoring.snapshot import LEAKS, lead_snapshot, without
from scoring.state import LeadState
from tests.bench.bench_learn import DATA, EXCLUDED, OUTCOME, _sklearn


def _leads(rows: list[dict[str, str]], columns: list[str]) -> list[LeadState]:
    model = load_config().model
    states = []
    for row in rows:
        state = LeadState()
        state.identify(traits_of(row, columns), model, 0.0)
        states.append(state)
    return states


def retrained_auc(
    train: list[LeadState],
    y: np.ndarray,
    test: list[LeadState],
    y_test: np.ndarray,
    discovery: Discovery,
) -> tuple[float, int]:
    """The held-out AUC of the default model retrained on ``train``, and its new rules."""
    model = load_config().model
    X = np.array([[feature(r, s, 0.0) for r in model.rules] for s in train])
    snaps = [without(lead_snapshot(s.traits, {}), LEAKS) for s in train]
    at, w, guard = np.arange(y.size, dtype=float), np.ones(y.size), Guardrails()
    found = with_new_rules(model, X, y, at, w, snaps, discovery, guard)
    proposal = propose(found.model, found.X, y, at, weights=w, guardrails=guard)
    totals = table_totals(proposal.model, [s.traits for s in test])
    return float(roc_auc(y_test, totals)), len(found.rules)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="50,100,250,500,1000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-rules", type=int, default=Discovery.max_rules)
    parser.add_argument("--min-support", type=int, default=Discovery.min_support)
    parser.add_argument("--min-gain", type=float, default=Discovery.min_gain)
    parser.add_argument("--penalty", type=float, default=Discovery.penalty)
    args = parser.parse_args()
    discovery = Discovery(
        max_rules=args.max_rules, min_support=args.min_support, min_gain=args.min_gain,
        penalty=args.penalty,
    )  # fmt: skip
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c not in EXCLUDED and c != OUTCOME]
    sizes = [int(n) for n in args.labels.split(",")]
    results: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
    started = time.perf_counter()
    for seed in range(args.seeds):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        cut = int(len(shuffled) * 0.3)
        test_rows, pool = shuffled[:cut], shuffled[cut:]
        y_test = np.array([float(r[OUTCOME]) for r in test_rows])
        test_states = _leads(test_rows, columns)
        for n in sizes:
            train_rows = pool[:n]
            y = np.array([float(r[OUTCOME]) for r in train_rows])
            auc, kept = retrained_auc(
                _leads(train_rows, columns), y, test_states, y_test, discovery
            )
            got = results[n]
            got.setdefault("leadbot retrain", []).append(auc)
            got.setdefault("new rules", []).append(kept)
            for kind in ("lr", "gb"):
                s = _sklearn(kind)(train_rows, y, test_rows, columns)
                got.setdefault(kind, []).append(float(roc_auc(y_test, s)))
    print(
        f"held-out ROC AUC, medians of {args.seeds} seeds ({time.perf_counter() - started:.0f} s)"
    )
    print(f"{'labels':>6} {'retrain':>8} {'rules':>5} {'LR':>6} {'GB':>6} {'vs best':>7}")
    for n in sizes:
        med = {k: statistics.median(v) for k, v in results[n].items()}
        best = max(med["lr"], med["gb"])
        ours = med["leadbot retrain"]
        print(f"{n:>6} {ours:>8.3f} {med['new rules']:>5.0f} "
              f"{med['lr']:>6.3f} {med['gb']:>6.3f} {ours / best:>7.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
