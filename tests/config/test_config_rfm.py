"""The ``rfm`` section: defaults, and errors that name the file, line and field."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import DEFAULT_PATH, load_config
from scoring.rfm import DEFAULT_SEGMENTS

BASE = DEFAULT_PATH.read_text(encoding="utf-8")
LINE = BASE.count("\n") + 1  # the line of "rfm:"


def test_defaults() -> None:
    rfm = load_config().rfm
    assert (rfm.window_days, rfm.currency, dict(rfm.rates.rates)) == (365.0, "EUR", {})
    assert rfm.segments == DEFAULT_SEGMENTS
    assert rfm.moves.alerts("Champions", "At risk")


def test_a_section_of_ones_own() -> None:
    rfm = load_config(
        text=BASE
        + """rfm:
  window_days: 90
  currency: GBP
  rates: {EUR: 0.85}
  segments:
    - {name: Best, r: 5, f: "4-5", m: "4-5"}
    - {name: Rest}
  alert_moves: {from: [Best], to: [Rest]}
"""
    ).rfm
    assert rfm.window_days == 90
    assert rfm.rates.convert(100.0, "EUR") == pytest.approx(85.0)
    assert [s.name for s in rfm.segments] == ["Best", "Rest"]
    assert rfm.segments[0].r == (5, 5)
    assert rfm.moves.alerts("Best", "Rest")


@pytest.mark.parametrize(
    ("section", "line", "field", "message"),
    [
        ("  currency: eur\n", 1, "rfm.currency", "3-letter ISO 4217 code"),
        ("  window_days: 0\n", 1, "rfm.window_days", "greater than 0"),
        ("  rates: {GBP: -1}\n", 1, "rfm.rates.GBP", "greater than 0"),
        ("  segments:\n    - {name: X, r: '5-4'}\n", 2, "rfm.segments[0].r", "runs backwards"),
        ("  segments:\n    - {name: X, f: 6}\n", 2, "rfm.segments[0].f", 'range like "4-5"'),
        ("  segments:\n    - {name: Top, r: 5}\n", 1, "rfm.segments", "100 of the 125 cells"),
        ("  alert_moves: {to: [Gone]}\n", 1, "rfm.alert_moves", "unknown segment 'Gone'"),
    ],
)
def test_errors_name_the_field(section: str, line: int, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text=BASE + "rfm:\n" + section, name="leadbot.yaml")
    [problem] = caught.value.problems
    assert problem.field == field
    assert message in problem.message
    assert problem.line == LINE + line
