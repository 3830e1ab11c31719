"""Rule discovery: candidates from snapshots, forward selection on held-out folds, guardrails."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from config.loader import load_config
from config.writer import model_yaml
from scoring.binning import Support
from scoring.discover import (
    Discovery,
    _held_out_gain,
    budget,
    candidates,
    discover,
    reason_rules,
    rule_columns,
    unflatten,
)
from scoring.engine import feature, totals
from scoring.learn import sigmoid
from scoring.model import DAY, Model, Rule, RuleKind
from scoring.snapshot import decayed_count
from scoring.state import LeadState

MODEL = load_config().model
SOURCES = ["Reference", "Google", "Olark Chat", "Direct"]


def leads(n: int, seed: int, signal: float = 0.5) -> tuple[list[dict], np.ndarray]:
    """Reference leads convert far more; long visits somewhat more; the rest is noise."""
    rng = random.Random(seed)
    snaps, y = [], []
    for i in range(n):
        source, spent = rng.choice(SOURCES), rng.uniform(0, 3000)
        p = 0.15 + signal * (source == "Reference") + signal / 2 * (spent > 1500)
        traits = {"Lead Source": source, "Time Spent": round(spent), "id": f"x{i}",
                  "newsletter": rng.random() < 0.4, "colour": rng.choice("rgb")}  # fmt: skip
        snaps.append({"traits": traits, "events": {}})
        y.append(float(rng.random() < p))
    return snaps, np.array(y)


def test_it_finds_the_signals_and_labels_them_from_the_data() -> None:
    snaps, y = leads(600, seed=3)
    found = discover(MODEL, snaps, np.zeros((600, len(MODEL.rules))), y, np.ones(600), Discovery())
    labels = [f.rule.label for f in found]
    assert labels[0] == "Lead Source is Reference"
    assert found[0].rule.points > 0
    assert any(label.startswith("Time Spent") for label in labels)
    assert not any("colour" in label or label.startswith("id") for label in labels)
    top = found[0]
    matched = [s["traits"]["Lead Source"] == "Reference" for s in snaps]
    assert top.support == sum(matched)
    assert top.won_rate == float(np.mean(y[matched]))


def test_a_rule_the_model_has_already_is_no_news() -> None:
    snaps, y = leads(600, seed=3)
    known = np.array([[float(s["traits"]["Lead Source"] == "Reference")] for s in snaps])
    X = np.hstack([known, np.zeros((600, len(MODEL.rules) - 1))])
    found = discover(MODEL, snaps, X, y, np.ones(600), Discovery())
    assert "Lead Source is Reference" not in [f.rule.label for f in found]


def test_labels_of_weight_zero_are_not_used() -> None:
    snaps, y = leads(600, seed=3)
    w = np.zeros(600)
    w[:15] = 1  # fewer than twice min_support used: nothing is proposed
    assert discover(MODEL, snaps, np.zeros((600, len(MODEL.rules))), y, w, Discovery()) == []


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(10, 80), st.sampled_from([0.0, 0.5]))
def test_guardrails_hold_on_any_data(seed: int, most: int, support: int, signal: float) -> None:
    snaps, y = leads(300, seed=seed, signal=signal)
    guard = Discovery(max_rules=most, min_support=support)
    found = discover(MODEL, snaps, np.zeros((300, len(MODEL.rules))), y, np.ones(300), guard)
    assert len(found) <= most
    for f in found:  # each matches, and misses, at least ``support`` labels
        if f.rule.scale is None:
            assert support <= f.support <= 300 - support
        else:  # a scale: read above 0 for as many, and below its top for as many
            read = [f.rule.scale.read(unflatten(s["traits"])) for s in snaps]
            assert f.support == sum(r > 0 for r in read) >= support
            assert sum(r < 1 for r in read) >= support
    assert all(f.rule.points != 0 and f.rule.id not in {r.id for r in MODEL.rules} for f in found)
    assert len({f.rule.id for f in found}) == len(found)


def test_candidates_are_equals_range_and_yes_no_rules_that_match_the_nested_traits() -> None:
    snaps, _ = leads(200, seed=1)
    rules = candidates(snaps, Support(min_rows=20, min_share=1.0, floor_rows=20), bins=4)
    labels = {r.label for r in rules}
    assert {"Lead Source is Reference", "newsletter is true", "newsletter is false"} <= labels
    assert any(r.label.startswith("Time Spent under") for r in rules)
    assert not any(r.label.startswith("id") for r in rules)  # id-like: no rule
    nested = unflatten({"company.industry": "Retail", "company.size": 3, "plan": "pro"})
    assert nested == {"company": {"industry": "Retail", "size": 3}, "plan": "pro"}


def test_it_chooses_on_the_newest_max_rows_labels() -> None:
    snaps, y = leads(600, seed=3)
    X = np.zeros((600, len(MODEL.rules)))
    newest = discover(MODEL, snaps[-300:], X[-300:], y[-300:], np.ones(300), Discovery())
    capped = discover(MODEL, snaps, X, y, np.ones(600), Discovery(max_rows=300))
    assert [f.rule for f in capped] == [f.rule for f in newest]


def calculator_leads(n: int, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Leads who used the calculator in the last fortnight convert; an old use says
    little (a fast-fading signal); labels at T."""
    rng, T = random.Random(seed), 1_000 * DAY
    snaps, y = [], []
    for _ in range(n):
        events: dict[str, list[float]] = {}
        p = 0.15
        if rng.random() < 0.5:
            last = T - rng.uniform(0, 90) * DAY
            count = rng.randint(1, 3)
            events["track:Calculator Used"] = [count, last - (count - 1) * DAY, last]
            p = 0.85 if T - last < 14 * DAY else 0.2
        if rng.random() < 0.5:
            events["track:Logged In"] = [rng.randint(1, 9), T - 60 * DAY, T - DAY]
        snaps.append({"traits": {}, "events": events})
        y.append(float(rng.random() < p))
    return snaps, np.array(y), np.full(n, T)


