"""Rule discovery on page views and event properties: a signal that only a page count, a
property's value or a yes/no property carries is found, improves held-out AUC, and a
snapshot reads each proposed rule as the engine scores it."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from config.loader import load_config
from config.writer import in_section_order, model_yaml
from scoring.discover import Discovery, discover, rule_columns
from scoring.engine import feature
from scoring.metrics import roc_auc
from scoring.model import DAY, Condition, Model, Op, Rule, RuleKind
from scoring.snapshot import MAX_FLAGS, MAX_NUMBERS, carried_summary, event_flags, lead_snapshot
from scoring.state import LeadState

MODEL = load_config().model
T = 400 * DAY
Call = tuple[str, str, dict[str, Any], float]  # type, name, properties, time


def snapshot(calls: list[Call]) -> dict[str, Any]:
    """What a label stores of these calls (``storage.labels.event_counts`` in memory)."""
    counts: dict[str, list[Any]] = {}
    for kind, name, _, at in calls:
        have = counts.setdefault(f"{kind}:{name}", [0, at, at])
        have[0], have[1], have[2] = have[0] + 1, min(have[1], at), max(have[2], at)
    carried = carried_summary((f"{kind}:{name}", props) for kind, name, props, _ in calls)
    for key, value in counts.items():
        value.extend(carried.get(key, ()))
    return lead_snapshot({"plan": "x"}, counts)


def visitor(rng: random.Random, i: int) -> tuple[list[Call], float, float]:
    """A lead's calls: evenly spaced page views (each with the lead's ``page_views``), one
    "Time on Website" with ``minutes``, and noise; returns (calls, visits, minutes)."""
    base = T - rng.uniform(1, 60) * DAY
    visits = rng.choice([0, 0, 1, 2, 3, 5, 8, 12])
    views = round(rng.uniform(1, 6), 1)
    calls: list[Call] = [
        ("page", "Courses", {"path": "/courses", "page_views": views}, base + k * DAY / 2)
        for k in range(visits)
    ]
    minutes = round(rng.uniform(0, 30), 2)
    calls.append(("track", "Time on Website", {"minutes": minutes}, base + 7 * DAY))
    if rng.random() < 0.5:
        calls.append(("track", "Logged In", {"n": rng.randint(1, 9)}, base + 8 * DAY))
    return calls, float(visits), minutes


def labelled(n: int, seed: int, won_p: Any) -> tuple[list[list[Call]], np.ndarray]:
    rng = random.Random(seed)
    leads, y = [], []
    for i in range(n):
        calls, visits, minutes = visitor(rng, i)
        leads.append(calls)
        y.append(float(rng.random() < won_p(visits, minutes)))
    return leads, np.array(y)


def fit_and_test(won_p: Any, seed: int) -> tuple[list[Any], float, float, list[list[Call]]]:
    """Discover on 800 labels, score 400 held-out leads with the new rules: the rules, the
    held-out AUC of the model as it was and with them, the held-out leads."""
    leads, y = labelled(1200, seed, won_p)
    snaps, at = [snapshot(c) for c in leads], np.full(len(leads), T)
    X = np.zeros((len(leads), len(MODEL.rules)))
    found = discover(MODEL, snaps[:800], X[:800], y[:800], np.ones(800), Discovery(), at=at[:800])
    rules = [f.rule for f in found]
    Z = rule_columns(snaps[800:], list(at[800:]), rules)
    after = roc_auc(y[800:], Z @ np.array([r.points for r in rules]))
    before = roc_auc(y[800:], X[800:] @ np.array([r.points for r in MODEL.rules]))
    return rules, before, after, leads[800:]


def engine_features(model: Model, calls: list[Call]) -> dict[str, float]:
    """Every rule's feature at T after ingesting the calls, as the running bot scores it."""
    state = LeadState()
    for kind, name, props, at in calls:
        state.event(kind, name if kind == "track" else None, props, model, at)
    return {r.id: feature(r, state, T) for r in model.rules}


def assert_scored_as_the_engine(rules: list[Rule], leads: list[list[Call]]) -> None:
    model = Model(rules=tuple(rules))
    Z = rule_columns([snapshot(c) for c in leads], [T] * len(leads), rules)
    for i, calls in enumerate(leads):
        engine = engine_features(model, calls)
        assert [engine[r.id] for r in rules] == pytest.approx(list(Z[i]), abs=1e-9)


