"""Loading: the packaged default, fixture files, text sources, and how the result maps onto
``scoring`` types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import ConfigError, LeadbotConfig, check_config, load_config
from config.conditions import ConditionSpec
from config.loader import DEFAULT_PATH
from scoring import Op, RuleKind, Threshold

FIXTURES = Path(__file__).parent / "fixtures"


def test_default_loads_from_the_package() -> None:
    config = load_config()
    assert isinstance(config, LeadbotConfig)
    assert config.source == str(DEFAULT_PATH)
    assert config.model.name == "b2b-saas-default"
    assert config.model.points_per_logodds == 20
    assert config.model.intercept == -4.0
    assert config.model.bands.warm == Threshold(points=40.0)
    assert config.model.bands.hot == Threshold(points=70.0)
    assert config.model.grades == (("A", 35.0), ("B", 22.0), ("C", 10.0))
    assert config.model.engagement == ((4, 40.0), (3, 20.0), (2, 5.0))
    assert check_config(None) == []
    assert check_config(DEFAULT_PATH) == []


def test_default_alerts() -> None:
    alerts = load_config().alerts
    assert (alerts.cooldown_hours, alerts.history_min_delta) == (24, 5)
    assert (alerts.on_rescore, alerts.console) == (False, True)


def test_small_fixture_maps_onto_scoring_types() -> None:
    config = load_config(FIXTURES / "valid_small.yaml")
    model = config.model
    assert config.source.endswith("valid_small.yaml")
    assert model.intercept == -3.5
    assert model.points_per_logodds == 20  # scoring's default when not given
    assert model.bands.warm == Threshold(points=30.0)
    assert model.bands.hot == Threshold(percentile=90.0, min_points=50.0)
    assert config.alerts.cooldown_hours == 12
    assert config.alerts.on_rescore is True
    assert config.alerts.history_min_delta == 5  # default kept

    ceo = model.rule("ceo")
    assert ceo.kind is RuleKind.FIT
    assert ceo.label == "Ceo"  # humanised id
    (condition,) = ceo.conditions
    assert (condition.path, condition.op, condition.value) == (("title",), Op.EQUALS, "CEO")

    big = model.rule("big_company")
    assert big.label == "Big company"
    size, name = big.conditions
    assert size.path == ("company", "employee_count")
    assert (size.op, size.value) == (Op.RANGE, (1000.0, None))
    assert (name.path, name.op, name.value) == (("company", "name"), Op.EXISTS, True)

    demo = model.rule("demo")
    assert (demo.kind, demo.event_type, demo.event_name) == (
        RuleKind.INTENT,
        "track",
        "Demo Requested",
    )
    assert (demo.half_life_days, demo.cap, demo.points) == (14, 1, 30)

    webinar = model.rule("long_webinar")
    (where,) = webinar.conditions
    assert (where.path, where.op, where.value) == (("duration_minutes",), Op.RANGE, (10.0, 600.0))
    assert webinar.half_life_days is None
    assert webinar.cap is None

    pricing = model.rule("pricing")
    assert (pricing.event_type, pricing.event_name) == ("page", None)
    (path,) = pricing.conditions
    assert path.op is Op.PATTERN
    assert path.value.search("/PRICING/teams")  # compiled case-insensitive
    assert not path.value.search("/blog/pricing")


def test_negative_rules_map_to_the_right_kinds() -> None:
    model = load_config(FIXTURES / "valid_small.yaml").model
    free_mail = model.rule("free_mail")
    assert (free_mail.kind, free_mail.points) == (RuleKind.FIT, -15)
    (domain,) = free_mail.conditions
    assert domain.value == frozenset({"gmail.com", "yahoo.com"})  # lower-cased

    unsubscribed = model.rule("unsubscribed_event")
    assert (unsubscribed.kind, unsubscribed.event_type) == (RuleKind.INTENT, "track")
    assert unsubscribed.half_life_days is None  # a penalty never decays
    assert unsubscribed.cap == 1

    inactive = model.rule("inactive_30d")
    assert (inactive.kind, inactive.inactive_days, inactive.points) == (
        RuleKind.INACTIVITY,
        30,
        -10,
    )


def test_rule_order_is_fit_then_intent_then_negative() -> None:
    ids = [rule.id for rule in load_config(FIXTURES / "valid_small.yaml").model.rules]
    assert ids == [
        "ceo",
        "big_company",
        "demo",
        "long_webinar",
        "pricing",
        "free_mail",
        "unsubscribed_event",
        "inactive_30d",
    ]


def test_text_source_uses_the_given_name() -> None:
    config = load_config(text="model: {name: inline}\n", name="inline.yaml")
    assert config.source == "inline.yaml"
    assert config.model.rules == ()
    with pytest.raises(ConfigError) as caught:
        load_config(text="model: {name: inline, intercept: x}\n", name="inline.yaml")
    assert str(caught.value).startswith("inline.yaml:1: model.intercept: ")


def test_text_without_a_name_is_called_text() -> None:
    with pytest.raises(ConfigError, match=r"^<text>:1: model\.name: required, but missing$"):
        load_config(text="model: {}\n")


def test_path_and_text_together_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        load_config(DEFAULT_PATH, text="model: {name: x}")


def test_empty_sections_are_allowed() -> None:
    config = load_config(text="model: {name: x}\nfit:\nintent:\nnegative:\nalerts:\n")
    assert config.model.rules == ()
    assert config.alerts.console is True


def test_condition_operators_are_the_scoring_ops() -> None:
    # The allowed-operator list in messages comes from ConditionSpec's fields.
    assert list(ConditionSpec.model_fields) == [op.value for op in Op]


def test_str_of_error_is_one_line_per_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / "bad_model.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) > 1
    assert all(re.match(r"^.*bad_model\.yaml:\d+: \S+: .+$", line) for line in lines)
