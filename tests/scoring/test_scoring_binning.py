"""scoring/binning.py: candidate rules from columns, and the features they give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import Op
from scoring.binning import (
    Support,
    bin_weights,
    candidate_rules,
    clean,
    column_rules,
    feature_matrix,
    ladders,
    monotone_cuts,
    quantile_cuts,
    slug,
    steps,
)
from scoring.model import Condition, Rule, RuleKind


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


@pytest.mark.parametrize(
    ("numbers", "alone"),
    [
        ([999.0] * 400 + [float(d) for d in range(27)] * 2, 999.0),  # "never contacted" at the top
        ([0.0] * 300 + [1.0, 2.0, 3.0, 4.0] * 12, 0.0),  # most leads at the least value
        ([float(d) for d in (*range(40), *range(60, 100))] * 2 + [50.0] * 200, 50.0),
    ],
)
def test_a_value_most_rows_share_gets_a_bin_of_its_own(numbers: list[float], alone: float) -> None:
    # Quantiles all land on such a value: without its own edges the bins either cut nothing
    # (at an end) or mix it with its neighbours, whose won rates differ ("previous" 0 or 1).
    cuts = quantile_cuts(np.array(numbers), 5, len(numbers), Support(min_rows=20, floor_rows=20))
    values = np.array(numbers)
    bins = np.digitize(values, cuts)
    (own,) = set(bins[values == alone])
    assert set(values[bins == own]) == {alone}
    assert len(set(bins)) >= 2


@pytest.mark.parametrize(("a", "b"), [(True, 1), (0, False)])
def test_conditions_python_calls_equal_are_tested_apart(a: Any, b: Any) -> None:
    # True == 1 and hash alike: one shared result for both would score a yes/no trait as 1.
    rules = [
        Rule(f"r{v!r}", "r", RuleKind.FIT, 0.0, (Condition(("x",), Op.EQUALS, v),)) for v in (a, b)
    ]
    traits = [{"x": a}]
    expected = [[float(r.conditions[0].matches(traits[0])) for r in rules]]
    assert expected[0][0] != expected[0][1]
    assert feature_matrix(traits, rules).tolist() == expected


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


def _rates(numbers: np.ndarray, y: np.ndarray, cuts: list[float]) -> np.ndarray:
    index = np.searchsorted(cuts, numbers, side="right")
    return np.array([y[index == b].mean() for b in range(len(cuts) + 1) if (index == b).any()])


def test_pav_pools_a_dip_against_the_trend() -> None:
    # Won rates by bin: 0.1, 0.3, 0.2 (a dip), 0.6 — rising overall, so bins 1 and 2 pool.
    numbers = np.repeat([0.5, 1.5, 2.5, 3.5], 100)
    y = np.concatenate([np.arange(100) < k for k in (10, 30, 20, 60)]).astype(float)
    cuts = monotone_cuts(numbers, y, [1.0, 2.0, 3.0])
    assert cuts == [1.0, 3.0]
    assert _rates(numbers, y, cuts).tolist() == [0.1, 0.25, 0.6]


def test_pav_follows_a_falling_trend_and_pools_ties() -> None:
    numbers = np.repeat([0.5, 1.5, 2.5, 3.5], 100)
    # 0.7, 0.4, 0.4 (a tie says nothing: pooled), 0.1 — falling.
    y = np.concatenate([np.arange(100) < k for k in (70, 40, 40, 10)]).astype(float)
    assert monotone_cuts(numbers, y, [1.0, 2.0, 3.0]) == [1.0, 3.0]


def test_pav_keeps_a_monotone_column_whole_and_skips_empty_bins() -> None:
    numbers = np.repeat([0.5, 2.5, 3.5], 100)  # nothing in [1, 2)
    y = np.concatenate([np.arange(100) < k for k in (10, 30, 60)]).astype(float)
    cuts = monotone_cuts(numbers, y, [1.0, 2.0, 3.0])
    assert _rates(numbers, y, cuts).tolist() == [0.1, 0.3, 0.6]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.booleans()), min_size=1, max_size=200),
)
def test_pav_bins_are_strictly_monotone_and_a_subset_of_the_cuts(
    cells: list[tuple[int, bool]],
) -> None:
    numbers = np.array([float(v) for v, _ in cells])
    y = np.array([float(w) for _, w in cells])
    cuts = [float(c) + 0.5 for c in range(9)]
    kept = monotone_cuts(numbers, y, cuts)
    assert set(kept) <= set(cuts)
    diffs = np.diff(_rates(numbers, y, kept))
    assert (diffs > 0).all() or (diffs < 0).all() or diffs.size == 0


def test_ladders_order_each_numeric_columns_bins_from_the_lowest() -> None:
    values = [str(v) for v in range(100)]
    rules = [*column_rules("Visits", values, bins=4), *column_rules("Source", ["a"] * 40)]
    shuffled = [rules[2], rules[4], rules[0], rules[3], rules[1]]
    (ladder,) = ladders(shuffled)
    lows = [shuffled[j].conditions[0].value[0] for j in ladder]
    assert lows[0] is None
    assert lows[1:] == sorted(lows[1:])
    assert len(ladder) == 4  # the category rule is in no ladder


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-1, 3), min_size=1, max_size=30),
    st.lists(st.floats(-5, 5), min_size=5, max_size=5),
)
def test_step_weights_score_every_row_as_their_bin_weights(bins: list[int], w: list[float]) -> None:
    # Columns 0–3 are one column's bins (a row in one of them, or none: -1 = missing);
    # column 4 is another rule, untouched by the ladder.
    X = np.zeros((len(bins), 5))
    for i, b in enumerate(bins):
        if b >= 0:
            X[i, b] = 1.0
    X[::2, 4] = 1.0
    weights = np.array(w)
    ladder = [[0, 1, 2, 3]]
    assert np.allclose(steps(X, ladder) @ weights, X @ bin_weights(weights, ladder))
    assert np.array_equal(steps(X, ladder)[:, 4], X[:, 4])


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.5, float("nan")]),
    st.sampled_from(["a", "A ", "b", "", "1", "2.5", "true"]),
    st.lists(st.integers(0, 2), max_size=2),
)
_CONDITIONS = st.one_of(
    st.builds(lambda v: (Op.EQUALS, v), st.sampled_from(["a", "1", 1, 2.5, True, False])),
    st.builds(lambda v: (Op.ONE_OF, frozenset(v)), st.sets(st.sampled_from(["a", "b", "1"]))),
    st.builds(
        lambda lo, hi: (Op.RANGE, (lo, hi)),
        st.sampled_from([None, -1, 1.0]),
        st.sampled_from([None, 2, 3.0]),
    ),
    st.builds(lambda v: (Op.EXISTS, v), st.booleans()),
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"x": _VALUES, "co": st.one_of(_VALUES, st.fixed_dictionaries({"y": _VALUES}))}
        ),
        min_size=1,
        max_size=12,
    ),
    st.lists(
        st.lists(
            st.tuples(st.sampled_from([("x",), ("co", "y"), ("co",)]), _CONDITIONS),
            min_size=1,
            max_size=2,
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_feature_matrix_is_condition_matches_row_by_row(
    traits: list[dict[str, Any]], specs: list[list[tuple[tuple[str, ...], tuple[Op, Any]]]]
) -> None:
    # The per-distinct-value shortcut must agree with the engine's own test on every row.
    rules = [
        Rule(f"r{j}", "r", RuleKind.FIT, 0.0, tuple(Condition(p, op, v) for p, (op, v) in spec))
        for j, spec in enumerate(specs)
    ]
    expected = [
        [float(all(c.matches(row) for c in rule.conditions)) for rule in rules] for row in traits
    ]
    assert feature_matrix(traits, rules).tolist() == expected
