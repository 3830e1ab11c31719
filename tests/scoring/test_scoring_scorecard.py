"""scoring/scorecard.py: the learned points, written as plain bins and AND rules, score the
training rows exactly as the fit did."""

from __future__ import annotations

import numpy as np

from scoring.binning import candidate_rules, feature_matrix
from scoring.model import Condition, Op, Rule, RuleKind
from scoring.scorecard import Recipe, fit_scorecard_points


def _table(n: int, seed: int) -> tuple[list[dict[str, str]], np.ndarray]:
    """Won when an API lead's last activity was an SMS (an interaction), and with visits."""
    rng = np.random.default_rng(seed)
    origin = rng.choice(["API", "Form", "Import"], size=n)
    activity = rng.choice(["SMS", "Email", "Chat"], size=n)
    visits = rng.integers(0, 30, size=n)
    z = -1.5 + 0.08 * visits + 2.5 * ((origin == "API") & (activity == "SMS"))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)
    rows = [
        {"Origin": str(o), "Activity": str(a), "Visits": str(v)}
        for o, a, v in zip(origin, activity, visits, strict=True)
    ]
    return rows, y


def test_written_rules_score_rows_as_the_fit_did_and_hold_the_planted_pair() -> None:
    rows, y = _table(3000, seed=4)
    rules = candidate_rules({c: [r[c] for r in rows] for c in rows[0]}, bins=8)
    X = feature_matrix(rows, rules)
    card = fit_scorecard_points(rules, X, y, np.zeros(len(rules)), Recipe())
    points = np.array([r.points for r in card.rules])
    assert np.array_equal(feature_matrix(rows, card.rules) @ points, card.totals)
    pairs = [r for r in card.rules if len(r.conditions) == 2]
    assert card.pairs == len(pairs) >= 1
    assert "Origin is API and Activity is SMS" in {r.label for r in pairs} | {
        " and ".join(reversed(r.label.split(" and "))) for r in pairs
    }
    assert all(p != 0 and float(p).is_integer() for p in points)
    # Visits bins are plain disjoint ranges (a number is in one at most), rising overall.
    bins = [r for r in card.rules if r.id.startswith("visits") and len(r.conditions) == 1]
    each = feature_matrix([{"Visits": str(v)} for v in range(30)], bins)
    assert each.sum(axis=1).max() == 1.0
    by_visits = each @ np.array([r.points for r in bins])
    assert by_visits[29] > by_visits[0]


def test_a_pair_rule_never_takes_an_existing_rule_id() -> None:
    rows, y = _table(3000, seed=4)
    rules = candidate_rules({c: [r[c] for r in rows] for c in rows[0]}, bins=8)
    # A candidate already holding the id the planted pair would get.
    squatter = Rule("origin_api_and_activity_sms", "Visits is 3", RuleKind.FIT, 0.0,
                    (Condition(("Visits",), Op.EQUALS, 3),))  # fmt: skip
    rules = (*rules, squatter)
    card = fit_scorecard_points(
        rules, feature_matrix(rows, rules), y, np.zeros(len(rules)), Recipe()
    )
    ids = [r.id for r in card.rules]
    assert len(ids) == len(set(ids))
    assert "origin_api_and_activity_sms_2" in ids


def test_without_a_search_or_a_choice_it_is_one_plain_fit() -> None:
    rows, y = _table(800, seed=5)
    rules = candidate_rules({c: [r[c] for r in rows] for c in rows[0]}, bins=4)
    X = feature_matrix(rows, rules)
    card = fit_scorecard_points(
        rules, X, y, np.zeros(len(rules)), Recipe(precisions=(2.0,), search=None)
    )
    assert card.pairs == 0
    assert card.precision == 2.0
    assert all(len(r.conditions) == 1 for r in card.rules)
