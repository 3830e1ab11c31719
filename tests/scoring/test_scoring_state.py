"""LeadState and IntentState: derived traits, inactivity, counts, merges, copies."""

from __future__ import annotations

import pytest
from scoring_strategies import T0, day

from scoring import Condition, IntentState, LeadState, Model, Op, Rule, RuleKind, score
from scoring.engine import feature
from scoring.model import DAY

FREEMAIL = Rule(
    "freemail",
    "Free e-mail address",
    RuleKind.FIT,
    -15.0,
    (Condition(("email_domain",), Op.ONE_OF, frozenset({"gmail.com"})),),
)
INACTIVE = Rule("inactive", "Inactive 30 days", RuleKind.INACTIVITY, -10.0, inactive_days=30)
VISIT = Rule("visit", "Any page", RuleKind.INTENT, 2.0, event_type="page")
DEMO = Rule(
    "demo", "Demo requested", RuleKind.INTENT, 30.0, event_type="track",
    event_name="Demo Requested", half_life_days=30.0,
)  # fmt: skip
MODEL = Model(rules=(FREEMAIL, INACTIVE, VISIT, DEMO))


# ---------------------------------------------------------------- email_domain


def test_email_domain_is_derived_lowercased_and_matched_by_fit_rules() -> None:
    state = LeadState()
    state.identify({"email": "Ann.Lee@GMail.COM "}, MODEL, T0)
    assert state.traits["email_domain"] == "gmail.com"
    assert state.fit == {"freemail"}


def test_email_domain_follows_a_changed_email() -> None:
    state = LeadState()
    state.identify({"email": "ann@gmail.com"}, MODEL, T0)
    state.identify({"email": "ann@acme.io"}, MODEL, day(1))
    assert state.traits["email_domain"] == "acme.io"
    assert state.fit == frozenset()


def test_email_domain_uses_the_last_at_sign() -> None:
    state = LeadState()
    state.identify({"email": '"a@b"@corp.example'}, MODEL, T0)
    assert state.traits["email_domain"] == "corp.example"


@pytest.mark.parametrize("email", ["not an address", 42, None, ""])
def test_no_email_domain_without_an_address(email: object) -> None:
    state = LeadState()
    state.identify({"email": email}, MODEL, T0)
    assert "email_domain" not in state.traits


# ---------------------------------------------------------------- inactivity


def test_inactivity_fires_exactly_n_days_after_the_last_activity() -> None:
    state = LeadState()
    state.event("page", None, {}, MODEL, day(0))
    state.event("page", None, {}, MODEL, day(5))
    assert feature(INACTIVE, state, day(35) - 1) == 0.0
    assert feature(INACTIVE, state, day(35)) == 1.0
    assert score(state, MODEL, day(35)).total == pytest.approx(2 * 2.0 - 10.0)


def test_before_any_activity_inactivity_counts_from_first_seen() -> None:
    state = LeadState()
    state.identify({"title": "CTO"}, MODEL, day(2))
    state.identify({"title": "CEO"}, MODEL, day(10))  # an identify is not activity
    assert state.active_at is None
    assert feature(INACTIVE, state, day(32) - 1) == 0.0
    assert feature(INACTIVE, state, day(32)) == 1.0


def test_inactivity_needs_a_first_sighting() -> None:
    assert feature(INACTIVE, LeadState(), day(1000)) == 0.0


def test_new_activity_resets_inactivity() -> None:
    state = LeadState()
    state.event("page", None, {}, MODEL, day(0))
    assert feature(INACTIVE, state, day(40)) == 1.0
    state.event("track", "Anything", {}, MODEL, day(39))
    assert feature(INACTIVE, state, day(40)) == 0.0


def test_a_late_event_older_than_first_seen_starts_the_clock_there() -> None:
    # Pinned on purpose: an event that arrives late but happened long ago is the lead's last
    # activity, so the lead is already inactive even though it was identified recently.
    state = LeadState()
    state.identify({"title": "CTO"}, MODEL, day(100))
    assert feature(INACTIVE, state, day(110)) == 0.0
    state.event("page", None, {}, MODEL, day(50))
    assert (state.first_seen, state.active_at) == (day(50), day(50))
    assert feature(INACTIVE, state, day(110)) == 1.0


# ---------------------------------------------------------------- intent counts


def test_intent_contribution_reports_count_and_last_seen() -> None:
    state = LeadState()
    for at in (day(3), day(1), day(2)):  # out of order on purpose
        state.event("page", None, {"path": "/"}, MODEL, at)
    [visit] = [c for c in score(state, MODEL, day(3)).contributions if c.rule == "visit"]
    assert (visit.count, visit.last_seen) == (3, day(3))
    assert (visit.value, visit.weight, visit.points) == (3.0, 2.0, 6.0)
    assert (visit.group, visit.label) == ("intent", "Any page")
    assert visit.to_dict() == {
        "rule": "visit",
        "label": "Any page",
        "group": "intent",
        "points": 6.0,
        "weight": 2.0,
        "value": 3.0,
        "count": 3,
        "last_seen": day(3),
    }


