"""Properties of the state and the score that must hold for any model, lead and history."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scoring_strategies import (
    T0,
    Event,
    Scenario,
    apply,
    assert_scores_close,
    assert_states_close,
    events,
    scenarios,
    state_from,
    times,
)

from scoring import LeadState, Model, Rule, RuleKind, Score, score
from scoring.engine import feature
from scoring.model import DAY

TOLERANCE = 1e-9
offsets = st.floats(0.0, 90 * DAY)
# Fewer examples than the default keeps the scoring suite within seconds; no deadline,
# because a slow CI runner is not a bug.
fast = settings(max_examples=50, deadline=None)


def _matched(event: Event, model: Model) -> list[Rule]:
    return [
        rule
        for rule in model.candidates(event.type, event.name)
        if all(c.matches(event.properties) for c in rule.conditions)
    ]


def _no_older_than_clock(event: Event, state: LeadState) -> Event:
    """The event moved, if needed, to the inactivity clock's start (active_at, or first_seen
    before any activity). An older event moves the clock back, which can rightly make a lead
    inactive; test_scoring_state.py pins that case."""
    clock = state.active_at if state.active_at is not None else state.first_seen
    assert clock is not None
    return Event(event.type, event.name, event.properties, max(event.at, clock))


@fast
@given(scenarios(), times, offsets)
def test_without_new_events_a_score_never_rises(scenario: Scenario, t1: float, wait: float) -> None:
    # Holds because positive intent decays, penalties do not (see scoring_strategies) and
    # inactivity only starts firing as time passes.
    model, messages = scenario
    state = state_from(messages, model)
    earlier = score(state, model, t1)
    later = score(state, model, t1 + wait)
    assert later.total <= earlier.total + TOLERANCE


@fast
@given(scenarios(min_size=1), offsets, st.data())
def test_a_positive_event_never_lowers_the_score(
    scenario: Scenario, wait: float, data: st.DataObject
) -> None:
    model, messages = scenario
    state = state_from(messages, model)
    assume(state.first_seen is not None)
    event = _no_older_than_clock(data.draw(events(model=model)), state)
    assume(all(rule.points > 0 for rule in _matched(event, model)))
    now = event.at + wait
    before = score(state, model, now)
    apply(state, event, model)
    after = score(state, model, now)
    assert after.total >= before.total - TOLERANCE


@fast
@given(scenarios(min_size=1), offsets, st.data())
def test_an_event_matching_nothing_changes_only_inactivity(
    scenario: Scenario, wait: float, data: st.DataObject
) -> None:
    model, messages = scenario
    state = state_from(messages, model)
    assume(state.first_seen is not None)
    event = _no_older_than_clock(data.draw(events()), state)
    assume(not _matched(event, model))
    now = event.at + wait
    before = score(state, model, now)
    apply(state, event, model)
    after = score(state, model, now)
    inactivity = {r.id for r in model.rules if r.kind is RuleKind.INACTIVITY}

    def others(result: Score) -> dict[str, float]:
        return {c.rule: c.points for c in result.contributions if c.rule not in inactivity}

    assert others(after) == others(before)
    assert after.total >= before.total - TOLERANCE  # inactivity can only reset


@fast
@given(scenarios(max_size=25), times)
def test_intent_contributions_respect_their_caps(scenario: Scenario, now: float) -> None:
    model, messages = scenario
    for contribution in score(state_from(messages, model), model, now).contributions:
        rule = model.rule(contribution.rule)
        if rule.kind is not RuleKind.INTENT or rule.cap is None:
            continue
        assert contribution.value <= rule.cap
        assert abs(contribution.points) <= abs(rule.points) * rule.cap + TOLERANCE


@fast
@given(scenarios(), times)
def test_contributions_sum_to_the_score(scenario: Scenario, now: float) -> None:
    model, messages = scenario
    result = score(state_from(messages, model), model, now)
    assert sum(c.points for c in result.contributions) == pytest.approx(result.total, abs=1e-9)
    assert result.total == pytest.approx(result.fit + result.intent, abs=TOLERANCE)
    fit = sum(c.points for c in result.contributions if c.group == "fit")
    assert result.fit == pytest.approx(fit, abs=TOLERANCE)
    assert all(c.points == pytest.approx(c.weight * c.value) for c in result.contributions)
    assert all(c.points != 0.0 for c in result.contributions)


@fast
@given(scenarios(), times)
def test_the_ingest_path_scores_without_explaining_but_the_same(
    scenario: Scenario, now: float
) -> None:
    """explain=False (the ingest path) gives exactly the totals of the explained score, and
    the explanation names every rule that is non-zero, whatever the model holds."""
    model, messages = scenario
    state = state_from(messages, model)
    quick, full = score(state, model, now, explain=False), score(state, model, now)
    assert quick.contributions == ()
    assert (quick.total, quick.fit, quick.intent) == (full.total, full.fit, full.intent)
    assert (quick.band, quick.grade, quick.engagement) == (full.band, full.grade, full.engagement)
    assert quick.probability == full.probability
    nonzero = {r.id for r in model.rules if feature(r, state, now) != 0.0}
    assert {c.rule for c in full.contributions} == nonzero


@fast
@given(scenarios(), st.data(), times)
def test_the_order_of_events_does_not_matter(
    scenario: Scenario, data: st.DataObject, now: float
) -> None:
    model, messages = scenario
    shuffled = data.draw(st.permutations(messages))
    one, other = state_from(messages, model), state_from(shuffled, model)
    assert_states_close(one, other)
    assert_scores_close(score(one, model, now), score(other, model, now))


@fast
@given(scenarios(max_size=16), st.data(), times)
def test_merging_two_states_equals_feeding_one_all_events(
    scenario: Scenario, data: st.DataObject, now: float
) -> None:
    model, messages = scenario
    cut = data.draw(st.integers(0, len(messages)))
    merged, other = state_from(messages[:cut], model), state_from(messages[cut:], model)
    merged.merge(other, model)
    whole = state_from(messages, model)
    assert_states_close(merged, whole)
    assert_scores_close(score(merged, model, now), score(whole, model, now))
    # The merged-in state is left as it was, now and after the merged one changes.
    merged.identify({"company": {"hq": {"country": "xx"}}}, model, now)
    assert_states_close(other, state_from(messages[cut:], model))


@fast
@given(st.floats(0.1, 90.0), st.lists(times, min_size=1, max_size=10))
def test_an_intent_value_halves_after_one_half_life(half_life: float, at: list[float]) -> None:
    rule = Rule(
        "visit", "Visits", RuleKind.INTENT, 5.0, event_type="page", half_life_days=half_life
    )
    model = Model(rules=(rule,))
    state = state_from([Event("page", None, {}, t) for t in at], model)
    as_of = state.intent["visit"].as_of
    now = feature(rule, state, as_of)
    assert feature(rule, state, as_of + half_life * DAY) == pytest.approx(now / 2)
    assert feature(rule, state, as_of + 2 * half_life * DAY) == pytest.approx(now / 4)


@fast
@given(scenarios(), st.floats(0.25, 60.0), st.floats(0.5, 30.0))
def test_a_decaying_score_is_strictly_lower_tomorrow(
    scenario: Scenario, half_life: float, points: float
) -> None:
    model, messages = scenario
    probe = Rule(
        "probe", "Probe", RuleKind.INTENT, points, event_type="track", event_name="probe",
        half_life_days=half_life,
    )  # fmt: skip
    model = Model(rules=(*model.rules, probe))
    state = state_from(messages, model)
    today = max([T0, *(m.at for m in messages)])
    apply(state, Event("track", "Probe", {}, today), model)
    assert score(state, model, today + DAY).total < score(state, model, today).total


@fast
@given(scenarios(), times)
def test_state_round_trips_through_json_and_copies_independently(
    scenario: Scenario, now: float
) -> None:
    model, messages = scenario
    state = state_from(messages, model)
    snapshot = json.loads(json.dumps(state.to_dict()))
    assert LeadState.from_dict(snapshot) == state
    twin = state.copy()
    assert twin == state
    twin.identify({"company": {"hq": {"country": "xx"}}, "title": "changed"}, model, now)
    twin.event("track", "Demo Requested", {"plan": "pro"}, model, now)
    assert json.loads(json.dumps(state.to_dict())) == snapshot
