"""scoring/leaks.py on small synthetic tables: ids, counters, leaks, and a clean table."""

from __future__ import annotations

import re

import numpy as np

from scoring.leaks import id_columns, id_reason, leaks


def clean_table(n: int = 600, seed: int = 3) -> tuple[dict[str, list[str | None]], np.ndarray]:
    """Six honest columns of graded strength (the outcome depends on each a little)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, list[str | None]] = {}
    z = np.full(n, -0.5)
    for j, strength in enumerate((0.9, 0.8, 0.7, 0.6, 0.5, 0.4)):
        x = rng.integers(0, 4, n)
        z += strength * (x - 1.5) / 1.5
        columns[f"c{j}"] = [("a", "b", "c", "d")[v] for v in x]
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return columns, y


def test_a_clean_table_has_no_ids_and_no_leaks() -> None:
    columns, y = clean_table()
    columns["seconds"] = [f"{v:.3f}" for v in np.random.default_rng(1).exponential(300, y.size)]
    assert id_columns(columns) == []  # all-distinct decimals are a measure, not an id
    assert leaks(columns, y) == []


def test_ids_unique_nearly_unique_and_counters() -> None:
    n = 200
    assert id_reason([f"P-{i}" for i in range(n)]) == "an id (unique per row)"
    assert id_reason([str(650_000 + 7 * i) for i in np.random.permutation(n)]) == (
        "an id (unique per row)"
    )
    nearly: list[str | None] = [f"x{i}" for i in range(n - 5)] + ["x1"] * 5 + [None] * 50
    assert id_reason(nearly) == "an id (98 % distinct)"
    counter = [str(i // 3) for i in range(n)]  # repeats, but only ever grows
    assert id_reason(counter) == "an id (numbers monotonic with row order)"
    assert id_reason(list(reversed(counter))) == "an id (numbers monotonic with row order)"
    assert id_reason([str(i % 7) for i in range(n)]) is None
    assert id_reason(["Google", "Ads", "Referral"] * 70) is None
    assert id_reason([f"u{i}" for i in range(10)]) is None  # too few values to tell


def test_a_column_that_beats_the_rest_is_flagged_with_its_auc() -> None:
    columns, y = clean_table()
    rng = np.random.default_rng(9)
    columns["Lead Quality"] = [
        ("High" if won else "Low") if rng.random() < 0.85 else "Medium" for won in y
    ]
    (flag,) = leaks(columns, y)
    assert flag.column == "Lead Quality"
    assert flag.reason.startswith("AUC 0.9")
    assert "alone (next best 0.6" in flag.reason
    # Fewer than five columns: one strong column may be real signal, so no AUC verdict.
    few = {k: columns[k] for k in ("c0", "c1", "Lead Quality")}
    assert leaks(few, y) == []


def test_a_column_mostly_empty_for_one_outcome_is_flagged() -> None:
    columns, y = clean_table()
    rng = np.random.default_rng(4)
    columns["Call notes"] = [
        (f"note {rng.integers(3)}" if rng.random() < (0.9 if won else 0.1) else None) for won in y
    ]
    flags = {f.column: f for f in leaks(columns, y)}
    pattern = r"filled for (8\d|9\d) % of won and 1\d % of lost leads \(mostly empty when lost\)"
    assert re.fullmatch(pattern, flags["Call notes"].reason)
    assert list(flags) == ["Call notes"]  # flagged once, though its AUC stands out too
