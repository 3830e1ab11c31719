"""Each condition operator, and dotted paths through traits that may be missing."""

from __future__ import annotations

from typing import Any

import pytest

from scoring import Condition, Op
from scoring.model import compile_pattern, lookup


def holds(op: Op, value: Any, found: Any, path: tuple[str, ...] = ("x",)) -> bool:
    """Does ``found``, stored at ``x``, satisfy the condition? ``...`` means x is missing."""
    data = {} if found is ... else {"x": found}
    return Condition(path, op, value).matches(data)


@pytest.mark.parametrize(
    ("found", "expected"),
    [("VP Sales", True), ("  vp sales ", True), ("VP SALES", True), ("VP", False), (5, False)],
)
def test_equals_a_string_ignores_case_and_surrounding_space(found: Any, expected: bool) -> None:
    assert holds(Op.EQUALS, "vp sales", found) is expected
    assert holds(Op.EQUALS, "VP Sales", found) is expected  # the rule's case does not matter


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (100, True),
        (100.0, True),
        ("100", True),
        (" 100.0 ", True),
        ("1e2", True),
        (101, False),
        ("hundred", False),
        (True, False),  # a bool is not the number 1
        ([100], False),
    ],
)
def test_equals_a_number_accepts_numeric_strings(found: Any, expected: bool) -> None:
    assert holds(Op.EQUALS, 100, found) is expected


@pytest.mark.parametrize(
    ("value", "found", "expected"),
    [
        (True, True, True),
        (False, False, True),
        (True, False, False),
        (True, 1, False),
        (False, 0, False),
        (True, "true", False),
        (1, True, False),
    ],
)
def test_equals_a_bool_matches_only_that_bool(value: Any, found: Any, expected: bool) -> None:
    assert holds(Op.EQUALS, value, found) is expected


@pytest.mark.parametrize(
    ("found", "expected"),
    [("SaaS", True), (" fintech ", True), ("retail", False), (42, True), (["saas"], False)],
)
def test_one_of_compares_lowercased_text(found: Any, expected: bool) -> None:
    assert holds(Op.ONE_OF, frozenset({"saas", "fintech", "42"}), found) is expected


@pytest.mark.parametrize(
    ("bounds", "found", "expected"),
    [
        ((50, 500), 50, True),  # low inclusive
        ((50, 500), 499.99, True),
        ((50, 500), 500, False),  # high exclusive
        ((50, 500), 49.99, False),
        ((50, 500), "200", True),
        ((50, 500), "two hundred", False),
        ((50, 500), True, False),
        ((None, 500), -1e9, True),
        ((50, None), 1e12, True),
        ((None, None), 0, True),
        ((None, None), "n/a", False),
    ],
)
def test_range_is_low_inclusive_high_exclusive(
    bounds: tuple[float | None, float | None], found: Any, expected: bool
) -> None:
    assert holds(Op.RANGE, bounds, found) is expected


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ("VP of Sales", True),
        ("vp, marketing", True),
        ("Head of Growth", True),
        ("Senior VP", False),  # anchored at the start
        ("Vpn admin", False),  # whole word
        (7, False),
    ],
)
def test_pattern_is_searched_without_case(found: Any, expected: bool) -> None:
    assert holds(Op.PATTERN, compile_pattern(r"^(vp|head)\b"), found) is expected


def test_pattern_searches_anywhere_unless_anchored() -> None:
    assert holds(Op.PATTERN, compile_pattern("chief"), "Deputy CHIEF of staff")


@pytest.mark.parametrize(
    ("found", "present"),
    [(..., False), (None, False), ("", False), ([], False), ("x", True), (0, True), (False, True)],
)
def test_exists_tells_present_from_missing_or_empty(found: Any, present: bool) -> None:
    assert holds(Op.EXISTS, True, found) is present
    assert holds(Op.EXISTS, False, found) is not present


def test_a_missing_value_fails_every_op_but_exists_false() -> None:
    for op, value in [
        (Op.EQUALS, "x"),
        (Op.EQUALS, 0),
        (Op.ONE_OF, frozenset({"none"})),
        (Op.RANGE, (None, None)),
        (Op.PATTERN, compile_pattern(".*")),
        (Op.EXISTS, True),
    ]:
        assert not holds(op, value, ...), op
    assert holds(Op.EXISTS, False, ...)


TRAITS = {"company": {"size": 250, "hq": {"country": "DE"}, "tags": ["b2b"]}, "title": "CTO"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("title",), "CTO"),
        (("company", "size"), 250),
        (("company", "hq", "country"), "DE"),
        (("company", "hq", "city"), None),  # missing leaf
        (("company", "office", "city"), None),  # missing level
        (("company", "size", "value"), None),  # through a number
        (("company", "tags", "0"), None),  # lists are not indexed
        (("title", "x"), None),  # through a string
        (("nothing",), None),
    ],
)
def test_lookup_follows_dotted_paths_and_gives_none_when_missing(
    path: tuple[str, ...], expected: Any
) -> None:
    assert lookup(TRAITS, path) == expected


def test_conditions_on_missing_levels_do_not_raise() -> None:
    path = ("company", "office", "city")
    assert not Condition(path, Op.EQUALS, "berlin").matches(TRAITS)
    assert Condition(path, Op.EXISTS, False).matches(TRAITS)
    assert Condition(("company", "hq", "country"), Op.EQUALS, "de").matches(TRAITS)


DOTTED = {"nr.employed": 5099.1, "emp.var.rate": {"q": 1.1}, "company": {"hq.city": "Lyon"},
          "a": {"b": 1}, "a.b": 2}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("nr", "employed"), 5099.1),  # a name with dots of its own, as a CSV column has
        (("emp", "var", "rate", "q"), 1.1),  # then nested under it
        (("company", "hq", "city"), "Lyon"),  # dotted below a nested level
        (("a", "b"), 1),  # the nested value first, when both are there
        (("nr", "employed", "x"), None),  # through a number
        (("nr",), None),
        (("nr", "other"), None),
    ],
)
def test_lookup_finds_trait_names_that_contain_dots(path: tuple[str, ...], expected: Any) -> None:
    """An identify sends ``{"nr.employed": 5099.1}`` as one trait; a rule written
    ``nr.employed`` (by hand, by ``learn``, by a retrain) reads it."""
    assert lookup(DOTTED, path) == expected
    assert Condition(("nr", "employed"), Op.RANGE, (5000, None)).matches(DOTTED)
