"""Write a ``scoring.Model`` as YAML in the configuration format.

The inverse of ``config.loader.load_config`` for the model sections: loading the text gives
back an equal model, provided its rules are in section order (fit, intent, then negative),
which is the order the loader builds them in. The layout is the hand-written one of
``config/default.yaml`` (one rule per block, conditions in flow style) so a learned model
can be read and edited by a person.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from scoring import Condition, Model, Op, Rule, RuleKind, Threshold

INDENT = "    "


def _flow(value: Any) -> str:
    """One YAML scalar or flow collection on one line, quoted where YAML would misread it
    (``'no'``, ``'1'``, ``'null'``)."""
    text = yaml.safe_dump(
        value, default_flow_style=True, allow_unicode=True, width=math.inf, sort_keys=False
    )
    # ASCII blanks only: str.strip() would also take a no-break space off a label or a
    # trait name ("\xa00 is missing"), which the YAML itself keeps.
    return text.removesuffix("\n").removesuffix("\n...").strip(" \n")


def _number(value: float) -> int | float:
    """Integers print without ``.0``; floats keep full precision (round-trips exactly)."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write a non-finite number to YAML: {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def condition_value(condition: Condition) -> dict[str, Any]:
    """The ``{operator: value}`` mapping the loader turns back into this condition."""
    op, value = condition.op, condition.value
    if op is Op.ONE_OF:
        return {op.value: sorted(str(v) for v in value)}
    if op is Op.RANGE:
        low, high = value
        bounds = {"min": low, "max": high}
        return {op.value: {k: _number(v) for k, v in bounds.items() if v is not None}}
    if op is Op.PATTERN:
        return {op.value: value.pattern}
    if op is Op.EQUALS and isinstance(value, int | float) and not isinstance(value, bool):
        return {op.value: _number(value)}
    return {op.value: value}


def _conditions(conditions: Sequence[Condition]) -> str:
    """One flow mapping, dumped whole: a trait name with ``,`` ``[`` ``{`` ``:`` or ``?`` in
    it (a CSV column, a CRM field) is quoted as a key in flow context needs."""
    mapping = {".".join(c.path): condition_value(c) for c in conditions}
    if len(mapping) != len(conditions):  # a YAML mapping holds one condition a path
        raise ValueError(f"two conditions on one path cannot be written: {sorted(mapping)}")
    return _flow(mapping)


def _section(rule: Rule) -> str:
    if rule.points < 0:
        return "negative"
    if rule.points == 0:
        raise ValueError(f"rule {rule.id!r}: points must not be 0 (drop the rule instead)")
    if rule.kind is RuleKind.FIT:
        return "fit"
    if rule.kind is RuleKind.INTENT:
        return "intent"
    raise ValueError(
        f"rule {rule.id!r}: an inactivity rule needs negative points, got {rule.points:g}"
    )


def _rule_lines(rule: Rule) -> list[str]:
    lines = [
        f"  - id: {_flow(rule.id)}",
        f"{INDENT}label: {_flow(rule.label)}",
        f"{INDENT}points: {_flow(_number(rule.points))}",
    ]
    if rule.kind is RuleKind.FIT and rule.scale is not None:
        scale = rule.scale
        spec = {
            "trait": ".".join(scale.path),
            "from": _number(scale.low),
            "to": _number(scale.high),
        }
        lines.append(f"{INDENT}scale: {_flow(spec)}")
    elif rule.kind is RuleKind.FIT:
        if not rule.conditions:
            raise ValueError(f"rule {rule.id!r}: a fit rule needs at least one condition")
        lines.append(f"{INDENT}when: {_conditions(rule.conditions)}")
    elif rule.kind is RuleKind.INACTIVITY:
        lines.append(f"{INDENT}inactive_days: {_flow(_number(rule.inactive_days or 0.0))}")
    else:
        lines += _event_lines(rule)
    return lines


def _event_lines(rule: Rule) -> list[str]:
    lines = []
    if rule.event_type == "track":
        lines.append(f"{INDENT}track: {_flow(rule.event_name)}")
        if rule.conditions:
            lines.append(f"{INDENT}where: {_conditions(rule.conditions)}")
    else:
        lines.append(f"{INDENT}page: {_conditions(rule.conditions)}")
    if rule.half_life_days is not None:
        lines.append(f"{INDENT}half_life_days: {_flow(_number(rule.half_life_days))}")
    if rule.cap is not None:
        lines.append(f"{INDENT}cap: {_flow(_number(rule.cap))}")
    if rule.lead:
        lines.append(f"{INDENT}lead: {_conditions(rule.lead)}")
    return lines


def _threshold(threshold: Threshold) -> str:
    if threshold.percentile is None:
        return _flow(_number(threshold.points or 0.0))
    spec: dict[str, Any] = {"percentile": _number(threshold.percentile)}
    if threshold.min_points:
        spec["min_points"] = _number(threshold.min_points)
    return _flow(spec)


def _model_lines(model: Model) -> list[str]:
    grades = {str(k): _number(v) for k, v in model.grades}
    engagement = {int(k): _number(v) for k, v in model.engagement}
    if list(grades) != ["A", "B", "C"] or list(engagement) != [4, 3, 2]:
        raise ValueError(
            f"grades must be A, B, C and engagement 4, 3, 2, got {list(grades)} and "
            f"{list(engagement)}"
        )
    return [
        "model:",
        f"  name: {_flow(model.name)}",
        f"  points_per_logodds: {_flow(_number(model.points_per_logodds))}",
        f"  intercept: {_flow(_number(model.intercept))}",
        "  bands:",
        f"    warm: {_threshold(model.bands.warm)}",
        f"    hot: {_threshold(model.bands.hot)}",
        f"  grades: {_flow(grades)}",
        f"  engagement: {_flow(engagement)}",
    ]


def model_yaml(model: Model, *, header: str = "") -> str:
    """The model as configuration YAML. ``header`` lines are written as comments on top.

    Raises ValueError naming the rule for what the format cannot hold (zero points, a fit
    rule without conditions, a positive inactivity rule)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += _model_lines(model)
    sections: dict[str, list[Rule]] = {"fit": [], "intent": [], "negative": []}
    for rule in model.rules:
        sections[_section(rule)].append(rule)
    for name, rules in sections.items():
        lines += ["", f"{name}:" if rules else f"{name}: []"]
        for rule in rules:
            lines += _rule_lines(rule)
    return "\n".join(lines) + "\n"


def in_section_order(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """Rules in the order the loader builds them (fit, intent, negative; stable within each),
    so a model built from them equals its own written and reloaded form."""
    order = {"fit": 0, "intent": 1, "negative": 2}
    return tuple(sorted(rules, key=lambda r: order[_section(r)]))