def test_it_proposes_an_intent_rule_with_the_half_life_the_held_out_folds_prefer() -> None:
    snaps, y, at = calculator_leads(800, seed=2)
    X = np.zeros((800, len(MODEL.rules)))
    found = discover(MODEL, snaps, X, y, np.ones(800), Discovery(), at=at)
    used = [f.rule for f in found if f.rule.event_name == "Calculator Used"]
    assert len(used) == 1  # one half-life and cap per event name
    rule = used[0]
    assert (rule.kind, rule.event_type, rule.conditions) == (RuleKind.INTENT, "track", ())
    assert rule.half_life_days == 7.0
    assert rule.points > 0
    assert rule.label.startswith("did Calculator Used")
    assert not any(f.rule.event_name == "Logged In" for f in found)  # noise: nothing
    # the same model without `at` (no times to decay by) proposes no intent rule
    timeless = discover(MODEL, snaps, X, y, np.ones(800), Discovery())
    assert not any(f.rule.kind is RuleKind.INTENT for f in timeless)


def test_event_names_the_model_counts_are_not_proposed_again() -> None:
    snaps, y, at = calculator_leads(400, seed=2)
    rename = {"track:Calculator Used": "track:Demo Requested"}
    renamed = [
        {"traits": {}, "events": {rename.get(k, k): v for k, v in s["events"].items()}}
        for s in snaps
    ]
    X = np.zeros((400, len(MODEL.rules)))
    found = discover(MODEL, renamed, X, y, np.ones(400), Discovery(), at=at)
    assert not any(f.rule.event_name == "Demo Requested" for f in found)  # the model has it