def test_a_numeric_property_that_alone_separates_outcomes_gives_a_rule_on_it() -> None:
    rules, before, after, held_out = fit_and_test(lambda v, m: 0.75 if m >= 12 else 0.12, 4)
    on_minutes = [r for r in rules if r.conditions and r.conditions[0].path == ("minutes",)]
    assert on_minutes, [r.label for r in rules]
    first = on_minutes[0]
    assert (first.kind, first.event_type, first.event_name) == (
        RuleKind.INTENT, "track", "Time on Website",
    )  # fmt: skip
    assert (first.cap, first.half_life_days, first.conditions[0].op) == (1.0, None, Op.RANGE)
    assert first.label.startswith("Time on Website minutes ")
    assert rules[0] in on_minutes  # the strongest signal first; noise, if any, weighs less
    biggest = max(abs(r.points) for r in on_minutes)
    assert all(abs(r.points) < biggest / 2 for r in rules if r not in on_minutes)
    assert before == 0.5  # the model knows nothing of it
    assert after > 0.75
    assert_scored_as_the_engine(rules, held_out)


def test_page_views_that_separate_outcomes_give_a_page_rule() -> None:
    rules, before, after, held_out = fit_and_test(lambda v, m: 0.7 if v >= 3 else 0.15, 6)
    pages = [r for r in rules if r.event_type == "page" and not r.conditions]
    assert pages, [r.label for r in rules]
    assert all(r.event_name is None and r.points > 0 for r in pages)
    assert any("page" in r.label for r in pages)
    assert not any(r.event_name == "Time on Website" for r in rules)  # noise here
    assert after > before + 0.15
    assert_scored_as_the_engine(rules, held_out)
    # each shape is one the YAML model holds: the written model loads back the same rules
    written = model_yaml(Model(rules=tuple(rules)))
    assert load_config(text=written).model.rules == in_section_order(rules)


def test_a_property_test_below_a_value_and_on_all_pages_reads_as_the_engine() -> None:
    below = Condition(("minutes",), Op.RANGE, (None, 5.0))
    many = Condition(("page_views",), Op.RANGE, (4.0, None))
    rules = [
        Rule("quick", "Time on Website minutes under 5", RuleKind.INTENT, -5.0, (below,),
             "track", "time on website", None, 1.0),
        Rule("deep", "page page_views at least 4", RuleKind.INTENT, 5.0, (many,), "page",
             None, None, 1.0),
        Rule("pages", "page views (up to 5)", RuleKind.INTENT, 2.0, (), "page", None, 7.0, 5.0),
    ]  # fmt: skip
    leads, _ = labelled(300, 9, lambda v, m: 0.5)
    assert_scored_as_the_engine(rules, leads)


def test_a_snapshot_keeps_few_numbers_per_name_and_only_numbers() -> None:
    props = {f"p{k}": k for k in range(12)} | {"flag": True, "text": "x", "n": "7.5"}
    calls: list[Call] = [("track", "A", props, T), ("track", "A", {"p0": -3, "p11": 50}, T)]
    numbers = snapshot(calls)["numbers"]["track:A"]
    assert len(numbers) == MAX_NUMBERS
    assert numbers["p0"] == [2, -3.0, 0.0]  # carried most often, then by name
    assert numbers["p11"] == [2, 11.0, 50.0]
    assert numbers["n"] == [1, 7.5, 7.5]  # text that reads as a number, as a range reads it
    assert not {"flag", "text"} & set(numbers)  # a yes/no or a word is no number
    assert snapshot([("track", "B", {"flag": True}, T)])["numbers"] == {}


def test_a_snapshot_counts_each_yes_no_property_apart_from_the_numbers() -> None:
    props = {f"f{k}": k % 2 == 0 for k in range(12)} | {"n": 3, "word": "true"}
    calls: list[Call] = [("track", "A", props, T), ("track", "a", {"f0": False, "f11": True}, T)]
    snap = snapshot(calls)
    assert snap["numbers"] == {"track:A": {"n": [1, 3.0, 3.0]}}  # no flag among numbers
    flags = snap["flags"]["track:A"]
    assert set(flags) == {"f0", "f1", "f10", "f11", "f2", "f3", "f4", "f5"}  # by name on a tie
    assert len(flags) == MAX_FLAGS
    assert flags["f0"] == [1, 0]  # times true, times false
    assert flags["f1"] == [0, 1]
    assert "word" not in flags  # text is no yes/no
    assert snap["flags"]["track:a"] == {"f0": [0, 1], "f11": [1, 0]}
    assert event_flags(snap, "track", "A")["f0"] == [1, 1]  # names that differ by case merged
    assert snapshot([("track", "B", {"n": 1}, T)])["flags"] == {}


