"""The packaged default model: the rules it promises, and the scores it gives two typical
leads at a fixed ``now``."""

from __future__ import annotations

from typing import Any

import pytest

from config import load_config
from scoring import Band, LeadState, Model, Op, RuleKind, Score, score

NOW = 1_750_000_000.0  # a fixed instant (unix seconds); scoring never reads the clock
DAY = 86_400.0


@pytest.fixture(scope="module")
def model() -> Model:
    return load_config().model


def matches(model: Model, rule_id: str, traits: dict[str, Any]) -> bool:
    state = LeadState()
    state.identify(traits, model, NOW)
    return rule_id in state.fit


@pytest.mark.parametrize(
    ("rule_id", "points"),
    [
        ("role_sales_leader", 15),
        ("role_sales_ops", 10),
        ("company_size_core", 12),
        ("company_size_small", 6),
        ("industry_software", 8),
        ("core_country", 4),
        ("crm_in_stack", 4),
        ("free_mail", -15),
        ("competitor_domain", -50),
        ("student_title", -30),
        ("unsubscribed", -20),
        ("email_bounced", -25),
    ],
)
def test_trait_rules(model: Model, rule_id: str, points: float) -> None:
    rule = model.rule(rule_id)
    assert (rule.kind, rule.points) == (RuleKind.FIT, points)


@pytest.mark.parametrize(
    ("rule_id", "event_type", "name", "points", "half_life", "cap"),
    [
        ("demo_request", "track", "Demo Requested", 30, 14, 1),
        ("trial_started", "track", "Trial Started", 25, 21, 1),
        ("pricing_page", "page", None, 8, 7, 3),
        ("webinar_attended", "track", "Webinar Attended", 12, 21, 2),
        ("webinar_registered", "track", "Webinar Registered", 4, 14, 1),
        ("whitepaper_download", "track", "Whitepaper Downloaded", 8, 14, 2),
        ("email_click", "track", "Email Link Clicked", 4, 7, 3),
        ("case_studies_page", "page", None, 4, 10, 2),
        ("blog_page", "page", None, 1, 7, 5),
        ("unsubscribed_event", "track", "Unsubscribed", -20, None, 1),
        ("email_bounced_event", "track", "Email Bounced", -25, None, 1),
    ],
)
def test_event_rules(
    model: Model,
    rule_id: str,
    event_type: str,
    name: str | None,
    points: float,
    half_life: float | None,
    cap: float,
) -> None:
    rule = model.rule(rule_id)
    assert rule.kind is RuleKind.INTENT
    assert (rule.event_type, rule.event_name, rule.points) == (event_type, name, points)
    assert (rule.half_life_days, rule.cap) == (half_life, cap)


def test_inactivity_rule(model: Model) -> None:
    rule = model.rule("inactive_30d")
    assert (rule.kind, rule.inactive_days, rule.points) == (RuleKind.INACTIVITY, 30, -10)


def test_no_penalty_decays(model: Model) -> None:
    assert all(r.half_life_days is None for r in model.rules if r.points < 0)


@pytest.mark.parametrize(
    ("rule_id", "traits", "expected"),
    [
        ("role_sales_leader", {"title": "Head of Revenue"}, True),
        ("role_sales_leader", {"title": "CRO"}, True),
        ("role_sales_leader", {"title": "Director, Sales & Growth"}, True),
        ("role_sales_leader", {"title": "Sales Development Rep"}, False),
        ("role_sales_leader", {"title": "VP of Sales"}, True),
        ("role_sales_leader", {"title": "SVP Sales"}, True),
        ("role_sales_leader", {"title": "Vice President, Revenue"}, True),
        ("role_sales_leader", {"title": "Chief Revenue Officer"}, True),
        ("role_sales_leader", {"title": "VP Growth"}, False),
        ("role_sales_leader", {"title": "Head of Growth"}, False),
        ("role_sales_leader", {"title": "Director of Marketing"}, False),
        ("role_sales_leader", {"title": "Chief Technology Officer"}, False),
        ("role_sales_leader", {"title": "Microsoft Account Executive"}, False),
        ("role_sales_ops", {"title": "Revenue Operations Manager"}, True),
        ("role_sales_ops", {"title": "RevOps Lead"}, True),
        ("company_size_core", {"company": {"employee_count": 100}}, True),
        ("company_size_core", {"company": {"employee_count": 2000}}, False),
        ("company_size_small", {"company": {"employee_count": 99}}, True),
        ("industry_software", {"company": {"industry": "Computer Software"}}, True),
        ("industry_software", {"company": {"industry": "Retail"}}, False),
        ("core_country", {"address": {"country": "United Kingdom"}}, True),
        ("core_country", {"address": {"country": "GB"}}, True),
        ("core_country", {"address": {"country": "no"}}, True),  # Norway, quoted in YAML
        ("core_country", {"address": {"country": "Brazil"}}, False),
        ("crm_in_stack", {"crm": "HubSpot"}, True),
        ("free_mail", {"email": "x@GMAIL.com"}, True),
        ("competitor_domain", {"email": "spy@rivalcrm.example"}, True),
        ("student_title", {"title": "Sales Intern"}, True),
        ("unsubscribed", {"unsubscribed": True}, True),
        ("unsubscribed", {"unsubscribed": False}, False),
        ("email_bounced", {"email_status": "Bounced"}, True),
    ],
)
def test_trait_rule_matches(
    model: Model, rule_id: str, traits: dict[str, Any], expected: bool
) -> None:
    assert matches(model, rule_id, traits) is expected


