"""The scoring model: rules with points, bands, grades and the probability link.

A model is plain, frozen data. ``config/`` validates YAML into one; everything here trusts it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DAY = 86_400.0


class Op(StrEnum):
    """How a condition compares a trait or event property."""

    EQUALS = "equals"
    ONE_OF = "one_of"
    RANGE = "range"
    PATTERN = "pattern"
    EXISTS = "exists"


class RuleKind(StrEnum):
    """``fit`` reads traits (feature 0/1), ``intent`` counts events (decayed),
    ``inactivity`` fires when the lead has done nothing for a number of days."""

    FIT = "fit"
    INTENT = "intent"
    INACTIVITY = "inactivity"


class Band(StrEnum):
    COLD = "cold"
    WARM = "warm"
    HOT = "hot"


def lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted path (``company.employee_count``), or None. A name that has
    dots of its own matches too: ``nr.employed`` sent as one trait, as a CSV column or an
    SDK call names it, is found by the path ``("nr", "employed")``."""
    value: Any = data
    for i, key in enumerate(path):
        # A dict first: the ABC check alone is ~0.1 µs, and every rule's condition on every
        # event (and every lead of a rescore) looks its traits up here.
        if type(value) is not dict and not isinstance(value, Mapping):
            return None
        found = value.get(key)
        if found is None and i + 1 < len(path):
            return _dotted(value, path[i:])
        value = found
    return value


