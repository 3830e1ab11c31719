"""The replay's references: logistic regression and gradient boosting trained on exactly the
rows labelled so far, scored on the held-out rows.

The pipelines are ``bench_learn``'s (the offline learn bench's) and Brier / reliability are
``bench_discover``'s, so the three benches compare against the same references.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from scoring.metrics import roc_auc, top_decile_lift
from tests.bench.bench_discover import brier, reliability
from tests.bench.bench_learn import EXCLUDED, OUTCOME, _sklearn

Row = Mapping[str, str]
KINDS = {"LR": "lr", "GB": "gb"}  # printed name → bench_learn's pipeline


def learn_columns(rows: Sequence[Row]) -> list[str]:
    """``leadbot learn``'s inputs: every column but the outcome, the ids and the leak columns."""
    return [c for c in rows[0] if c and c not in (*EXCLUDED, OUTCOME)]


def outcomes(rows: Sequence[Row]) -> np.ndarray:
    return np.array([float(r[OUTCOME]) for r in rows])


def probabilities(train: Sequence[Row], test: Sequence[Row]) -> dict[str, np.ndarray]:
    """Each reference's held-out probabilities; none when the labels hold one class only
    (neither model can be fitted then)."""
    y = outcomes(train)
    if np.unique(y).size < 2:
        return {}
    columns = learn_columns(train)
    fit, held = [dict(r) for r in train], [dict(r) for r in test]  # bench_learn takes dicts
    return {name: _sklearn(kind)(fit, y, held, columns) for name, kind in KINDS.items()}


def measured(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Held-out ROC AUC, lift in the top decile and Brier score of ``p``."""
    return {"auc": roc_auc(y, p), "lift": top_decile_lift(y, p), "brier": brier(y, p)}


def deciles(y: np.ndarray, p: np.ndarray) -> str:
    """Reliability by decile of ``p``: ``mean predicted/observed`` per tenth of the leads."""
    return " ".join(f"{mean:.2f}/{rate:.2f}" for mean, rate in reliability(y, p))
