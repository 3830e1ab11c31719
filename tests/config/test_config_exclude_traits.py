"""``learning.exclude_traits``: the traits no new rule may read (ones that leak the outcome)."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import load_config

BASE = (
    "model:\n  name: t\nfit:\n  - {id: vp, label: VP, points: 10, when: {title: {pattern: vp}}}\n"
)


def test_by_default_the_crm_stages_a_csv_import_stores_are_excluded() -> None:
    learning = load_config(text=BASE, name="t.yaml").learning
    assert learning.exclude_traits == ("lifecycle_stage", "lead_status", "converted")


def test_the_list_is_replaced_and_an_empty_name_is_refused() -> None:
    text = BASE + "learning:\n  exclude_traits: [stage, crm.status]\n"
    assert load_config(text=text, name="t.yaml").learning.exclude_traits == ("stage", "crm.status")
    with pytest.raises(ConfigError, match="exclude_traits"):
        load_config(text=BASE + "learning:\n  exclude_traits: ['']\n", name="t.yaml")
