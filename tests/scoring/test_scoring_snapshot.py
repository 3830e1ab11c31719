"""A label's snapshot of the lead: bounded, JSON-ready, without personal data."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from scoring.snapshot import (
    _EMAIL,
    MAX_PATH,
    MAX_TEXT,
    MAX_TRAITS,
    lead_snapshot,
    trait_snapshot,
    without,
)


def test_traits_are_flattened_cut_and_never_personal() -> None:
    traits = {
        "email": "dana@acme.io", "firstName": "Dana", "lastName": "Reyes", "name": "Dana R",
        "email_domain": "acme.io", "note": "write to dana@acme.io", "title": "x" * 500,
        "company": {"name": "AcmeSoft", "industry": "Software", "size": 40, "tags": ["a"]},
        "public": True, "ratio": float("nan"),
    }  # fmt: skip
    assert trait_snapshot(traits) == {
        "company.industry": "Software",
        "company.size": 40,
        "email_domain": "acme.io",
        "public": True,
        "title": "x" * MAX_TEXT,
    }


def test_at_most_max_traits_are_kept_in_a_stable_order() -> None:
    traits = {f"t{i:03d}": i for i in range(MAX_TRAITS + 50)}
    kept = trait_snapshot(traits)
    assert list(kept) == [f"t{i:03d}" for i in range(MAX_TRAITS)]


def test_a_wide_export_is_kept_whole_and_an_over_long_name_is_left_out_not_cut() -> None:
    """120 columns, as a CRM export has: every one stays learnable; a name too long to keep
    is dropped, since a cut name is a path no lead has."""
    traits = {f"Column {i}": i for i in range(120)} | {"q" * (MAX_PATH + 1): "yes"}
    kept = trait_snapshot(traits)
    assert len(kept) == 120
    assert "q" * MAX_PATH not in kept


def test_a_snapshot_holds_the_traits_kept_and_the_event_counts_given() -> None:
    traits = {"email": "dana@acme.io", "company": {"industry": "Software"}}
    events = {"track:Webinar Joined": (2, 100.0, 200.0)}
    assert lead_snapshot(traits, events) == {
        "traits": {"company.industry": "Software"},
        "events": {"track:Webinar Joined": [2, 100.0, 200.0]},
        "numbers": {},  # always there: a snapshot without it predates numbers
        "flags": {},  # the same for flags
    }


@given(st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=5) | st.lists(inner),
    max_leaves=30,
)))  # fmt: skip
def test_any_traits_give_a_bounded_json_snapshot(traits: dict) -> None:
    kept = trait_snapshot(traits)
    assert len(kept) <= MAX_TRAITS
    assert all(len(k) <= MAX_PATH for k in kept)
    assert all(isinstance(v, (str, int, float, bool)) for v in kept.values())
    texts = [v for v in kept.values() if isinstance(v, str)]
    assert all(len(v) <= MAX_TEXT and not _EMAIL.search(v) for v in texts)
    assert json.loads(json.dumps(kept)) == kept


def test_excluded_traits_go_by_path_or_last_segment_any_case() -> None:
    snapshot = {
        "traits": {"lifecycle_stage": "customer", "crm.Lead_Status": "won", "title": "VP"},
        "events": {"track:A": [1, 0.0, 0.0]},
    }
    kept = without(snapshot, ["lifecycle_stage", "lead_status"])
    assert kept == {"traits": {"title": "VP"}, "events": {"track:A": [1, 0.0, 0.0]}}
