"""``leadbot learn`` with pair (AND) rules and step-fitted bins: the YAML it writes loads back
to the model it learned, and scores the CSV's rows as the fit did."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bot.models.learn_csv import LearnOptions, run_learn
from config import load_config
from tests.bot.models.test_learn_csv import write_csv


def _rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        origin, activity = rng.choice(["API", "Form", "Import"]), rng.choice(["SMS", "Email"])
        visits = int(rng.integers(0, 25))
        z = -1.5 + 0.1 * visits + 2.5 * (origin == "API" and activity == "SMS")
        won = rng.random() < 1 / (1 + np.exp(-z))
        rows.append(
            {"Origin": str(origin), "Activity": str(activity), "Visits": str(visits),
             "Won": "1" if won else "0"}
        )  # fmt: skip
    return rows


def test_pair_rules_round_trip_through_the_written_yaml(tmp_path: Path) -> None:
    history = write_csv(tmp_path / "history.csv", _rows(2500, seed=6))
    out = tmp_path / "model.yaml"
    learned = run_learn(history, out, LearnOptions(outcome="Won"), stderr=io.StringIO())
    loaded = load_config(out).model
    pairs = [r for r in loaded.fit_rules if len(r.conditions) == 2]
    assert pairs, "the planted interaction should give an AND rule"
    assert loaded.fit_rules == learned.model.fit_rules
    assert loaded.intercept == learned.model.intercept
    assert any({c.path for c in r.conditions} == {("Origin",), ("Activity",)} for r in pairs)
    assert learned.held_out is not None
    assert learned.held_out.roc_auc > 0.7
