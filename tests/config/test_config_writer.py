"""config/writer.py: a model written as YAML loads back to an equal model."""

from __future__ import annotations

import pytest

from config import load_config
from config.writer import in_section_order, model_yaml
from scoring import BandSpec, Condition, Model, Op, Rule, RuleKind, Scale, Threshold


def test_default_model_round_trips() -> None:
    model = load_config().model
    text = model_yaml(model)
    assert load_config(text=text).model == model


def test_written_yaml_keeps_the_hand_written_layout() -> None:
    text = model_yaml(load_config().model, header="learned from leads.csv\n2 lines")
    assert text.startswith("# learned from leads.csv\n# 2 lines\nmodel:\n")
    assert "      company.employee_count: {range: {min: 100, max: 2000}}" not in text
    assert "when: {company.employee_count: {range: {min: 100, max: 2000}}}" in text
    assert "  engagement: {4: 40, 3: 20, 2: 5}" in text


def _fit(rule_id: str, points: float, *conditions: Condition) -> Rule:
    return Rule(rule_id, f"{rule_id} label", RuleKind.FIT, points, conditions)


def test_values_yaml_would_misread_are_quoted() -> None:
    """Norway, a numeric-looking string and a path with spaces survive the round trip."""
    rules = (
        _fit("norway", 3, Condition(("Country",), Op.ONE_OF, frozenset({"no", "se"}))),
        _fit("code", 2, Condition(("Zip Code",), Op.EQUALS, "0123")),
        _fit("flag", 2, Condition(("Do Not Email",), Op.EQUALS, True)),
        _fit("count", 1.5, Condition(("visits",), Op.EQUALS, 3)),
        _fit("missing", -4, Condition(("Lead Source",), Op.EXISTS, False)),
        _fit("time", 7, Condition(("Total Time",), Op.RANGE, (None, 12.5))),
    )
    bands = BandSpec(warm=Threshold(points=10), hot=Threshold(percentile=90, min_points=30))
    model = Model(rules=in_section_order(rules), bands=bands, intercept=-0.123456789, name="x")
    assert load_config(text=model_yaml(model)).model == model


def test_section_order_puts_penalties_last() -> None:
    rules = (
        _fit("bad", -3, Condition(("a",), Op.EXISTS, True)),
        _fit("good", 3, Condition(("a",), Op.EXISTS, True)),
    )
    assert [r.id for r in in_section_order(rules)] == ["good", "bad"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (_fit("zero", 0, Condition(("a",), Op.EXISTS, True)), "rule 'zero': points must not be 0"),
        (_fit("bare", 5), "rule 'bare': a fit rule needs at least one condition"),
        (_fit("nan", float("nan"), Condition(("a",), Op.EXISTS, True)), "non-finite"),
    ],
)
def test_unwritable_rules_are_named(rule: Rule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_yaml(Model(rules=(rule,)))


def test_trait_names_that_yaml_would_misread_are_quoted_and_round_trip() -> None:
    """Columns of a customer's data, proposed as rules by a retrain: commas, brackets,
    colons and question marks in a name stay one key of the flow mapping."""
    names = ["Income ($), net", "Age [years]", "Q1: satisfied?", "{x}", "? yes", "nr.employed"]

    def rule(i: int, name: str) -> Rule:
        condition = Condition(tuple(name.split(".")), Op.EQUALS, "x")
        return Rule(f"r{i}", f"{name} is x", RuleKind.FIT, 5.0, (condition,))

    rules = tuple(rule(i, name) for i, name in enumerate(names))
    assert load_config(text=model_yaml(Model(rules=rules))).model.rules == rules


def test_two_conditions_on_one_path_are_refused_not_written_as_one() -> None:
    """A YAML mapping holds one condition a path: writing two would silently keep one."""
    both = (Condition(("age",), Op.RANGE, (18, None)), Condition(("age",), Op.RANGE, (None, 65)))
    with pytest.raises(ValueError, match="two conditions on one path"):
        model_yaml(Model(rules=(Rule("adult", "adult", RuleKind.FIT, 5.0, both),)))


def test_scaled_rules_are_written_as_scale_and_round_trip() -> None:
    """A retrain's "points in proportion" rules, positive under fit and penalties under
    negative, each ``scale: {trait, from, to}``, on odd column names and fractional bounds."""
    rules = (
        Rule("dur", "duration, in proportion", RuleKind.FIT, 42.0,
             scale=Scale(("duration",), 2.0, 1100.0)),
        Rule("emp", "nr.employed", RuleKind.FIT, -22.5, scale=Scale(("nr", "employed"), 4963.6,
             5228.1)),
        Rule("odd", "odd name", RuleKind.FIT, 3.5, scale=Scale(("Income ($), net",), -0.25, 7)),
    )  # fmt: skip
    text = model_yaml(Model(rules=in_section_order(rules)))
    assert "    scale: {trait: duration, from: 2, to: 1100}\n" in text
    assert text.index("id: emp") > text.index("negative:") > text.index("id: odd")
    loaded = load_config(text=text).model
    assert loaded.rules == in_section_order(rules)
    assert [r.id for r in loaded.scaled_rules] == ["dur", "odd", "emp"]
    assert loaded.fit_rules == ()