def test_decayed_intent_adds_a_new_event_to_the_decayed_value() -> None:
    state = LeadState()
    state.event("track", "demo requested", {}, MODEL, day(0))
    state.event("track", "DEMO REQUESTED", {}, MODEL, day(30))  # one half-life later
    assert state.intent["demo"] == IntentState(value=1.5, as_of=day(30), count=2)
    assert feature(DEMO, state, day(60)) == pytest.approx(0.75)


def test_fit_contributions_carry_no_count() -> None:
    state = LeadState()
    state.identify({"email": "x@gmail.com"}, MODEL, T0)
    [freemail] = score(state, MODEL, T0).contributions
    assert (freemail.count, freemail.last_seen, freemail.value) == (None, None, 1.0)
    assert "count" not in freemail.to_dict()


def test_event_returns_the_rules_it_matched() -> None:
    state = LeadState()
    assert state.event("track", "Demo Requested", {}, MODEL, T0) == [DEMO]
    assert state.event("track", "Signed Up", {}, MODEL, T0) == []
    assert state.intent.keys() == {"demo"}


def test_reading_before_as_of_does_not_extrapolate() -> None:
    intent = IntentState(value=4.0, as_of=day(10), count=4)
    assert intent.read(day(5), 86_400.0) == 4.0
    assert intent.read(day(11), DAY) == pytest.approx(2.0)
    assert intent.read(day(1000), None) == 4.0


# ---------------------------------------------------------------- merge and copy


def test_merge_keeps_known_traits_and_adds_the_others() -> None:
    lead, visitor = LeadState(), LeadState()
    lead.identify({"email": "ann@acme.io", "company": {"name": "Acme"}}, MODEL, day(5))
    visitor.identify({"email": "ann@gmail.com", "company": {"size": 20}}, MODEL, day(1))
    lead.merge(visitor, MODEL)
    assert lead.traits == {
        "email": "ann@acme.io",
        "email_domain": "acme.io",
        "company": {"name": "Acme", "size": 20},
    }
    assert lead.fit == frozenset()
    assert lead.first_seen == day(1)


def test_merge_treats_unix_time_zero_as_a_time() -> None:
    lead, visitor = LeadState(), LeadState()
    lead.event("page", None, {}, MODEL, 0.0)
    visitor.event("page", None, {}, MODEL, -DAY)
    lead.merge(visitor, MODEL)
    assert lead.active_at == 0.0
    assert lead.first_seen == -DAY


def test_merge_keeps_counts_of_rules_the_model_no_longer_has() -> None:
    lead, visitor = LeadState(), LeadState()
    lead.intent["gone"] = IntentState(2.0, day(1), 2)
    visitor.intent["gone"] = IntentState(1.0, day(9), 1)
    lead.merge(visitor, MODEL)
    assert lead.intent["gone"] == IntentState(3.0, day(9), 3)


def test_a_copy_does_not_share_nested_traits() -> None:
    state = LeadState()
    state.identify({"company": {"size": 20}}, MODEL, T0)
    twin = state.copy()
    twin.identify({"company": {"size": 900}}, MODEL, T0)
    twin.event("page", None, {}, MODEL, T0)
    assert state.traits == {"company": {"size": 20}}
    assert state.intent == {}


def test_a_lead_with_only_events_matches_fit_rules_that_need_no_traits() -> None:
    no_company = Rule(
        "no_company",
        "No company given",
        RuleKind.FIT,
        -5.0,
        (Condition(("company",), Op.EXISTS, False),),
    )
    model = Model(rules=(no_company, VISIT))
    state = LeadState()
    state.event("page", None, {}, model, T0)
    assert score(state, model, T0).fit == -5.0


# ---------------------------------------------------------------- fit of a new lead


def test_a_lead_without_traits_fits_what_the_empty_traits_satisfy() -> None:
    """A first event refits on no traits at all: rules such as ``title exists: false``
    hold, any rule needing a trait does not (the model computes that once)."""
    no_title = Rule("no_title", "No title given", RuleKind.FIT, -5.0,
                    (Condition(("title",), Op.EXISTS, False),))  # fmt: skip
    model = Model(rules=(FREEMAIL, no_title, VISIT))
    state = LeadState()
    state.event("page", None, {"path": "/"}, model, T0)
    assert state.fit == {"no_title"} == model.fit_of_nothing
    state.identify({"title": "CRO", "email": "a@gmail.com"}, model, T0 + 1)
    assert state.fit == {"freemail"}
