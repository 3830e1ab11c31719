"""The line-tracking YAML reader: lines by path, nearest-parent fallback, syntax errors."""

from __future__ import annotations

import pytest

from config import ConfigError
from config.yamlmarks import read_yaml

TEXT = """\
# a comment
model:
  name: x
  engagement: {4: 40, 3: 20}
fit:
  - id: a
    when:
      title: CEO
  -
    id: b
"""


def test_lines_of_keys_and_items() -> None:
    doc = read_yaml(TEXT, "t.yaml")
    assert doc.data["fit"][1] == {"id": "b"}
    lines = doc.marks.lines
    assert lines[()] == 1
    assert lines[("model",)] == 2
    assert lines[("model", "name")] == 3
    assert lines[("fit", 0)] == 6
    assert lines[("fit", 0, "when", "title")] == 8
    assert lines[("fit", 1)] == 10  # an item starts where its content starts
    assert doc.problems == []


def test_integer_keys_are_found_as_int_or_str() -> None:
    marks = read_yaml(TEXT, "t.yaml").marks
    assert marks.line_for(("model", "engagement", 4)) == 4
    assert marks.line_for(("model", "engagement", "3")) == 4
    assert ("model", "engagement", 4) in marks


def test_missing_path_falls_back_to_nearest_parent() -> None:
    marks = read_yaml(TEXT, "t.yaml").marks
    assert marks.line_for(("fit", 0, "points")) == 6
    assert marks.line_for(("fit", 0, "when", "title", "pattern")) == 8
    assert marks.line_for(("nothing", "here")) == 1
    assert ("fit", 0, "points") not in marks


def test_empty_document() -> None:
    doc = read_yaml("# only a comment\n", "t.yaml")
    assert doc.data is None
    assert doc.marks.line_for(("model",)) == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3),
        ("a: 1\n  b: 2\n", 2),
        ("a: 'unterminated\n", 2),
        ("a: 1\n\tb: 2\n", 2),
    ],
)
def test_syntax_errors_carry_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        read_yaml(text, "t.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("t.yaml", line, "")
    assert problem.message.startswith("YAML syntax error: ")


def test_duplicate_keys_are_problems_not_silent_overwrites() -> None:
    doc = read_yaml("a:\n  b: 1\n  c: 2\n  b: 3\n", "t.yaml")
    (problem,) = doc.problems
    assert (problem.line, problem.field) == (4, "a.b")
    assert "first given at line 2" in problem.message


def test_merge_keys_are_not_duplicates_and_point_at_the_anchor() -> None:
    text = "base: &b {points: 1, cap: 2}\nrule:\n  <<: *b\n  id: a\n  cap: 3\n"
    doc = read_yaml(text, "t.yaml")
    assert doc.problems == []
    assert doc.data["rule"] == {"points": 1, "cap": 3, "id": "a"}
    assert doc.marks.line_for(("rule", "points")) == 1  # merged: where the value is written
    assert doc.marks.line_for(("rule", "cap")) == 5  # given explicitly: overrides the merge