def test_webinar_attended_needs_ten_minutes(model: Model) -> None:
    rule = model.rule("webinar_attended")
    (condition,) = rule.conditions
    assert (condition.op, condition.value) == (Op.RANGE, (10.0, None))
    state = LeadState()
    state.event("track", "webinar attended", {"duration_minutes": 4}, model, NOW)
    assert "webinar_attended" not in state.intent
    state.event("track", "Webinar Attended", {"duration_minutes": 45}, model, NOW)
    assert state.intent["webinar_attended"].count == 1


def ideal_lead(model: Model) -> Score:
    state = LeadState()
    traits = {
        "email": "dana@acmesoft.com",
        "title": "VP of Sales",
        "company": {"name": "AcmeSoft", "employee_count": 350, "industry": "Software"},
        "address": {"country": "US"},
        "crm": "Salesforce",
    }
    state.identify(traits, model, NOW - 5 * DAY)
    for days_ago in (4, 2, 1):
        state.event("page", None, {"path": "/pricing"}, model, NOW - days_ago * DAY)
    state.event("track", "Email Link Clicked", {}, model, NOW - 1 * DAY)
    state.event("track", "Demo Requested", {}, model, NOW - 0.5 * DAY)
    return score(state, model, NOW)


def student_lead(model: Model) -> Score:
    state = LeadState()
    traits = {
        "email": "sam.student@gmail.com",
        "title": "Student",
        "company": {"name": "State University", "employee_count": 30000, "industry": "Education"},
    }
    state.identify(traits, model, NOW - 3 * DAY)
    state.event("page", None, {"path": "/blog/what-is-lead-scoring"}, model, NOW - 2 * DAY)
    return score(state, model, NOW)


def test_ideal_profile_is_hot_grade_a(model: Model) -> None:
    result = ideal_lead(model)
    assert result.band is Band.HOT
    assert result.grade == "A"
    assert result.engagement == 4
    assert result.fit == 43  # leader 15 + size 12 + software 8 + country 4 + CRM 4
    assert result.intent == pytest.approx(52.08, abs=0.01)
    assert result.total == pytest.approx(95.08, abs=0.01)
    by_rule = {c.rule: c.points for c in result.contributions}
    assert set(by_rule) == {
        "demo_request",
        "role_sales_leader",
        "pricing_page",
        "company_size_core",
        "industry_software",
        "core_country",
        "crm_in_stack",
        "email_click",
    }
    assert by_rule["pricing_page"] == pytest.approx(
        8 * (2 ** (-4 / 7) + 2 ** (-2 / 7) + 2 ** (-1 / 7)), rel=1e-9
    )
    assert result.contributions[0].rule == "demo_request"  # the largest contribution first


def test_student_is_cold_and_negative(model: Model) -> None:
    result = student_lead(model)
    assert result.band is Band.COLD
    assert result.grade == "D"
    assert result.total < 0
    assert result.fit == -45  # student -30, free mail -15
    by_rule = {c.rule: c.points for c in result.contributions}
    assert set(by_rule) == {"student_title", "free_mail", "blog_page"}
    assert by_rule["blog_page"] == pytest.approx(2 ** (-2 / 7), rel=1e-9)


def test_fit_alone_never_makes_a_lead_hot(model: Model) -> None:
    """Hot means a good fit that is also buying: the best possible profile with no
    activity stays below the hot edge, so an alert always has a 'why now'."""
    best_fit = sum(max(0.0, r.points) for r in model.fit_rules)  # even exclusive ones
    assert model.bands.hot.points is not None
    assert best_fit < model.bands.hot.points