def _dotted(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """``lookup`` where ``path[0]`` is not a key: the longest run of names joined by dots
    that is one, then the rest from there."""
    for end in range(len(path), 1, -1):
        found = data.get(".".join(path[:end]))
        if found is not None:
            return found if end == len(path) else lookup(found, path[end:])
    return None


def place(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path (``company.industry``), making the objects on the way
    (a non-object in the way is replaced): how flat columns become the traits rules read."""
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[leaf] = value


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a value found at ``path``. String comparisons ignore case.

    ``value`` by op: EQUALS a str/number/bool, ONE_OF a frozenset of lower-cased strings,
    RANGE a ``(low, high)`` pair (either may be None; low inclusive, high exclusive),
    PATTERN a compiled regex (searched), EXISTS a bool.
    """

    path: tuple[str, ...]
    op: Op
    value: Any

    def matches(self, data: Mapping[str, Any]) -> bool:
        found = lookup(data, self.path)
        if self.op is Op.EXISTS:
            present = found is not None and found != "" and found != []
            return present is bool(self.value)
        if found is None:
            return False
        if self.op is Op.EQUALS:
            if isinstance(self.value, str):
                return isinstance(found, str) and found.strip().lower() == self.value.lower()
            if isinstance(self.value, bool) or isinstance(found, bool):
                return found is self.value
            number = _as_number(found)
            return number is not None and number == float(self.value)
        if self.op is Op.ONE_OF:
            return isinstance(found, str | int | float) and str(found).strip().lower() in self.value
        if self.op is Op.RANGE:
            number = _as_number(found)
            if number is None:
                return False
            low, high = self.value
            return (low is None or number >= low) and (high is None or number < high)
        if self.op is Op.PATTERN:
            return isinstance(found, str) and self.value.search(found) is not None
        raise AssertionError(f"unknown op {self.op}")


@dataclass(frozen=True, slots=True)
class Scale:
    """A fit feature in proportion to a number at ``path``: 0 at or below ``low``, 1 at or
    above ``high``, linear between; 0 when the lead has no such number. The rule's points
    are what the top of the range earns ("duration from 0 to 1,500 s: up to +36"), so a
    trait whose every unit counts gets a line, where steps only approach one."""

    path: tuple[str, ...]
    low: float
    high: float

    def number(self, data: Mapping[str, Any]) -> float | None:
        """The lead's number at ``path`` (None: none, or not a number)."""
        number = _as_number(lookup(data, self.path))
        return None if number is None or number != number else number  # NaN: none

    def read(self, data: Mapping[str, Any]) -> float:
        number = self.number(data)
        if number is None or number <= self.low:
            return 0.0
        return 1.0 if number >= self.high else (number - self.low) / (self.high - self.low)


@dataclass(frozen=True, slots=True)
class Rule:
    """A signal and its points. The contribution to a score is ``points × feature``.

    fit: feature = 1 when every condition holds on the traits, else 0; with a ``scale``
    (and no conditions), the scale's reading of the traits, from 0 to 1.
    intent: feature = ``min(cap, Σ 2^(−age/half_life))`` over matching events; no half-life
    means no decay (a plain count). ``event_type`` is ``track`` or ``page``; ``event_name``
    (track only) is compared without case; conditions test the event's properties. With
    ``lead`` conditions, the feature is 0 unless every one holds on the lead's traits
    ("did SMS Sent, when Lead Origin is API"): the events are counted whoever the lead is,
    and the traits gate the points when the score is read, so the order in which traits and
    events arrive changes nothing.
    inactivity: feature = 1 once the lead has been inactive for ``inactive_days``.
    """

    id: str
    label: str
    kind: RuleKind
    points: float
    conditions: tuple[Condition, ...] = ()
    event_type: str | None = None
    event_name: str | None = None
    half_life_days: float | None = None
    cap: float | None = None
    inactive_days: float | None = None
    lead: tuple[Condition, ...] = ()
    scale: Scale | None = None

    def admits(self, traits: Mapping[str, Any]) -> bool:
        """Whether the ``lead`` conditions (if any) hold on these traits."""
        return all(c.matches(traits) for c in self.lead)

    @property
    def negative(self) -> bool:
        return self.points < 0

    @property
    def group(self) -> str:
        """The subtotal the rule counts in: ``fit`` (who) or ``intent`` (what they do)."""
        return "fit" if self.kind is RuleKind.FIT else "intent"

    @property
    def half_life_seconds(self) -> float | None:
        return None if self.half_life_days is None else self.half_life_days * DAY


@dataclass(frozen=True, slots=True)
class Threshold:
    """A band's lower edge: fixed ``points``, or the ``percentile`` of current scores
    (never below ``min_points``)."""

    points: float | None = None
    percentile: float | None = None
    min_points: float = 0.0


@dataclass(frozen=True, slots=True)
class BandSpec:
    warm: Threshold = Threshold(points=40.0)
    hot: Threshold = Threshold(points=70.0)

    @property
    def uses_percentiles(self) -> bool:
        return self.warm.percentile is not None or self.hot.percentile is not None


@dataclass(frozen=True)
class Model:
    """Rules, bands, grade and engagement cut-offs, and the probability link
    ``p = σ(intercept + total / points_per_logodds)``.

    ``grades`` maps a letter to the least fit points that earns it, best first; below the
    last cut-off the grade is ``D``. ``engagement`` does the same for intent points and
    levels 4..2; below them the level is 1.
    """

    rules: tuple[Rule, ...]
    bands: BandSpec = BandSpec()
    grades: tuple[tuple[str, float], ...] = (("A", 40.0), ("B", 25.0), ("C", 10.0))
    engagement: tuple[tuple[int, float], ...] = ((4, 40.0), (3, 20.0), (2, 5.0))
    points_per_logodds: float = 20.0
    intercept: float = -3.0
    name: str = "model"
    _track: dict[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _other: dict[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)
    _order: dict[str, int] = field(init=False, repr=False, compare=False)
    _inactivity: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    _fit: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    # The fit rules with a ``scale``, read off the traits whenever a lead is scored. A plain
    # attribute, not a property: the ingest path asks for every lead it scores.
    scaled_rules: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    _fit_of_nothing: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Index intent rules by event so an event is tested only against its candidates.
        track: dict[str, list[Rule]] = {}
        other: dict[str, list[Rule]] = {}
        for rule in self.rules:
            if rule.kind is not RuleKind.INTENT:
                continue
            if rule.event_type == "track" and rule.event_name is not None:
                track.setdefault(rule.event_name.lower(), []).append(rule)
            else:
                other.setdefault(rule.event_type or "track", []).append(rule)
        object.__setattr__(self, "_track", {k: tuple(v) for k, v in track.items()})
        object.__setattr__(self, "_other", {k: tuple(v) for k, v in other.items()})
        object.__setattr__(self, "_by_id", {r.id: r for r in self.rules})
        object.__setattr__(self, "_order", {r.id: i for i, r in enumerate(self.rules)})
        inactivity = tuple(r for r in self.rules if r.kind is RuleKind.INACTIVITY)
        object.__setattr__(self, "_inactivity", inactivity)
        fit = tuple(r for r in self.rules if r.kind is RuleKind.FIT and r.scale is None)
        object.__setattr__(self, "_fit", fit)
        scaled = tuple(r for r in self.rules if r.kind is RuleKind.FIT and r.scale is not None)
        object.__setattr__(self, "scaled_rules", scaled)
        # What a lead with no traits yet fits: every new lead asks, once per first event.
        nothing = frozenset(r.id for r in fit if all(c.matches({}) for c in r.conditions))
        object.__setattr__(self, "_fit_of_nothing", nothing)

    def candidates(self, event_type: str, name: str | None) -> tuple[Rule, ...]:
        """The intent rules an event of this type and name may match."""
        named = self._track.get(name.lower(), ()) if event_type == "track" and name else ()
        return named + self._other.get(event_type, ())

    @property
    def fit_rules(self) -> tuple[Rule, ...]:
        """The fit rules a lead matches or not (its ``fit`` set holds those it matches)."""
        return self._fit

    @property
    def fit_of_nothing(self) -> frozenset[str]:
        """The fit rules a lead without any trait satisfies (``exists: false`` and kin)."""
        return self._fit_of_nothing

    @property
    def inactivity_rules(self) -> tuple[Rule, ...]:
        return self._inactivity

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError if the model has none)."""
        return self._by_id[rule_id]

    def find(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def position(self, rule_id: str) -> int:
        """Where the rule stands in the model: the tie-break of an explanation's order."""
        return self._order[rule_id]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Patterns ignore case, as every string comparison in a model does."""
    return re.compile(pattern, re.IGNORECASE)
