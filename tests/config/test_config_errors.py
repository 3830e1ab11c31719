"""Every validation problem names the file, the exact line and the field path.

The fixtures are small on purpose: the expected line numbers below can be checked by eye.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, Problem, check_config, load_config

FIXTURES = Path(__file__).parent / "fixtures"


def problems(name: str) -> list[Problem]:
    found = check_config(FIXTURES / name)
    assert found, f"{name} should not load"
    assert {p.file for p in found} == {str(FIXTURES / name)}
    return found


def at(found: list[Problem], field: str) -> Problem:
    matching = [p for p in found if p.field == field]
    assert len(matching) == 1, f"expected one problem at {field}, got {found}"
    return matching[0]


BAD_RULES = [
    # line, field, words the message must contain
    (4, "fit[0].id", ["lower-case letters", "'Bad-Id'"]),
    (5, "fit[0].points", ["expected a number, got 'high'"]),
    (7, "fit[0].when.title.pattern", ["invalid regular expression '(unclosed'", "missing )"]),
    (9, "fit[1].points", ["greater than 0, got -3", "negative:"]),
    (11, "fit[1].when.country.one_of[1]", ["expected a string, got false", "quote"]),
    (12, "fit[1].when.size.range", ["min (5) must be below max (2)"]),
    (13, "fit[1].when.seniority", ["exactly one operator", "got 2: equals, exists"]),
    (14, "fit[1].when.region.range", ["needs min, max or both"]),
    (15, "fit[2].id", ["duplicate rule id 'same'", "fit[1].id, line 8"]),
    (17, "fit[2].when", ["at least one condition"]),
    (18, "fit[2].colour", ["unknown key; allowed keys: id, label, points, when"]),
    (20, "intent[0]", ["exactly one of track, page, got track, page"]),
    (24, "intent[1]", ["exactly one of track, page, got none"]),
    (26, "intent[1].half_life_days", ["greater than 0, got 0"]),
    (27, "intent[1].cap", ["greater than 0, got -1"]),
    (28, "intent[2]", ["where applies to track rules"]),
    (36, "negative[0].half_life_days", ["do not decay", "rise with time"]),
    (38, "negative[1].points", ["below 0, got 5"]),
    (39, "negative[1].inactive_days", ["greater than 0, got 0"]),
    (40, "negative[2]", ["cap applies only to event rules"]),
    (44, "negative[3]", ["lead applies only to event rules", "under when:"]),
    (51, "negative[4].lead.size.range", ["min (5) must be below max (2)"]),
]


def test_bad_rules_reports_exactly_these_problems() -> None:
    found = problems("bad_rules.yaml")
    assert [(p.line, p.field) for p in found] == [(line, field) for line, field, _ in BAD_RULES]


@pytest.mark.parametrize(("line", "field", "words"), BAD_RULES, ids=[f for _, f, _ in BAD_RULES])
def test_bad_rules_problem(line: int, field: str, words: list[str]) -> None:
    problem = at(problems("bad_rules.yaml"), field)
    assert problem.line == line
    for word in words:
        assert word in problem.message


BAD_MODEL = [
    (3, "model.points_per_logodds", ["greater than 0, got 0"]),
    (6, "model.bands.hot", ["hot points (40) must not be below warm (50)"]),
    (7, "model.grades.B", ["above the grade before it (A: 10), got 25"]),
    (10, "model.engagement.3", ["above the level before it (4: 40), got 50"]),
    (12, "model.engagement.5", ["unknown key; allowed keys: 4, 3, 2"]),
    (13, "model.colour", ["allowed keys: name, points_per_logodds, intercept, bands, grades"]),
    (15, "alerts.cooldown_hours", ["at least 0, got -1"]),
    (16, "alerts.on_rescore", ["expected true or false, got 'maybe'"]),
    (17, "chat", ["unknown key; allowed keys: model, fit, intent, negative, alerts, slack"]),
]


def test_bad_model_reports_exactly_these_problems() -> None:
    found = problems("bad_model.yaml")
    assert [(p.line, p.field) for p in found] == [(line, field) for line, field, _ in BAD_MODEL]


@pytest.mark.parametrize(("line", "field", "words"), BAD_MODEL, ids=[f for _, f, _ in BAD_MODEL])
def test_bad_model_problem(line: int, field: str, words: list[str]) -> None:
    problem = at(problems("bad_model.yaml"), field)
    assert problem.line == line
    for word in words:
        assert word in problem.message


def test_percentile_must_be_inside_0_100_and_a_band_must_be_a_number_or_mapping() -> None:
    found = problems("bad_percentile.yaml")
    assert [(p.line, p.field) for p in found] == [
        (4, "model.bands.warm.percentile"),
        (5, "model.bands.hot"),
    ]
    assert found[0].message == "must be less than 100, got 100"
    assert "got 'high'" in found[1].message


def test_yaml_syntax_error_has_the_parser_line() -> None:
    (problem,) = problems("syntax_error.yaml")
    assert problem.line == 6
    assert problem.field == ""
    assert problem.message.startswith("YAML syntax error: ")
    assert "flow sequence" in problem.message


def test_duplicate_yaml_key_is_reported_where_it_repeats() -> None:
    (problem,) = problems("duplicate_key.yaml")
    assert (problem.line, problem.field) == (4, "model.intercept")
    assert "first given at line 3" in problem.message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert caught.value.problems == [Problem(str(missing), None, "", "file not found")]
    assert str(caught.value) == f"{missing}: file not found"


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    (problem,) = check_config(tmp_path)
    assert problem.message == "is a directory, not a file"


def test_str_matches_the_documented_format() -> None:
    text = "model:\n  name: x\nfit:\n  - id: a\n    points: high\n    when: {title: CEO}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(text=text, name="config/default.yaml")
    expected = "config/default.yaml:5: fit[0].points: expected a number, got 'high'"
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("", 1, "model", "required, but missing"),
        ("- a\n- b\n", 1, "", "expected a mapping with keys model, fit, intent, negative, alerts"),
        ("model:\n  name: x\nfit: {}\n", 3, "fit", "expected a list, got a mapping"),
        ("model:\n  name: x\nfit:\n  - just text\n", 4, "fit[0]", "expected a mapping with keys"),
        (
            "model:\n  name: x\nfit:\n  - id: a\n    points: 1\n",
            4,
            "fit[0]",
            "needs exactly one of when, scale, got none",
        ),
        (
            "model:\n  name: x\nfit:\n  - id: a\n    points: 1\n"
            "    scale: {trait: duration, from: 600, to: 60}\n",
            6,
            "fit[0].scale",
            "from (600) must be below to (60)",
        ),
        (
            "model:\n  name: x\nnegative:\n  - id: a\n    points: -1\n"
            "    scale: {trait: duration, from: 1, to: 60, per: 2}\n",
            6,
            "negative[0].scale.per",
            "allowed keys: trait, from, to",
        ),
        (
            "model:\n  name: x\nfit:\n  - id: a\n    points: 1\n    when:\n      title: [a]\n",
            7,
            "fit[0].when.title",
            "{one_of: [a, b]}",
        ),
        (
            "model:\n  name: x\nfit:\n  - id: a\n    points: 1\n    when: {'a..b': 1}\n",
            6,
            "fit[0].when.a..b",
            "dotted names",
        ),
        (
            "model:\n  name: x\n  bands: {warm: 40, hot: {percentile: 90, min_points: 5, x: 1}}\n",
            3,
            "model.bands.hot.x",
            "allowed keys: points, percentile, min_points",
        ),
        (
            "model:\n  name: x\n  bands: {warm: {percentile: 95}, hot: {percentile: 90}}\n",
            3,
            "model.bands.hot",
            "hot percentile (90) must not be below warm (95)",
        ),
        ("model:\n  name: x\n  grades: {A: 40, B: 25}\n", 3, "model.grades.C", "required"),
        (
            "model:\n  name: x\n  points_per_logodds: '20'\n",
            3,
            "model.points_per_logodds",
            "got '20'",
        ),
    ],
)
def test_single_problem(text: str, line: int, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text=text, name="t.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("t.yaml", line, field)
    assert message in problem.message


def test_positive_sections_reject_zero_points() -> None:
    text = "model: {name: x}\nintent:\n  - id: a\n    points: 0\n    track: X\n"
    with pytest.raises(ConfigError) as caught:
        load_config(text=text)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (4, "intent[0].points")


def test_ids_are_unique_across_sections() -> None:
    text = (
        "model: {name: x}\n"
        "fit:\n  - {id: dup, points: 1, when: {a: 1}}\n"
        "negative:\n  - {id: dup, points: -1, inactive_days: 3}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(text=text)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (5, "negative[0].id")
    assert "fit[0].id, line 3" in problem.message


def test_infinite_points_are_refused() -> None:
    text = "model: {name: x}\nfit:\n  - {id: a, points: .inf, when: {t: x}}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(text=text)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (3, "fit[0].points")
    assert problem.message == "expected a finite number, got inf"


def test_a_yaml_boolean_key_gets_a_quoting_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text="model: {name: x}\non: 1\n")
    (problem,) = caught.value.problems
    assert problem.line == 2
    assert "got true" in problem.message
    assert "quote the key" in problem.message
