"""``rules_to_propose``: a proposal's new rules are chosen on every label, and what it
reports is the check of that choice made on the older labels only, judged on the newest."""

from __future__ import annotations

import random

import numpy as np

from bot.models.discovered import rules_to_propose, with_new_rules
from config.loader import load_config
from scoring.discover import Discovery
from scoring.refit import Guardrails, propose

MODEL = load_config().model
N = 600


def _labels() -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Leads labelled oldest first; a lead source that only started lately (the newest
    quarter of the labels) converts far more: the older labels cannot tell of it."""
    rng = random.Random(6)
    snaps, y = [], []
    for i in range(N):
        late = i >= 0.75 * N
        source = rng.choice(["Webinar partner", "Google"] if late else ["Google", "Direct"])
        snaps.append({"traits": {"lead_source": source}, "events": {}})
        y.append(float(rng.random() < (0.85 if source == "Webinar partner" else 0.2)))
    return snaps, np.array(y), np.arange(N, dtype=float)


def test_rules_are_chosen_on_every_label_and_judged_by_the_older_choice() -> None:
    snaps, y, at = _labels()
    X, w, guard = np.zeros((N, len(MODEL.rules))), np.ones(N), Guardrails()
    found, checked = rules_to_propose(MODEL, X, y, at, w, snaps, Discovery(), guard)
    older = with_new_rules(MODEL, X, y, at, w, snaps, Discovery(), guard)
    labels = {r.rule.label for r in found.rules}
    assert "lead_source is Webinar partner" in labels  # only the newest labels show it
    assert "lead_source is Webinar partner" not in {r.rule.label for r in older.rules}
    # the reported check is the older choice, refitted on the older labels, judged on the
    # newest: the rules chosen with the newest labels never judge themselves
    again = propose(older.model, older.X, y, at, weights=w, guardrails=guard)
    assert checked.metrics_after == again.metrics_after
    assert checked.model.rules == again.model.rules
