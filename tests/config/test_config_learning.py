"""The ``managers`` and ``learning`` sections: defaults, overrides, and errors that name
the line and the field."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config
from config.learning import DEFAULT_LABELS
from scoring.refit import Guardrails

BASE = """model:
  name: t
fit:
  - id: leader
    label: Leader
    points: 10
    when: {title: {pattern: vp}}
"""


def loaded(extra: str) -> object:
    return load_config(text=BASE + extra, name="learning.yaml")


def test_without_the_sections_learning_has_its_documented_defaults() -> None:
    config = load_config(text=BASE, name="t.yaml")
    assert config.managers == ()
    assert dict(config.learning.labels) == dict(DEFAULT_LABELS)
    assert config.learning.retrain_every == 50
    assert config.learning.auto_apply is False
    assert config.learning.guardrails == Guardrails()


def test_every_setting_is_read() -> None:
    config = load_config(
        text=BASE
        + """managers: [U0BOSS, S0LEADS]
learning:
  labels: {qualified: null, won: 1, lost: 0}
  retrain_every: 0
  auto_apply: true
  proposals_channel: "#sales-managers"
  guardrails: {min_labels: 12, max_change_points: 4, prior_strength: 2.5, points_step: 1}
""",
        name="t.yaml",
    )
    learning = config.learning
    assert config.managers == ("U0BOSS", "S0LEADS")
    # qualified no longer teaches anything; disqualified keeps its default.
    assert dict(learning.labels) == {"won": 1.0, "lost": 0.0, "disqualified": 0.0}
    assert (learning.retrain_every, learning.auto_apply) == (0, True)
    assert learning.proposals_channel == "#sales-managers"
    assert learning.guardrails == Guardrails(
        min_labels=12, max_change_points=4.0, prior_strength=2.5, points_step=1.0
    )


@pytest.mark.parametrize(
    ("extra", "line", "field", "words"),
    [
        ("managers: [bob]\n", 8, "managers[0]", "user-group id like S0123ABC, got 'bob'"),
        ("learning:\n  labels: {maybe: 1}\n", 9, "learning.labels.maybe", "'won' or 'lost'"),
        ("learning:\n  labels: {won: 2}\n", 9, "learning.labels.won", "2"),
        (
            "learning:\n  retrain_every: -1\n",
            9,
            "learning.retrain_every",
            "must be at least 0, got -1",
        ),
        (
            "learning:\n  guardrails: {test_fraction: 1.5}\n",
            9,
            "learning.guardrails.test_fraction",
            "less than 1",
        ),
        (
            "learning:\n  guardrails: {min_labels: 0}\n",
            9,
            "learning.guardrails.min_labels",
            "must be at least 1, got 0",
        ),
        ("learning:\n  proposals_channel: Sales\n", 9, "learning.proposals_channel", "a channel"),
        ("learning:\n  auto_aply: true\n", 9, "learning.auto_aply", ""),
        (
            "learning:\n  new_rules:\n    ordinal: [calls, '']\n",
            10,
            "learning.new_rules.ordinal[1]",
            "at least 1 character",
        ),
    ],
)
def test_a_bad_setting_names_its_line_and_field(
    extra: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        loaded(extra)
    [problem] = err.value.problems
    assert (problem.line, problem.field) == (line, field)
    assert words in problem.message


def test_ordinal_traits_reach_the_discovery() -> None:
    config = loaded("learning:\n  new_rules: {ordinal: [campaign, nr.employed]}\n")
    assert config.learning.discovery.ordinal == ("campaign", "nr.employed")  # type: ignore[attr-defined]
