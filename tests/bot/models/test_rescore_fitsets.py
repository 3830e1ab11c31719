"""The rescore's remembered fit sets (``FitSets``) equal matching every rule afresh
(``fit_set``), lead after lead, whatever the values: equal-looking values of other types
(1, 1.0, True, "1"), lists, nested objects, missing paths."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models.rescore_points import FitSets, fit_set
from config.loader import load_config
from scoring.model import place

MODEL = load_config().model
PATHS = sorted({".".join(c.path) for r in MODEL.fit_rules for c in r.conditions})
SEEN = [
    str(c.value) if not isinstance(c.value, tuple | frozenset) else next(iter(c.value), "x")
    for r in MODEL.fit_rules for c in r.conditions
]  # fmt: skip

values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=False, width=32),
    st.sampled_from(["", "VP Sales", "vp of sales", "1", "true", "Software", "US", "gmail.com"]),
    st.sampled_from([s for s in SEEN if isinstance(s, str)] or ["x"]),
    st.lists(st.sampled_from(["a", "Software"]), max_size=2),
)  # fmt: skip


@st.composite
def traits(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=len(PATHS), unique=True)):
        place(out, path, draw(values))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(traits(), min_size=1, max_size=30))
def test_remembered_fit_sets_equal_matching_afresh(leads: list[dict[str, Any]]) -> None:
    fit_sets = FitSets(MODEL)
    for lead in leads + leads:  # the second time round, every answer is remembered
        assert fit_sets.of(lead) == fit_set(MODEL, lead), lead


def test_one_true_and_one_point_zero_are_told_apart() -> None:
    fit_sets = FitSets(MODEL)
    for value in (1, True, 1.0, "1", 1, True):
        lead = {"unsubscribed": value, "company": {"employee_count": value}}
        assert fit_sets.of(lead) == fit_set(MODEL, lead), value
