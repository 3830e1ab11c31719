"""scoring/binning.py: candidate rules from columns, and the features they give."""

from __future__ import annotations

import numpy as np

from scoring import Op
from scoring.binning import (
    Support,
    candidate_rules,
    clean,
    column_rules,
    feature_matrix,
    quantile_cuts,
    slug,
)


def test_placeholders_and_blanks_are_missing() -> None:
    assert [clean(v) for v in ["", "  ", "Select", "NA", "-", None, " Google "]] == [
        None,
        None,
        None,
        None,
        None,
        None,
        "Google",
    ]


def test_categories_are_case_folded_and_rare_ones_pooled() -> None:
    present = ["Google"] * 40 + ["google"] * 20 + ["Direct"] * 35 + ["Bing"] * 3 + ["Yahoo"] * 2
    cells: list[str | None] = [*present, *[None] * 30]
    rules = column_rules("Lead Source", cells, Support(min_rows=30, min_share=0.5))
    by_id = {r.id: r for r in rules}
    assert set(by_id) == {"lead_source_missing", "lead_source_google", "lead_source_direct"}
    assert by_id["lead_source_google"].label == "Lead Source is Google"
    assert by_id["lead_source_missing"].conditions[0].op is Op.EXISTS
    # With a lower bar the five rare rows pool into one rule (Bing 3 + Yahoo 2 < 10 each).
    pooled = column_rules("Lead Source", cells, Support(min_rows=5, min_share=1.0, floor_rows=5))
    other = [r for r in pooled if r.id == "lead_source_other"]
    assert other
    assert other[0].conditions[0].value == frozenset({"bing", "yahoo"})


def test_numeric_columns_get_quantile_bins_that_cover_every_number() -> None:
    rng = np.random.default_rng(3)
    values = rng.exponential(300, size=1000).round()
    rules = column_rules("Time on site", [str(v) for v in values], bins=5)
    assert all(r.conditions[0].op is Op.RANGE for r in rules)
    assert rules[0].conditions[0].value[0] is None
    assert rules[-1].conditions[0].value[1] is None
    assert rules[1].label.startswith("Time on site ")
    assert "–" in rules[1].label
    X = feature_matrix([{"Time on site": v} for v in values], rules)
    assert (X.sum(axis=1) == 1).all()  # each number in exactly one bin
    assert (X.sum(axis=0) >= 30).all()


def test_small_bins_merge_into_their_neighbours() -> None:
    numbers = np.array([0.0] * 80 + [1.0] * 5 + [2.0] * 60)
    cuts = quantile_cuts(numbers, 10, len(numbers), Support(min_rows=30, floor_rows=30))
    sizes = np.histogram(numbers, bins=[-np.inf, *cuts, np.inf])[0]
    assert (sizes >= 30).all()
    assert sizes.sum() == len(numbers)


def test_ids_are_valid_and_unique() -> None:
    columns = {"A b": ["x"] * 40, "a-b": ["x"] * 40, "2nd": ["1", "2"] * 40}
    rules = candidate_rules(columns)
    ids = [r.id for r in rules]
    assert len(set(ids)) == len(ids)
    assert ids[:2] == ["a_b_x", "a_b_x_2"]
    assert slug("2nd  Column!") == "c_2nd_column"


def test_dotted_columns_are_nested_trait_paths() -> None:
    (rule,) = column_rules("company.industry", ["Software"] * 40)
    assert rule.conditions[0].path == ("company", "industry")
    X = feature_matrix([{"company": {"industry": "software"}}, {}], [rule])
    assert X.tolist() == [[1.0], [0.0]]


def test_missing_rule_matches_absent_traits() -> None:
    rules = column_rules("City", ["Paris"] * 40 + [None] * 40)
    X = feature_matrix([{"City": "Paris"}, {}], rules)
    assert [r.id for r in rules] == ["city_missing", "city_paris"]
    assert X.tolist() == [[0.0, 1.0], [1.0, 0.0]]