def test_a_decayed_count_from_a_snapshot_is_the_engines_for_one_or_two_events() -> None:
    h = 7 * DAY
    first, last, now = 0.0, 3 * DAY, 10 * DAY
    state = LeadState()
    rule = Rule("r", "r", RuleKind.INTENT, 1.0, (), "track", "X", 7.0, None)
    model = Model(rules=(rule,))
    for t in (first, last):
        state.event("track", "X", {}, model, t)
    assert decayed_count([2, first, last], now, h, None) == pytest.approx(feature(rule, state, now))
    assert decayed_count([1, last, last], now, h, 0.5) == 0.5
    assert decayed_count([4, first, last], now, None, 3.0) == 3.0
    assert decayed_count([0, 0.0, 0.0], now, h, None) == 0.0


def spam_leads(n: int, seed: int) -> tuple[list[dict], np.ndarray, list[str | None]]:
    """Gmail leads are often disqualified as spam; the rest win or lose by their source."""
    rng = random.Random(seed)
    snaps, y, reasons = [], [], []
    for _ in range(n):
        domain = rng.choice(["gmail.com", "acme.com", "beta.io", "corp.net", "delta.org"])
        source = rng.choice(SOURCES)
        reason = None
        if rng.random() < (0.5 if domain == "gmail.com" else 0.03):
            won, reason = 0.0, "spam"
        else:
            won = float(rng.random() < (0.6 if source == "Reference" else 0.3))
            if not won and rng.random() < 0.3:
                reason = "no budget"
        snaps.append({"traits": {"email_domain": domain, "Lead Source": source}, "events": {}})
        y.append(won)
        reasons.append(reason)
    return snaps, np.array(y), reasons


def test_a_disqualify_reason_trains_a_negative_rule_of_its_own() -> None:
    snaps, y, reasons = spam_leads(800, seed=4)
    X = np.zeros((800, len(MODEL.rules)))
    guard = Discovery(reasons=("spam",))
    found = reason_rules(MODEL, snaps, X, y, np.ones(800), reasons, guard)
    assert [f.rule.label for f in found][:1] == ["spam signal: email_domain is gmail.com"]
    spam = found[0]
    assert spam.rule.points < 0
    assert spam.rule.id == "spam_email_domain_gmail_com"
    assert spam.support == sum(s["traits"]["email_domain"] == "gmail.com" for s in snaps)
    assert all(f.rule.points < 0 for f in found)
    # no reason configured, or too few labels of it: nothing of its own
    assert reason_rules(MODEL, snaps, X, y, np.ones(800), reasons, Discovery()) == []
    few = [r if i < 60 else None for i, r in enumerate(reasons)]
    assert sum(r == "spam" for r in few) < 10
    assert reason_rules(MODEL, snaps, X, y, np.ones(800), few, guard) == []


def test_a_numeric_sign_of_a_reason_is_a_step_of_its_own_not_a_scale() -> None:
    """Bots fill the form fast: the shorter, the likelier spam. A reason's rule is a sign
    of it a rep can read ("form seconds under 25"), never a line across the whole range."""
    rng = random.Random(0)
    snaps, y, reasons = [], [], []
    for _ in range(800):
        domain, seconds = rng.choice(["gmail.com", "acme.com", "beta.io"]), rng.uniform(1, 120)
        spam = rng.random() < 0.1 + 0.5 * (domain == "gmail.com") + 0.4 * (1 - seconds / 120)
        snaps.append({"traits": {"email_domain": domain, "form seconds": round(seconds, 1)},
                      "events": {}})  # fmt: skip
        y.append(0.0 if spam else float(rng.random() < 0.4))
        reasons.append("spam" if spam else None)
    X = np.zeros((800, len(MODEL.rules)))
    found = reason_rules(MODEL, snaps, X, np.array(y), np.ones(800), reasons,
                         Discovery(reasons=("spam",)))  # fmt: skip
    labels = [f.rule.label for f in found]
    assert "spam signal: email_domain is gmail.com" in labels
    assert any(label.startswith("spam signal: form seconds under") for label in labels)
    assert all(f.rule.scale is None and f.rule.points < 0 for f in found)


