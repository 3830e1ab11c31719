"""Per-lead feature state, updated in O(rules) per event without replaying history.

An intent feature is kept as ``(value, as_of)``: the decayed count at time ``as_of``. A new
event at ``t ≥ as_of`` gives ``value·2^(−(t−as_of)/h) + 1`` at ``t``; an event older than
``as_of`` adds ``2^(−(as_of−t)/h)``. Both are the same sum ``Σ 2^(−(as_of−tᵢ)/h)``, so the
order in which events arrive does not change the state, and two states merge by addition.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from scoring.model import Model, Rule


def decay_factor(elapsed: float, half_life: float | None) -> float:
    """``2^(−elapsed/half_life)``; 1 when the rule does not decay."""
    if half_life is None or elapsed == 0.0:
        return 1.0
    return 2.0 ** (-elapsed / half_life)


@dataclass(slots=True)
class IntentState:
    """Decayed count ``value`` as of ``as_of`` (unix seconds, the newest event seen),
    and ``count``, the number of events that matched."""

    value: float
    as_of: float
    count: int

    def add(self, at: float, half_life: float | None, weight: float = 1.0, n: int = 1) -> None:
        if at >= self.as_of:
            self.value = self.value * decay_factor(at - self.as_of, half_life) + weight
            self.as_of = at
        else:
            self.value += weight * decay_factor(self.as_of - at, half_life)
        self.count += n

    def read(self, now: float, half_life: float | None) -> float:
        """The decayed count at ``now``; a read before ``as_of`` does not extrapolate."""
        return self.value * decay_factor(max(0.0, now - self.as_of), half_life)


def merge_traits(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Deep-merge ``new`` into ``into``: nested objects merge, other values replace."""
    for key, value in new.items():
        current = into.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merge_traits(current, value)
        elif isinstance(value, Mapping):
            into[key] = {}
            merge_traits(into[key], value)
        else:
            into[key] = value


@dataclass(slots=True)
class LeadState:
    """What the scoring engine knows of one lead.

    ``fit`` holds the ids of the fit rules the traits match; ``intent`` one state per intent
    rule that ever matched. ``first_seen`` and ``last_seen`` are the earliest and newest
    event times (of any kind), ``active_at`` the
    newest track or page event (None before the first); inactivity is measured from
    ``active_at`` or, before any activity, from ``first_seen``.
    """

    traits: dict[str, Any] = field(default_factory=dict)
    fit: frozenset[str] = frozenset()
    intent: dict[str, IntentState] = field(default_factory=dict)
    first_seen: float | None = None
    last_seen: float | None = None
    active_at: float | None = None

    def copy(self) -> LeadState:
        # Deep: to_dict shares the nested trait dicts, which identify later mutates.
        return LeadState.from_dict(deepcopy(self.to_dict()))

    def seen(self, at: float) -> None:
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        self.last_seen = at if self.last_seen is None else max(self.last_seen, at)

    def identify(self, traits: Mapping[str, Any], model: Model, at: float) -> None:
        """Merge new traits (at time ``at``) and re-evaluate the fit rules.

        ``email_domain`` is derived from ``email`` so rules can match free-mail or
        competitor domains."""
        self.seen(at)
        merge_traits(self.traits, traits)
        email = self.traits.get("email")
        if isinstance(email, str) and "@" in email:
            self.traits["email_domain"] = email.rsplit("@", 1)[1].strip().lower()
        self.refit(model)

    def refit(self, model: Model) -> None:
        """Re-evaluate every fit rule on the current traits (after a model change too)."""
        if not self.traits:
            self.fit = model.fit_of_nothing
            return
        self.fit = frozenset(
            r.id for r in model.fit_rules if all(c.matches(self.traits) for c in r.conditions)
        )

    def event(
        self,
        event_type: str,
        name: str | None,
        properties: Mapping[str, Any],
        model: Model,
        at: float,
    ) -> list[Rule]:
        """Count a track or page event; returns the intent rules it matched."""
        if self.first_seen is None:  # a new lead: fit rules may hold on no traits at all
            self.refit(model)
        self.seen(at)
        self.active_at = at if self.active_at is None else max(self.active_at, at)
        matched = []
        for rule in model.candidates(event_type, name):
            for condition in rule.conditions:
                if not condition.matches(properties):
                    break
            else:
                matched.append(rule)
                state = self.intent.get(rule.id)
                if state is None:
                    self.intent[rule.id] = IntentState(1.0, at, 1)
                else:
                    state.add(at, rule.half_life_seconds)
        return matched

    def merge(self, other: LeadState, model: Model) -> None:
        """Fold another state in (an anonymous visitor who turned out to be this lead).
        Traits already known here win over the other's."""
        theirs: dict[str, Any] = {}  # fresh nested dicts: never alias or mutate other's
        merge_traits(theirs, other.traits)
        merge_traits(theirs, self.traits)
        self.traits = theirs
        for at in (other.first_seen, other.last_seen):
            if at is not None:
                self.seen(at)
        if other.active_at is not None:
            active = self.active_at  # not `or`: 0.0 is a valid unix time
            self.active_at = other.active_at if active is None else max(active, other.active_at)
        for rule_id, st in other.intent.items():
            mine = self.intent.get(rule_id)
            if mine is None:
                self.intent[rule_id] = IntentState(st.value, st.as_of, st.count)
            else:
                half_life = _half_life(model, rule_id)
                mine.add(st.as_of, half_life, weight=st.value, n=st.count)
        self.refit(model)

    def to_dict(self) -> dict[str, Any]:
        """A compact, JSON-ready form: intent states as ``[value, as_of, count]``."""
        return {
            "traits": self.traits,
            "fit": sorted(self.fit),
            "intent": {k: [s.value, s.as_of, s.count] for k, s in self.intent.items()},
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "active_at": self.active_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeadState:
        return cls(
            traits=dict(data.get("traits") or {}),
            fit=frozenset(data.get("fit") or ()),
            intent={
                k: IntentState(float(v[0]), float(v[1]), int(v[2]))
                for k, v in (data.get("intent") or {}).items()
            },
            first_seen=data.get("first_seen"),
            last_seen=data.get("last_seen", data.get("first_seen")),
            active_at=data.get("active_at"),
        )


def _half_life(model: Model, rule_id: str) -> float | None:
    try:
        return model.rule(rule_id).half_life_seconds
    except KeyError:  # a rule the current model no longer has: keep the count as it is
        return None
