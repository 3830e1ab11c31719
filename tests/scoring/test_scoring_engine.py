"""score(): grade and engagement cut-offs, the rule index, and a hand-written B2B model."""

from __future__ import annotations

from pathlib import Path

import pytest
from scoring_strategies import day

from scoring import Band, Condition, LeadState, Model, Op, Rule, RuleKind, Score, score
from scoring.model import compile_pattern

GOLDEN = Path(__file__).parent / "golden"


def _fit_model(points: float) -> tuple[Model, LeadState]:
    rule = Rule("f", "fit", RuleKind.FIT, points, (Condition(("x",), Op.EXISTS, True),))
    model = Model(rules=(rule,))
    state = LeadState()
    state.identify({"x": 1}, model, day(0))
    return model, state


def _intent_model(points: float) -> tuple[Model, LeadState]:
    rule = Rule("i", "intent", RuleKind.INTENT, points, event_type="page")
    model = Model(rules=(rule,))
    state = LeadState()
    state.event("page", None, {}, model, day(0))
    return model, state


@pytest.mark.parametrize(
    ("fit", "grade"),
    [(100.0, "A"), (40.0, "A"), (39.99, "B"), (25.0, "B"), (10.0, "C"), (9.99, "D"), (-20, "D")],
)
def test_grade_cut_offs_are_least_points(fit: float, grade: str) -> None:
    model, state = _fit_model(fit)
    result = score(state, model, day(0))
    assert (result.fit, result.grade) == (fit, grade)


@pytest.mark.parametrize(
    ("intent", "level"), [(40.0, 4), (39.99, 3), (20.0, 3), (5.0, 2), (4.99, 1), (-10.0, 1)]
)
def test_engagement_cut_offs_are_least_points(intent: float, level: int) -> None:
    model, state = _intent_model(intent)
    result = score(state, model, day(0))
    assert (result.intent, result.engagement) == (intent, level)


def test_an_empty_lead_is_cold_d1() -> None:
    result = score(LeadState(), Model(rules=()), day(0))
    assert (result.total, result.band, result.matrix, result.contributions) == (
        0.0,
        Band.COLD,
        "D1",
        (),
    )


def test_custom_cut_offs_are_used() -> None:
    model, state = _fit_model(12.0)
    custom = Model(rules=model.rules, grades=(("A", 12.0),), engagement=((4, 0.5),))
    assert score(state, custom, day(0)).matrix == "A1"


# ---------------------------------------------------------------- the rule index


def _intent(rule_id: str, event_type: str | None, name: str | None = None) -> Rule:
    return Rule(rule_id, rule_id, RuleKind.INTENT, 1.0, event_type=event_type, event_name=name)


INDEXED = Model(
    rules=(
        _intent("demo", "track", "Demo Requested"),
        _intent("demo2", "track", "demo requested"),
        _intent("any_track", "track"),
        _intent("untyped", None),  # no type: a track rule
        _intent("pricing", "page"),
        Rule("fit", "fit", RuleKind.FIT, 1.0),
        Rule("idle", "idle", RuleKind.INACTIVITY, -1.0, inactive_days=7),
    )
)


def _ids(rules: tuple[Rule, ...]) -> set[str]:
    return {r.id for r in rules}


@pytest.mark.parametrize("name", ["Demo Requested", "DEMO REQUESTED", "demo requested"])
def test_track_candidates_match_names_without_case(name: str) -> None:
    assert _ids(INDEXED.candidates("track", name)) == {"demo", "demo2", "any_track", "untyped"}


def test_other_track_names_reach_only_unnamed_track_rules() -> None:
    assert _ids(INDEXED.candidates("track", "Signed Up")) == {"any_track", "untyped"}
    assert _ids(INDEXED.candidates("track", None)) == {"any_track", "untyped"}


def test_page_candidates_ignore_the_name() -> None:
    assert _ids(INDEXED.candidates("page", None)) == {"pricing"}
    assert _ids(INDEXED.candidates("page", "Demo Requested")) == {"pricing"}


def test_other_event_types_have_no_candidates() -> None:
    assert INDEXED.candidates("identify", None) == ()
    assert INDEXED.candidates("screen", "Demo Requested") == ()


def test_model_rule_lookup_names_the_missing_id() -> None:
    assert INDEXED.rule("pricing").event_type == "page"
    with pytest.raises(KeyError, match="nope"):
        INDEXED.rule("nope")


# ---------------------------------------------------------------- a small B2B model


def _fit(rule_id: str, label: str, points: float, *conditions: Condition) -> Rule:
    return Rule(rule_id, label, RuleKind.FIT, points, conditions)