def test_a_fading_signal_of_loss_is_proposed_without_decay_so_the_version_loads() -> None:
    """A recent cancellation says "lost"; an old one little. A fading penalty would make a
    score rise while the lead does nothing (the model refuses one), so the rule proposed is
    a plain one, and the extended model is a version ``load_config`` takes."""
    snaps, y, at = calculator_leads(800, seed=2)
    y = 1.0 - y  # the calculator's recent use now marks the leads that are lost

    def renamed(events: dict) -> dict:
        return {k.replace("Calculator Used", "Trial Cancelled"): v for k, v in events.items()}

    snaps = [{"traits": {}, "events": renamed(s["events"])} for s in snaps]
    X = np.zeros((800, len(MODEL.rules)))
    found = discover(MODEL, snaps, X, y, np.ones(800), Discovery(min_gain=0.0001), at=at)
    cancelled = [f.rule for f in found if f.rule.event_name == "Trial Cancelled"]
    assert cancelled  # the signal is found…
    assert all(r.points < 0 for r in cancelled)
    assert all(f.rule.half_life_days is None for f in found if f.rule.points < 0)  # no decay
    extended = Model(rules=(*MODEL.rules, *(f.rule for f in found)))
    assert load_config(text=model_yaml(extended)).model.rules == extended.rules


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=30)  # fmt: skip
VALUES = st.one_of(
    NAMES, st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False), st.booleans(),
    st.sampled_from(["", "n/a", "0", "1.5", "Yes", "No", "a, b", "50-100", "'quoted'", "#1"]),
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=4, unique=True), st.lists(VALUES, min_size=2,
       max_size=6), st.integers(0, 10_000))  # fmt: skip
@example(names=["\xa00"], values=["0", "0"], seed=0)  # a no-break space the writer lost
def test_rules_found_in_any_traits_make_a_version_the_model_loads(
    names: list[str], values: list, seed: int
) -> None:
    """Traits of a domain nobody planned for — any names, any values, numbers as text —
    give rules a stored version can hold: the model with them round-trips through the YAML
    a version is (``model_yaml`` → ``load_config``), so ``model activate`` never refuses
    what ``retrain`` proposed."""
    rng = random.Random(seed)
    snaps, y = [], []
    for _ in range(240):
        traits = {name: rng.choice(values) for name in names if rng.random() < 0.9}
        hit = any(v == values[0] for v in traits.values())
        snaps.append({"traits": traits, "events": {}})
        y.append(float(rng.random() < (0.8 if hit else 0.2)))
    X = np.zeros((240, len(MODEL.rules)))
    found = discover(MODEL, snaps, X, np.array(y), np.ones(240), Discovery(min_gain=0.0))
    assert all(len(f.rule.conditions) in (1, 2) or f.rule.scale for f in found)  # a trait, a pair
    extended = Model(rules=(*MODEL.rules, *(f.rule for f in found)))
    loaded = load_config(text=model_yaml(extended)).model  # fit rules first, then the rest
    assert {r.id: r for r in loaded.rules} == {r.id: r for r in extended.rules}


def test_past_max_candidates_the_most_telling_are_kept_not_the_first_by_name() -> None:
    """A wide export: forty noise columns sort before the one that matters; with room for
    twenty candidates, the signal is still among them and is proposed."""
    rng = random.Random(4)
    snaps, y = [], []
    for _ in range(400):
        traits: dict = {f"a{k:02d}": rng.choice("xyz") for k in range(40)}
        traits["zz source"] = rng.choice(SOURCES)
        snaps.append({"traits": traits, "events": {}})
        y.append(float(rng.random() < (0.8 if traits["zz source"] == "Reference" else 0.15)))
    X = np.zeros((400, len(MODEL.rules)))
    found = discover(MODEL, snaps, X, np.array(y), np.ones(400), Discovery(max_candidates=20))
    assert "zz source is Reference" in [f.rule.label for f in found]


