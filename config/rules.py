"""Scoring rules as written in YAML: fit (traits), intent (events) and negative (penalties).

Each spec checks what only it can know (points sign, one event source, no decaying penalty)
and turns itself into a ``scoring.Rule``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from config.conditions import Conditions, ScaleSpec, Strict, to_conditions
from config.errors import one_of_words
from scoring import Rule, RuleKind

RULE_ID = r"^[a-z][a-z0-9_]*$"
RULE_CHECK = "rule_check"
"""The pydantic error type of a check across a rule's keys; its message is complete."""


def _rule_id(value: str) -> str:
    if re.fullmatch(RULE_ID, value) is None:
        raise ValueError(
            f"rule ids are lower-case letters, digits and underscores, starting with a letter "
            f"({RULE_ID}), got {value!r}"
        )
    return value


def _positive_points(value: float) -> float:
    if value <= 0:
        raise ValueError(
            f"fit and intent points must be greater than 0, got {value:g}; "
            "penalties belong under negative:"
        )
    return value


def _negative_points(value: float) -> float:
    if value >= 0:
        raise ValueError(f"points under negative: must be below 0, got {value:g}")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


RuleId = Annotated[str, AfterValidator(_rule_id)]
PositivePoints = Annotated[float, AfterValidator(_positive_points)]
NegativePoints = Annotated[float, AfterValidator(_negative_points)]
Positive = Annotated[float, Field(gt=0)]
Text = Annotated[str, AfterValidator(_non_empty)]


def humanise(rule_id: str) -> str:
    """``role_sales_leader`` → ``Role sales leader``: the label when none is given."""
    words = rule_id.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


class RuleSpec(Strict):
    id: RuleId
    label: Text | None = None

    # Keys of which exactly one must be given: where the rule's signal comes from.
    SOURCES: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _whole_rule(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Checks across keys run on the raw mapping, so they are reported together with
        any field errors rather than only once the fields are fixed."""
        messages = cls.rule_checks(data) if isinstance(data, dict) else []
        errors: list[Any] = []
        try:
            rule = handler(data)
        except ValidationError as err:
            errors = list(err.errors())
        errors += [
            InitErrorDetails(type=PydanticCustomError(RULE_CHECK, m), loc=(), input=data)
            for m in messages
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors) from None
        return rule

    @classmethod
    def rule_checks(cls, data: dict[str, Any]) -> list[str]:
        """Problems that involve several keys of the rule, as messages."""
        return source_problems(data, cls.SOURCES) if cls.SOURCES else []

    @property
    def label_text(self) -> str:
        return self.label or humanise(self.id)


class FitRule(RuleSpec):
    """Matches traits: every condition in ``when`` must hold; or, with ``scale``, earns
    its points in proportion to a numeric trait."""

    points: PositivePoints
    when: Conditions | None = None
    scale: ScaleSpec | None = None

    SOURCES: ClassVar[tuple[str, ...]] = ("when", "scale")

    @field_validator("when")
    @classmethod
    def _some_condition(cls, value: Conditions | None) -> Conditions | None:
        if value is not None and not value:
            raise ValueError("needs at least one condition (a fit rule that always holds)")
        return value

    def to_rule(self) -> Rule:
        return trait_rule(self, self.when, self.scale)


class IntentRule(RuleSpec):
    """Counts ``track`` events by name (``where`` tests their properties) or ``page``
    views whose properties meet the ``page`` conditions; with ``lead`` conditions, the
    points count only for leads whose traits meet them."""

    points: PositivePoints
    track: Text | None = None
    page: Conditions | None = None
    where: Conditions | None = None
    lead: Conditions | None = None
    half_life_days: Positive | None = None
    cap: Positive | None = None

    SOURCES: ClassVar[tuple[str, ...]] = ("track", "page")

    def to_rule(self) -> Rule:
        return event_rule(self, self.track, self.page, self.where, self.half_life_days)


class NegativeRule(RuleSpec):
    """A penalty on traits (``when``), on events (``track``/``page``) or on inactivity."""

    points: NegativePoints
    when: Conditions | None = None
    track: Text | None = None
    page: Conditions | None = None
    where: Conditions | None = None
    lead: Conditions | None = None
    inactive_days: Positive | None = None
    cap: Positive | None = None
    half_life_days: float | None = None

    @field_validator("half_life_days")
    @classmethod
    def _no_decay(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError(
                "negative rules do not decay: a fading penalty would make a score rise "
                "with time while the lead does nothing; remove half_life_days"
            )
        return value

    scale: ScaleSpec | None = None

    SOURCES: ClassVar[tuple[str, ...]] = ("when", "scale", "track", "page", "inactive_days")

    @classmethod
    def rule_checks(cls, data: dict[str, Any]) -> list[str]:
        problems = super().rule_checks(data)
        events = _given(data, "track") or _given(data, "page")
        if _given(data, "cap") and not events:
            problems.append("cap applies only to event rules (track or page)")
        if _given(data, "lead") and not events:
            problems.append(
                "lead applies only to event rules (track or page); a penalty on traits "
                "alone puts its conditions under when:"
            )
        return problems

    def to_rule(self) -> Rule:
        if self.when is not None or self.scale is not None:
            return trait_rule(self, self.when, self.scale)
        if self.inactive_days is not None:
            days = self.inactive_days
            return Rule(
                self.id, self.label_text, RuleKind.INACTIVITY, self.points, inactive_days=days
            )
        return event_rule(self, self.track, self.page, self.where, None)


def trait_rule(
    spec: FitRule | NegativeRule, when: Conditions | None, scale: ScaleSpec | None
) -> Rule:
    """A fit rule: its conditions, or its scale."""
    if scale is not None:
        return Rule(spec.id, spec.label_text, RuleKind.FIT, spec.points, scale=scale.to_scale())
    return Rule(spec.id, spec.label_text, RuleKind.FIT, spec.points, to_conditions(when))


def _given(data: dict[str, Any], key: str) -> bool:
    return data.get(key) is not None


def source_problems(data: dict[str, Any], sources: tuple[str, ...]) -> list[str]:
    """Exactly one of ``sources`` is given; ``where`` only with ``track``."""
    given = [key for key in sources if _given(data, key)]
    problems = []
    if len(given) != 1:
        found = one_of_words(given) if given else "none"
        problems.append(f"needs exactly one of {one_of_words(sources)}, got {found}")
    if _given(data, "where") and not _given(data, "track"):
        problems.append("where applies to track rules; put page conditions under page:")
    return problems


def event_rule(
    spec: IntentRule | NegativeRule,
    track: str | None,
    page: Conditions | None,
    where: Conditions | None,
    half_life_days: float | None,
) -> Rule:
    kind = RuleKind.INTENT
    common: dict[str, Any] = {"half_life_days": half_life_days, "cap": spec.cap,
                              "lead": to_conditions(spec.lead) if spec.lead else ()}  # fmt: skip
    if track is not None:
        conditions = to_conditions(where)
        return Rule(
            spec.id, spec.label_text, kind, spec.points, conditions, "track", track, **common
        )
    return Rule(spec.id, spec.label_text, kind, spec.points, to_conditions(page), "page", **common)
