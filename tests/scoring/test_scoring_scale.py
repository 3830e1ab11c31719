"""Scaled fit rules: points in proportion to a numeric trait between two bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scoring_strategies import day

from scoring import Condition, LeadState, Model, Op, Rule, RuleKind, Scale, score
from scoring.engine import feature, totals

DURATION = Scale(("call", "seconds"), 60.0, 660.0)


@pytest.mark.parametrize(
    ("value", "read"),
    [
        (None, 0.0), ("", 0.0), ("long", 0.0), (True, 0.0), (float("nan"), 0.0),
        (-5, 0.0), (60, 0.0), (210, 0.25), ("360", 0.5), (" 510.0 ", 0.75), (660, 1.0),
        (10**9, 1.0),
    ],
)  # fmt: skip
def test_a_scale_reads_a_number_between_its_bounds_and_nothing_else(
    value: object, read: float
) -> None:
    assert DURATION.read({"call": {"seconds": value}}) == pytest.approx(read)


@given(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.floats(-1e3, 1e3), st.floats(0.01, 1e3))
def test_a_scale_never_falls_as_the_number_grows_and_stays_within_0_and_1(
    a: float, b: float, low: float, width: float
) -> None:
    scale = Scale(("n",), low, low + width)
    small, large = scale.read({"n": min(a, b)}), scale.read({"n": max(a, b)})
    assert 0.0 <= small <= large <= 1.0


def _lead(traits: dict, model: Model) -> LeadState:
    state = LeadState()
    state.identify(traits, model, day(0))
    return state


def test_a_scaled_rule_adds_its_share_of_points_to_fit_and_explains_it() -> None:
    scaled = Rule("talk", "call seconds, in proportion", RuleKind.FIT, 40.0, scale=DURATION)
    flat = Rule("vp", "VP", RuleKind.FIT, 15.0, (Condition(("title",), Op.EQUALS, "vp"),))
    model = Model(rules=(flat, scaled))
    state = _lead({"title": "VP", "call": {"seconds": 510}}, model)
    result = score(state, model, day(1))
    assert (result.fit, result.intent) == (pytest.approx(45.0), 0.0)
    talk = next(c for c in result.contributions if c.rule == "talk")
    assert (talk.points, talk.weight, talk.value, talk.group) == (30.0, 40.0, 0.75, "fit")
    assert state.fit == frozenset({"vp"})  # a scale is read off the traits, not kept in the set
    assert [c.rule for c in result.contributions] == ["talk", "vp"]  # largest first
    silent = _lead({"title": "VP"}, model)  # no number: no points, no line
    assert [c.rule for c in score(silent, model, day(1)).contributions] == ["vp"]


def test_a_penalty_in_proportion_lowers_the_score_and_follows_new_traits() -> None:
    calls = Rule("calls", "calls made", RuleKind.FIT, -12.0, scale=Scale(("calls",), 1.0, 9.0))
    model = Model(rules=(calls,))
    state = _lead({"calls": 3}, model)
    assert totals(state, model, day(1)) == (pytest.approx(-3.0), 0.0)
    state.identify({"calls": 11}, model, day(2))
    assert totals(state, model, day(2)) == (pytest.approx(-12.0), 0.0)
    assert feature(calls, state, day(2)) == 1.0


def test_a_fit_set_from_an_older_version_naming_a_scaled_rule_counts_it_once() -> None:
    """A version may reuse an id for a scaled rule: a stored fit set that names it from
    the version before (not yet refitted) gives the scaled points, not those plus the old."""
    old = Model(
        rules=(Rule("size", "size", RuleKind.FIT, 10.0, (Condition(("n",), Op.EXISTS, True),)),)
    )
    new = Model(rules=(Rule("size", "size", RuleKind.FIT, 10.0, scale=Scale(("n",), 0.0, 100.0)),))
    state = _lead({"n": 50}, old)
    assert state.fit == frozenset({"size"})
    result = score(state, new, day(1))
    assert result.fit == pytest.approx(5.0)
    assert [c.points for c in result.contributions] == [pytest.approx(5.0)]
