"""``score(state, model, now)``: the only way a number comes out of a lead's state."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scoring.bands import Thresholds, band_for, default_thresholds
from scoring.model import DAY, Model, Rule, RuleKind
from scoring.score import Contribution, Score
from scoring.state import LeadState


def feature(rule: Rule, state: LeadState, now: float) -> float:
    """The rule's feature value for this lead at ``now`` (unix seconds)."""
    if rule.kind is RuleKind.FIT:
        if rule.scale is not None:
            return rule.scale.read(state.traits)
        return 1.0 if rule.id in state.fit else 0.0
    if rule.kind is RuleKind.INACTIVITY:
        since = state.active_at if state.active_at is not None else state.first_seen
        if since is None or rule.inactive_days is None:
            return 0.0
        return 1.0 if now - since >= rule.inactive_days * DAY else 0.0
    intent = state.intent.get(rule.id)
    if intent is None or (rule.lead and not rule.admits(state.traits)):
        return 0.0
    value = intent.read(now, rule.half_life_seconds)
    return value if rule.cap is None else min(rule.cap, value)


def probability(model: Model, total: float) -> float:
    """``σ(intercept + total / points_per_logodds)``, computed without overflow."""
    z = model.intercept + total / model.points_per_logodds
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _level(cutoffs: tuple[tuple[object, float], ...], points: float, below: object) -> object:
    for level, least in cutoffs:
        if points >= least:
            return level
    return below


def active_rules(state: LeadState, model: Model) -> list[Rule]:
    """The rules that can be non-zero for this lead: its matched fit rules, the scaled
    ones, the intent rules it has counts for, and inactivity. O(what the lead did), not
    O(the model)."""
    found = [r for rid in state.fit if (r := model.find(rid)) is not None and _matched(r)]
    found += [
        r
        for rid in state.intent
        if (r := model.find(rid)) is not None and r.kind is RuleKind.INTENT
    ]
    found += model.scaled_rules
    found += model.inactivity_rules
    return found


def scaled_points(model: Model, traits: Mapping[str, Any]) -> float:
    """The points the model's scaled rules give these traits."""
    total = 0.0
    for rule in model.scaled_rules:
        if rule.scale is not None:
            total += rule.points * rule.scale.read(traits)
    return total


def _matched(rule: Rule) -> bool:
    """A fit rule a ``fit`` set may name (a set refitted under an older version may name
    an id that is now a scaled rule: those are read off the traits instead)."""
    return rule.kind is RuleKind.FIT and rule.scale is None


def totals(state: LeadState, model: Model, now: float) -> tuple[float, float]:
    """Fit and intent points at ``now``: the sums of the contributions, computed without
    building them, over what the lead has touched (the ingest path scores every lead it
    updates with this)."""
    find = model.find
    fit = 0.0
    for rule_id in state.fit:
        rule = find(rule_id)
        if rule is not None and rule.kind is RuleKind.FIT and rule.scale is None:  # _matched
            fit += rule.points
    if model.scaled_rules:
        fit += scaled_points(model, state.traits)
    intent = 0.0
    for rule_id, counted in state.intent.items():
        rule = find(rule_id)
        if rule is None or rule.kind is not RuleKind.INTENT:
            continue
        if rule.lead and not rule.admits(state.traits):
            continue
        value = counted.read(now, rule.half_life_seconds)
        if rule.cap is not None and value > rule.cap:
            value = rule.cap
        intent += rule.points * value
    for rule in model.inactivity_rules:
        intent += rule.points * feature(rule, state, now)
    return fit, intent


def contributions(state: LeadState, model: Model, now: float) -> tuple[Contribution, ...]:
    """Every non-zero rule's contribution, largest first (ties in model order)."""
    found: list[Contribution] = []
    for rule in active_rules(state, model):
        value = feature(rule, state, now)
        if value == 0.0:
            continue
        counted = state.intent.get(rule.id) if rule.kind is RuleKind.INTENT else None
        found.append(
            Contribution(
                rule=rule.id,
                label=rule.label,
                group=rule.group,
                points=rule.points * value,
                weight=rule.points,
                value=value,
                count=counted.count if counted else None,
                last_seen=counted.as_of if counted else None,
                reading=rule.scale.number(state.traits) if rule.scale is not None else None,
            )
        )
    found.sort(key=lambda c: (-abs(c.points), model.position(c.rule)))
    return tuple(found)


def score(
    state: LeadState,
    model: Model,
    now: float,
    thresholds: Thresholds | None = None,
    *,
    explain: bool = True,
) -> Score:
    """Score a lead at ``now`` (unix seconds). ``thresholds`` are the band edges resolved
    from current scores when the model's bands are percentiles (see ``scoring.bands``).

    With ``explain=False`` the contributions are left out: the same totals, for the ingest
    path, which needs the explanation only when it alerts."""
    fit, intent = totals(state, model, now)
    total = fit + intent
    edges = thresholds or default_thresholds(model.bands)
    return Score(
        total=total,
        fit=fit,
        intent=intent,
        band=band_for(total, edges),
        grade=str(_level(model.grades, fit, "D")),
        engagement=int(_level(model.engagement, intent, 1)),  # type: ignore[call-overload]
        probability=probability(model, total),
        contributions=contributions(state, model, now) if explain else (),
    )
