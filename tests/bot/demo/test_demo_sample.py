"""The bundled demo stream: deterministic, well-formed Segment calls with a realistic mix."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.demo import PERSONAS, Sample, generate, sample_stream
from scoring import Band, Condition, LeadState, Model, Op, Rule, RuleKind, score
from scoring.model import compile_pattern

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=14)
TYPES = {"identify", "track", "page", "alias"}
EVENTS = {
    "Demo Requested",
    "Trial Started",
    "Webinar Registered",
    "Webinar Attended",
    "Whitepaper Downloaded",
    "Email Link Clicked",
    "Unsubscribed",
    "Email Bounced",
    "Contact Sales Submitted",
}
PATH = re.compile(
    r"^/$|^/(pricing|pricing/enterprise|product|careers)$"
    r"|^/(blog|customers|case-studies|docs)/[a-z0-9-]+$"
)
FREE_MAIL = {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com"}
COMPETITOR_DOMAINS = {"rivalcrm.example", "leadzilla.example"}


@pytest.fixture(scope="module")
def sample() -> Sample:
    return generate()


def at(call: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(call["timestamp"])


def calls_of(sample: Sample, persona: str) -> dict[str, list[dict[str, Any]]]:
    """Each lead of ``persona`` (keyed by its userId, else anonymousId) and its calls."""
    key_of: dict[str, str] = {}
    for lead in sample.leads:
        if lead.persona == persona:
            key = lead.user_id or str(lead.anonymous_id)
            key_of |= {i: key for i in (lead.user_id, lead.anonymous_id) if i is not None}
    out: dict[str, list[dict[str, Any]]] = {key: [] for key in key_of.values()}
    for call in sample.calls:
        found = key_of.get(call.get("userId") or call.get("anonymousId") or "")
        if found is not None:
            out[found].append(call)
    return out


def test_same_arguments_give_the_same_stream(sample: Sample) -> None:
    assert sample_stream(seed=7, start=START, days=14, leads=200) == sample.calls


def test_another_seed_gives_another_stream(sample: Sample) -> None:
    other = sample_stream(seed=8)
    assert other != sample.calls
    ids = {c["userId"] for c in sample.calls if "userId" in c}
    assert ids.isdisjoint(c["userId"] for c in other if "userId" in c)


@pytest.mark.parametrize(
    ("start", "days"),
    [
        (START, 14),
        (datetime(2026, 5, 6, 13, 30, tzinfo=timezone(timedelta(hours=2))), 3),
        (datetime(2026, 1, 3, tzinfo=UTC), 1),
    ],
)
def test_calls_are_sorted_and_inside_the_window(start: datetime, days: int) -> None:
    calls = sample_stream(start=start, days=days, leads=60)
    times = [at(c) for c in calls]
    assert times == sorted(times)
    assert start <= times[0]
    assert times[-1] < start + timedelta(days=days)


def resolved_leads(calls: list[dict[str, Any]]) -> set[str]:
    """Distinct leads, folding an anonymousId into the userId it was identified as."""
    links = {c["anonymousId"]: c["userId"] for c in calls if "anonymousId" in c and "userId" in c}
    links |= {c["previousId"]: c["userId"] for c in calls if c["type"] == "alias"}
    return {c.get("userId") or links.get(c["anonymousId"], c["anonymousId"]) for c in calls}


@pytest.mark.parametrize("leads", [200, 57])
def test_lead_count_is_close_to_the_request(leads: int) -> None:
    found = len(resolved_leads(sample_stream(leads=leads)))
    assert abs(found - leads) <= 0.05 * leads


def test_every_call_is_a_well_formed_segment_call(sample: Sample) -> None:
    ids = [c["messageId"] for c in sample.calls]
    assert len(set(ids)) == len(ids)
    for call in sample.calls:
        assert call["type"] in TYPES, call
        assert call.get("userId") or call.get("anonymousId") or call["traits"]["email"]
        assert call["timestamp"].endswith("Z")
        assert at(call).utcoffset() == timedelta(0)
        if call["type"] == "track":
            assert call["event"] in EVENTS, call
            assert isinstance(call["properties"], dict)
        elif call["type"] == "page":
            assert PATH.match(call["properties"]["path"]), call
            assert call["properties"]["url"].endswith(call["properties"]["path"])
            assert call["name"]
        elif call["type"] == "identify":
            assert isinstance(call["traits"], dict)
            assert call["traits"]
        else:
            assert call["previousId"]
            assert call["userId"]


def test_a_stream_has_a_few_thousand_calls_with_some_aliases(sample: Sample) -> None:
    per_lead = len(sample.calls) / len(sample.leads)
    assert 5 <= per_lead <= 15
    kinds = Counter(c["type"] for c in sample.calls)
    assert kinds["alias"] >= 1
    assert kinds["page"] > kinds["track"] > kinds["alias"]


def test_persona_mix_follows_the_shares(sample: Sample) -> None:
    counts = sample.counts()
    assert sum(counts.values()) == 200
    for persona in PERSONAS:
        assert abs(counts[persona.name] - persona.share * 200) <= 1, persona.name


def test_anonymous_visitors_browse_before_an_identify_with_both_ids(sample: Sample) -> None:
    converters = [lead for lead in sample.leads if lead.persona == "anonymous_converter"]
    assert converters
    for lead in converters:
        mine = [c for c in sample.calls if c.get("anonymousId") == lead.anonymous_id]
        first_identify = next(i for i, c in enumerate(mine) if c["type"] == "identify")
        assert mine[first_identify]["userId"] == lead.user_id
        before = mine[:first_identify]
        assert before
        assert all(c["type"] in {"page", "alias"} for c in before)
        assert all("userId" not in c for c in before if c["type"] == "page")


def test_ideal_buyers_request_a_demo_or_start_a_trial(sample: Sample) -> None:
    buyers = calls_of(sample, "ideal_buyer")
    assert len(buyers) == 16
    for calls in buyers.values():
        events = {c.get("event") for c in calls}
        assert events & {"Demo Requested", "Trial Started"}
        assert "Webinar Attended" in events
        assert (
            sum(c["type"] == "page" and c["properties"]["path"] == "/pricing" for c in calls) >= 2
        )


def test_students_use_free_mail_and_competitors_their_own_domain(sample: Sample) -> None:
    for lead in sample.leads:
        if lead.persona == "student":
            assert str(lead.email).rsplit("@", 1)[1] in FREE_MAIL
        if lead.persona == "competitor":
            assert str(lead.email).rsplit("@", 1)[1] in COMPETITOR_DOMAINS


def test_opted_out_leads_unsubscribe_or_bounce(sample: Sample) -> None:
    for calls in calls_of(sample, "opted_out").values():
        traits = [c["traits"] for c in calls if c["type"] == "identify"]
        assert {"unsubscribed": True} in traits or {"email_status": "bounced"} in traits
        assert {c.get("event") for c in calls} & {"Unsubscribed", "Email Bounced"}


def test_weekdays_are_busier_than_weekends(sample: Sample) -> None:
    per_day = Counter(at(c).date() for c in sample.calls)
    weekday = [n for d, n in per_day.items() if d.weekday() < 5]
    weekend = [n for d, n in per_day.items() if d.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 2 * sum(weekend) / len(weekend)


def test_persona_of_names_the_lead_behind_a_call(sample: Sample) -> None:
    assert all(sample.persona_of(c) is not None for c in sample.calls)
    assert sample.persona_of({"type": "page", "userId": "someone-else"}) is None


def fit(rule_id: str, points: float, path: str, op: Op, value: Any) -> Rule:
    condition = Condition(tuple(path.split(".")), op, value)
    return Rule(rule_id, rule_id, RuleKind.FIT, points, (condition,))


def intent(rule_id: str, points: float, event_type: str, **kwargs: Any) -> Rule:
    return Rule(rule_id, rule_id, RuleKind.INTENT, points, event_type=event_type, **kwargs)


def brief_model() -> Model:
    """The model the brief sizes the ideal buyer against: a VP of Sales at a 350-person
    software company ≈ 50 fit points, pricing 8 each up to 3, demo 30, trial 25, hot at 70.
    Half-lives are on the short side, so a pass here holds for gentler decay too."""
    leaders = ("VP of Sales", "Head of Revenue", "Director of Sales", "Chief Revenue Officer")
    leaders_lower = frozenset(t.lower() for t in (*leaders, "SVP Sales"))
    tech = frozenset({"software", "saas", "internet", "information technology"})
    pricing = Condition(("path",), Op.PATTERN, compile_pattern("^/pricing"))
    return Model(
        rules=(
            fit("leader", 20, "title", Op.ONE_OF, leaders_lower),
            fit("size", 15, "company.employee_count", Op.RANGE, (50, 1001)),
            fit("tech", 15, "company.industry", Op.ONE_OF, tech),
            intent("pricing", 8, "page", conditions=(pricing,), half_life_days=7, cap=3),
            intent("demo", 30, "track", event_name="Demo Requested", half_life_days=10),
            intent("trial", 25, "track", event_name="Trial Started", half_life_days=10),
        )
    )


def final_band(calls: list[dict[str, Any]], model: Model) -> Band:
    state = LeadState()
    for call in calls:
        when = at(call).timestamp()
        if call["type"] == "identify":
            state.identify(call["traits"], model, when)
        elif call["type"] in {"track", "page"}:
            name = call.get("event") or call.get("name")
            state.event(call["type"], name, call["properties"], model, when)
    return score(state, model, END.timestamp()).band


def test_ideal_buyers_end_hot_and_lukewarm_leads_do_not(sample: Sample) -> None:
    model = brief_model()
    for persona in ("ideal_buyer", "good_fit_lukewarm", "researcher", "student"):
        bands = Counter(final_band(calls, model) for calls in calls_of(sample, persona).values())
        if persona == "ideal_buyer":
            assert set(bands) == {Band.HOT}
        else:
            assert Band.HOT not in bands, persona


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="leads"):
        sample_stream(leads=-1)
    with pytest.raises(ValueError, match="start"):
        sample_stream(start=datetime(2026, 3, 2))  # naive on purpose
    with pytest.raises(ValueError, match="days"):
        sample_stream(days=0)