B2B = Model(
    name="b2b",
    rules=(
        _fit("senior", "Senior title", 20.0, Condition(("title",), Op.PATTERN,
             compile_pattern(r"\b(vp|head|chief|director)\b"))),
        _fit("size", "50-5000 employees", 15.0,
             Condition(("company", "employees"), Op.RANGE, (50, 5000))),
        _fit("industry", "Target industry", 10.0,
             Condition(("company", "industry"), Op.ONE_OF, frozenset({"saas", "fintech"}))),
        _fit("freemail", "Free e-mail", -15.0,
             Condition(("email_domain",), Op.ONE_OF, frozenset({"gmail.com", "yahoo.com"}))),
        _fit("student", "Student", -20.0,
             Condition(("title",), Op.PATTERN, compile_pattern("student"))),
        Rule("pricing", "Pricing page views", RuleKind.INTENT, 10.0,
             (Condition(("path",), Op.PATTERN, compile_pattern("^/pricing")),),
             event_type="page", half_life_days=14.0, cap=3.0),
        Rule("demo", "Demo requested", RuleKind.INTENT, 30.0, event_type="track",
             event_name="Demo Requested", half_life_days=30.0, cap=1.0),
        Rule("docs", "Docs page views", RuleKind.INTENT, 2.0,
             (Condition(("path",), Op.PATTERN, compile_pattern("^/docs")),),
             event_type="page", half_life_days=7.0, cap=5.0),
        Rule("unsubscribed", "Unsubscribed", RuleKind.INTENT, -25.0, event_type="track",
             event_name="Unsubscribed", cap=1.0),
        Rule("inactive", "Inactive 30 days", RuleKind.INACTIVITY, -10.0, inactive_days=30.0),
    ),
)  # fmt: skip


def _ideal() -> LeadState:
    lead = LeadState()
    lead.identify(
        {
            "email": "dana@northwind.io",
            "title": "VP Sales",
            "company": {"employees": 240, "industry": "SaaS"},
        },
        B2B,
        day(0),
    )
    lead.event("page", None, {"path": "/pricing"}, B2B, day(1))
    lead.event("page", None, {"path": "/pricing/enterprise"}, B2B, day(2))
    lead.event("track", "Demo Requested", {"seats": 40}, B2B, day(2))
    return lead


def _student() -> LeadState:
    lead = LeadState()
    lead.identify({"email": "sam@gmail.com", "title": "Student"}, B2B, day(0))
    for n in range(6):
        lead.event("page", None, {"path": f"/docs/page-{n}"}, B2B, day(1) + n * 3600)
    return lead


def test_the_ideal_buyer_outranks_the_student() -> None:
    ideal, student = score(_ideal(), B2B, day(2)), score(_student(), B2B, day(2))
    assert ideal.total > student.total
    assert ideal.probability > student.probability
    assert (ideal.band, ideal.matrix) == (Band.HOT, "A4")
    assert (student.band, student.grade) == (Band.COLD, "D")


def test_a_month_of_silence_cools_the_ideal_buyer() -> None:
    ideal = _ideal()
    today, later = score(ideal, B2B, day(2)), score(ideal, B2B, day(32))
    assert later.total < today.total
    assert "inactive" in {c.rule for c in later.contributions}
    assert later.fit == today.fit


def test_unsubscribing_costs_the_same_however_often_and_whenever() -> None:
    lead = _ideal()
    lead.event("track", "unsubscribed", {}, B2B, day(3))
    lead.event("track", "Unsubscribed", {}, B2B, day(4))
    at_once, a_year_on = score(lead, B2B, day(4)), score(lead, B2B, day(365))
    for result in (at_once, a_year_on):
        [unsub] = [c for c in result.contributions if c.rule == "unsubscribed"]
        assert (unsub.points, unsub.count) == (-25.0, 2)


def test_contributions_are_ordered_by_size() -> None:
    points = [abs(c.points) for c in score(_ideal(), B2B, day(2)).contributions]
    assert points == sorted(points, reverse=True)


def explain(result: Score) -> str:
    """A reader's view of a score: what a rep sees in an alert."""
    lines = [
        f"total {result.total:.2f} = fit {result.fit:.2f} + intent {result.intent:.2f}",
        f"band {result.band} · matrix {result.matrix} · probability {result.probability:.3f}",
    ]
    for c in result.contributions:
        seen = "" if c.count is None else f"  ({c.count}×, value {c.value:.3f})"
        lines.append(f"{c.points:+7.2f}  {c.group:<6}  {c.label}{seen}")
    return "\n".join(lines) + "\n"


def test_the_ideal_buyer_explained() -> None:
    # To update after a deliberate change: print(explain(...)) and paste it into the file.
    expected = (GOLDEN / "b2b_ideal_buyer.txt").read_text(encoding="utf-8")
    assert explain(score(_ideal(), B2B, day(9))) == expected