def opener(rng: random.Random) -> tuple[list[Call], bool]:
    """A lead who opened 1–4 e-mails, one of them marked ``notable`` (the campaign that
    counts) for some; every lead opens, so a plain "did Email Opened" says nothing."""
    notable = rng.random() < 0.4
    calls: list[Call] = [
        ("track", "Email Opened", {"notable": notable and k == 0}, T - (k + 1) * DAY)
        for k in range(rng.randint(1, 4))
    ]
    return calls, notable


def _notable_labels(n: int) -> tuple[list[list[Call]], list[dict[str, Any]], np.ndarray]:
    rng = random.Random(5)
    leads, y = [], []
    for _ in range(n):
        calls, notable = opener(rng)
        leads.append(calls)
        y.append(float(rng.random() < (0.6 if notable else 0.15)))
    return leads, [snapshot(c) for c in leads], np.array(y)


def _notable_rules(snaps: list[dict[str, Any]], y: np.ndarray) -> list[Rule]:
    X, at = np.zeros((len(snaps), len(MODEL.rules))), np.full(len(snaps), T)
    found = discover(MODEL, snaps, X, y, np.ones(len(snaps)), Discovery(), at=at)
    return [
        f.rule for f in found if f.rule.conditions and f.rule.conditions[0].path == ("notable",)
    ]


def test_a_yes_no_property_that_separates_outcomes_gives_a_rule_on_it() -> None:
    leads, snaps, y = _notable_labels(3_000)
    train = 2_000  # flags are tried from 2,000 labels
    rules = _notable_rules(snaps[:train], y[:train])
    assert rules
    first = rules[0]
    assert (first.event_name, first.cap, first.half_life_days) == ("Email Opened", 1.0, None)
    assert first.conditions[0].op is Op.EQUALS
    assert first.label == f"Email Opened with notable {str(first.conditions[0].value).lower()}"
    assert (first.points > 0) is first.conditions[0].value
    Z = rule_columns(snaps[train:], [T] * (len(snaps) - train), rules)
    assert roc_auc(y[train:], Z @ np.array([r.points for r in rules])) > 0.7
    assert_scored_as_the_engine(rules, leads[train:])
    written = model_yaml(Model(rules=tuple(rules)))
    assert load_config(text=written).model.rules == in_section_order(rules)


def test_yes_no_properties_are_not_tried_below_two_thousand_labels() -> None:
    """Where labels are few a flag is one more chance for noise (see ``flag_candidates``)."""
    _, snaps, y = _notable_labels(1_999)
    assert _notable_rules(snaps, y) == []


def test_an_event_that_counts_only_for_some_leads_gives_a_rule_with_lead_conditions() -> None:
    """A text message converts API leads only (a counsellor has their number); the rule
    found counts the event for those leads alone, and a snapshot reads it as the engine,
    whichever came first, the traits or the events."""
    rng = random.Random(3)
    leads, y = [], []
    for _ in range(1_500):
        origin = rng.choice(["API", "Landing Page", "Form"])
        texted = rng.random() < 0.5
        calls: list[Call] = [("track", "SMS Sent", {}, T - DAY)] if texted else []
        leads.append(({"lead_origin": origin}, calls))
        y.append(float(rng.random() < (0.7 if origin == "API" and texted else 0.2)))
    snaps = [lead_snapshot(traits, {f"track:{n}": [1, at, at] for _, n, _, at in calls})
             for traits, calls in leads]  # fmt: skip
    X = np.zeros((len(leads), len(MODEL.rules)))
    found = discover(MODEL, snaps, X, np.array(y), np.ones(len(leads)), Discovery(),
                     at=np.full(len(leads), T))  # fmt: skip
    gated = [f.rule for f in found if f.rule.lead]
    assert gated, [f.rule.label for f in found]
    rule = gated[0]
    assert (rule.kind, rule.event_name, rule.points > 0) == (RuleKind.INTENT, "SMS Sent", True)
    assert rule.lead == (Condition(("lead_origin",), Op.EQUALS, "API"),)
    assert rule.label.endswith(", when lead_origin is API")
    model = Model(rules=tuple(f.rule for f in found))
    Z = rule_columns(snaps, [T] * len(snaps), list(model.rules))
    for i, (traits, calls) in enumerate(leads[:200]):
        first, last = LeadState(), LeadState()  # traits before the events, and after
        first.identify(traits, model, T - 2 * DAY)
        for state in (first, last):
            for kind, name, props, at in calls:
                state.event(kind, name, props, model, at)
        last.identify(traits, model, T)
        for state in (first, last):
            assert [feature(r, state, T) for r in model.rules] == pytest.approx(list(Z[i]))
    loaded = load_config(text=model_yaml(model)).model  # fit rules first, then the rest
    assert {r.id: r for r in loaded.rules} == {r.id: r for r in model.rules}