def test_a_trait_whose_every_unit_counts_gets_a_staircase_of_at_least_steps() -> None:
    """The longer the call, the likelier the sale: the retrain proposes several "at least"
    steps on it, each adding points, so the score climbs with the trait."""
    rng = random.Random(8)
    snaps, y = [], []
    for _ in range(800):
        minutes = rng.uniform(0, 40)
        snaps.append({"traits": {"call minutes": round(minutes, 1), "colour": rng.choice("rgb")},
                      "events": {}})  # fmt: skip
        y.append(float(rng.random() < 1 / (1 + math.exp(3 - minutes / 6))))
    X = np.zeros((800, len(MODEL.rules)))
    found = discover(MODEL, snaps, X, np.array(y), np.ones(800), Discovery())
    steps = [f.rule for f in found if f.rule.label.startswith("call minutes at least")]
    assert len(steps) >= 2
    assert all(r.points > 0 and r.conditions[0].value[1] is None for r in steps)
    support = Support(min_rows=10, min_share=1.0, floor_rows=10)
    labels = [r.label for r in candidates(snaps, support, 5)]
    assert any(label.startswith("call minutes at least") for label in labels)
    assert not any(label.startswith("colour at least") for label in labels)


def _hump(seed: int) -> tuple[list[dict], np.ndarray]:
    """Calls made: the won rate climbs to 30 calls, then a fluke dip between 60 and 80."""
    rng = random.Random(seed)
    snaps, y = [], []
    for _ in range(900):
        calls = rng.randrange(0, 100)
        rate = 0.15 if calls < 30 else 0.55 if calls < 60 or calls >= 80 else 0.2
        snaps.append({"traits": {"calls": str(calls)}, "events": {}})
        y.append(float(rng.random() < rate))
    return snaps, np.array(y)


def _points_along(found: list, values: range) -> list[float]:
    model = Model(rules=tuple(f.rule for f in found))
    along = []
    for v in values:
        lead = LeadState()
        lead.identify({"calls": str(v)}, model, 0.0)
        along.append(sum(totals(lead, model, 0.0)))
    return along


def test_an_ordinal_traits_new_points_only_rise_or_only_fall() -> None:
    """``ordinal: [calls]``: its rules are "at least" steps on one side of zero, so the
    score never drops as calls grow, whatever dip the labels show; without it the dip is
    learnt (a closed bin, or a step down)."""
    snaps, y = _hump(5)
    X = np.zeros((y.size, len(MODEL.rules)))

    def found(ordinal: tuple[str, ...]) -> list:
        guard = Discovery(min_gain=0.0, ordinal=ordinal)
        return discover(MODEL, snaps, X, y, np.ones(y.size), guard)

    free = _points_along(found(()), range(100))
    assert any(b < a for a, b in itertools.pairwise(free))  # the dip, learnt
    ordinal = found(("calls",))
    assert ordinal
    assert all(f.rule.scale or f.rule.conditions[0].value[1] is None for f in ordinal)  # steps
    along = _points_along(ordinal, range(100))
    rising = all(b >= a for a, b in itertools.pairwise(along))
    falling = all(b <= a for a, b in itertools.pairwise(along))
    assert rising or falling
    assert along[-1] > along[0]  # and it learnt the climb


