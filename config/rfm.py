"""The ``rfm`` section: how customers are scored from their orders (``scoring.rfm``).

```yaml
rfm:
  window_days: 365          # frequency and monetary count orders of the last N days
  currency: EUR             # the base currency revenue is summed in
  rates: {GBP: 1.17, USD: 0.92}   # base units per unit; other currencies are kept apart
  segments:                 # ordered: the first match names the cell (default: the common map)
    - {name: Champions, r: "4-5", f: "4-5", m: "4-5"}
    - {name: Others}        # a span left out is 1-5
  alert_moves:              # the moves worth an alert to the account owner
    from: [Champions, Loyal]
    to: [At risk, "Can't lose them"]
  snooze_days: 14           # an alert's Snooze silences that customer's alerts this long
```

A segment map must give every one of the 125 cells a segment: the error names a cell
that has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from config.conditions import Strict
from config.errors import got
from config.rules import Text
from scoring.rfm import (
    DEFAULT_SEGMENTS,
    DEFAULT_WINDOW_DAYS,
    MoveRule,
    Rates,
    Segment,
    Span,
    uncovered_cells,
)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SPAN = re.compile(r"^\s*([1-5])\s*(?:-\s*([1-5]))?\s*$")


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError(got("a 3-letter ISO 4217 code in capitals, like EUR", value))
    return value


def _span(value: object) -> Span:
    if isinstance(value, tuple):  # a default, already a span
        return value  # type: ignore[return-value]
    match = _SPAN.match(str(value)) if isinstance(value, str | int) else None
    if match is None or isinstance(value, bool):
        raise ValueError(got('a score 1-5 or a range like "4-5"', value))
    lo = int(match.group(1))
    hi = int(match.group(2) or lo)
    if hi < lo:
        raise ValueError(f"the range {value!r} runs backwards: write {hi}-{lo}")
    return lo, hi


Currency = Annotated[str, AfterValidator(_currency)]
SpanText = Annotated[Span, BeforeValidator(_span)]


class SegmentSpec(Strict):
    name: Annotated[Text, Field(max_length=32)]
    r: SpanText = (1, 5)
    f: SpanText = (1, 5)
    m: SpanText = (1, 5)

    def to_segment(self) -> Segment:
        return Segment(self.name, self.r, self.f, self.m)


class MovesSpec(Strict):
    from_: list[Text] = Field(default_factory=lambda: ["Champions", "Loyal"], alias="from")
    to: list[Text] = Field(default_factory=lambda: ["At risk", "Can't lose them"])


def _default_segments() -> list[SegmentSpec]:
    return [SegmentSpec(name=s.name, r=s.r, f=s.f, m=s.m) for s in DEFAULT_SEGMENTS]


class RfmSpec(Strict):
    window_days: Annotated[float, Field(gt=0, le=3650)] = DEFAULT_WINDOW_DAYS
    currency: Currency = "EUR"
    rates: dict[Currency, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    segments: list[SegmentSpec] = Field(default_factory=_default_segments, min_length=1)
    alert_moves: MovesSpec = MovesSpec()
    snooze_days: Annotated[float, Field(gt=0, le=365)] = 14  # an alert's Snooze button

    @field_validator("segments")
    @classmethod
    def _every_cell(cls, value: list[SegmentSpec]) -> list[SegmentSpec]:
        missing = uncovered_cells([s.to_segment() for s in value])
        if missing:
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            raise ValueError(
                f"{len(missing)} of the 125 cells have no segment ({shown}): add a segment "
                "that matches them, e.g. a last {name: Others} (all spans 1-5)"
            )
        return value

    @field_validator("alert_moves")
    @classmethod
    def _known_segments(cls, value: MovesSpec, info: ValidationInfo) -> MovesSpec:
        segments = info.data.get("segments")
        if segments is None:  # the segments had their own error
            return value
        names = {s.name for s in segments}
        unknown = [n for n in (*value.from_, *value.to) if n not in names]
        if unknown:
            raise ValueError(
                f"unknown segment {unknown[0]!r}: segments are {', '.join(sorted(names))}"
            )
        return value

    def to_rfm(self) -> Rfm:
        return Rfm(
            window_days=self.window_days,
            rates=Rates(self.currency, dict(self.rates)),
            segments=tuple(s.to_segment() for s in self.segments),
            moves=MoveRule(frozenset(self.alert_moves.from_), frozenset(self.alert_moves.to)),
            snooze_days=self.snooze_days,
        )


@dataclass(frozen=True)
class Rfm:
    """The compiled section."""

    window_days: float = DEFAULT_WINDOW_DAYS
    rates: Rates = field(default_factory=Rates)
    segments: tuple[Segment, ...] = DEFAULT_SEGMENTS
    moves: MoveRule = field(default_factory=MoveRule)
    snooze_days: float = 14

    @property
    def currency(self) -> str:
        return self.rates.base