def paired_leads(n: int, seed: int) -> tuple[list[dict], np.ndarray]:
    """Only Reference leads on the pro plan convert well: neither trait alone says it."""
    rng = random.Random(seed)
    snaps, y = [], []
    for _ in range(n):
        source, plan = rng.choice(SOURCES), rng.choice(["free", "pro"])
        traits = {"Lead Source": source, "plan": plan, "colour": rng.choice("rgb")}
        snaps.append({"traits": traits, "events": {}})
        y.append(float(rng.random() < (0.8 if (source, plan) == ("Reference", "pro") else 0.15)))
    return snaps, np.array(y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_pair_of_traits_is_found_where_only_both_together_convert(seed: int) -> None:
    snaps, y = paired_leads(1_500, seed)
    found = discover(MODEL, snaps, np.zeros((1_500, len(MODEL.rules))), y, np.ones(1_500),
                     Discovery())  # fmt: skip
    pairs = [f for f in found if len(f.rule.conditions) == 2]
    assert [f.rule.label for f in pairs][:1] == ["Lead Source is Reference and plan is pro"]
    both = [s["traits"]["Lead Source"] == "Reference" and s["traits"]["plan"] == "pro"
            for s in snaps]  # fmt: skip
    assert pairs[0].support == sum(both)
    assert pairs[0].rule.points > 0
    assert not any("colour" in f.rule.label for f in found)
    none = discover(MODEL, snaps, np.zeros((1_500, len(MODEL.rules))), y, np.ones(1_500),
                    Discovery(pairs=0))  # fmt: skip
    assert all(len(f.rule.conditions) == 1 for f in none)


@pytest.mark.parametrize("seed", range(6))
def test_no_pair_is_proposed_on_traits_that_say_nothing(seed: int) -> None:
    """Thousands of pairs of noise traits: some fit any labels on the folds they were
    ranked on; the held-out choice of how many to keep leaves them all out."""
    rng = random.Random(seed)
    snaps = [{"traits": {f"t{k}": rng.choice("abcd") for k in range(12)}, "events": {}}
             for _ in range(800)]  # fmt: skip
    y = np.array([float(rng.random() < 0.3) for _ in snaps])
    found = discover(MODEL, snaps, np.zeros((800, len(MODEL.rules))), y, np.ones(800),
                     Discovery())  # fmt: skip
    assert [f.rule.label for f in found if len(f.rule.conditions) > 1] == []


def test_the_rule_budget_grows_with_the_labels_within_the_configured_maximum() -> None:
    default = Discovery()
    assert (budget(default, 500).max_rules, budget(default, 500).pairs) == (25, 10)
    assert (budget(default, 1_999).max_rules, budget(default, 1_999).pairs) == (25, 10)
    assert (budget(default, 2_000).max_rules, budget(default, 2_000).pairs) == (50, 20)
    assert (budget(default, 6_468).max_rules, budget(default, 6_468).pairs) == (50, 20)
    small = Discovery(max_rules=10, pairs=3)  # an admin's maximum is a maximum
    assert (budget(small, 6_468).max_rules, budget(small, 6_468).pairs) == (10, 3)
    assert budget(Discovery(max_rules=0), 9_000).max_rules == 0


def many_signals(n: int, seed: int, traits: int = 36) -> tuple[list[dict], np.ndarray]:
    """``traits`` yes/no traits, each moving the log-odds by ±0.3: more real rules than
    a proposal on few labels may add."""
    rng = random.Random(seed)
    snaps, y = [], []
    for _ in range(n):
        flags = {f"t{k:02d}": rng.random() < 0.5 for k in range(traits)}
        z = -0.5 + sum(0.3 if flags[f"t{k:02d}"] == (k % 2 == 0) else -0.3 for k in range(traits))
        snaps.append({"traits": flags, "events": {}})
        y.append(float(rng.random() < 1 / (1 + math.exp(-z))))
    return snaps, np.array(y)


def test_few_labels_get_the_small_budget_and_many_labels_more_rules() -> None:
    snaps, y = many_signals(3_000, seed=5)
    X = np.zeros((3_000, len(MODEL.rules)))
    guard = Discovery(pairs=0)
    few = discover(MODEL, snaps[:1_500], X[:1_500], y[:1_500], np.ones(1_500), guard)
    many = discover(MODEL, snaps, X, y, np.ones(3_000), guard)
    assert len(few) == 25  # more would pass on these labels; the budget stops at 25
    assert 25 < len(many) <= 50


def _loss(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    q = np.clip(sigmoid(z), 1e-12, 1 - 1e-12)
    return float(-np.sum(w * (y * np.log(q) + (1 - y) * np.log(1 - q))))


def _dense_gain(
    Z: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    guard: Discovery,
    low: np.ndarray,
) -> np.ndarray:
    """The held-out gain as it reads: per column and fold, a damped Newton fit of the one
    weight on the other folds, then the log loss of every held-out row with and without it."""
    fold = np.arange(y.size) % guard.folds
    saved = np.zeros(Z.shape[1])
    for j in range(Z.shape[1]):
        for k in range(guard.folds):
            tr, te = fold != k, fold == k
            b = 0.0
            for _ in range(10):
                p = sigmoid(offset[tr] + Z[tr, j] * b)
                g = np.sum((p - y[tr]) * w[tr] * Z[tr, j]) + guard.penalty * b
                h = np.sum(p * (1 - p) * w[tr] * Z[tr, j]) + guard.penalty
                b = float(np.clip(b - np.clip(g / h, -2.0, 2.0), low[j], 6.0))
            held = (y[te], w[te])
            saved[j] += _loss(offset[te], *held) - _loss(offset[te] + Z[te, j] * b, *held)
    return saved / w.sum()  # fmt: skip


def test_the_held_out_gain_on_nonzero_entries_is_the_gain_on_every_row() -> None:
    rng = np.random.default_rng(4)
    n = 400
    Z = (rng.random((n, 6)) < [0.05, 0.3, 0.5, 0.9, 0.2, 0.0]).astype(float)
    Z[:, 4] *= rng.integers(1, 6, n)  # a count, as an intent rule's
    y = (rng.random(n) < sigmoid(-1 + 1.5 * Z[:, 1] - 0.4 * Z[:, 4])).astype(float)
    w = rng.choice([1.0, 2.0, 0.5], n)
    rate = np.average(y, weights=w)
    offset = math.log(rate / (1 - rate)) + rng.normal(0, 0.3, n)  # near the base rate
    low = np.array([-6.0, -6.0, 0.0, -6.0, 0.0, -6.0])  # a fading rule may only add
    guard = Discovery()
    got = _held_out_gain(Z, offset, y, w, guard, low)
    assert got == pytest.approx(_dense_gain(Z, offset, y, w, guard, low), abs=1e-12)
    assert got[5] == 0.0  # a column that is never 1 saves nothing
    assert int(np.argmax(got)) == 1  # the column the labels were drawn on


def test_a_trait_whose_log_odds_are_a_line_gets_a_scale_with_its_ends_won_rates() -> None:
    """Every minute adds the same log-odds: the retrain proposes points in proportion to
    the minutes, between their 1st and 99th percentiles, and says what the slope rests on
    (few won among the shortest calls, many among the longest)."""
    rng = random.Random(3)
    snaps, y = [], []
    for _ in range(600):
        minutes = rng.uniform(0, 60)
        snaps.append({"traits": {"call minutes": round(minutes, 1)}, "events": {}})
        y.append(float(rng.random() < 1 / (1 + math.exp(2.5 - minutes / 12))))
    found = discover(MODEL, snaps, np.zeros((600, len(MODEL.rules))), np.array(y),
                     np.ones(600), Discovery())  # fmt: skip
    scaled = [f for f in found if f.rule.scale is not None]
    assert [f.rule.label for f in scaled] == ["call minutes, in proportion from 0.8 to 59"]
    (line,) = scaled
    assert line.rule.scale is not None
    assert line.ends is not None
    assert line.rule.scale.path == ("call minutes",)
    assert line.rule.points > 0
    assert found[0] is line  # the strongest signal, first
    low, high = line.ends
    assert line.to_dict()["won_lowest_quarter"] == round(low, 4)
    assert low < 0.25 < 0.6 < high
    columns = rule_columns(snaps, [0.0] * 600, [line.rule])[:, 0]
    assert columns == pytest.approx([line.rule.scale.read(unflatten(s["traits"])) for s in snaps])
