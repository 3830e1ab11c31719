"""The configuration file as pydantic types, and its translation into ``scoring.Model``.

Validation happens here, once; ``scoring`` trusts what it is given. Cross-field checks sit
in field validators where they can (``hot`` checked against ``warm``), so the error points
at the field to change.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from config.conditions import Strict
from config.crm import CrmSpec
from config.errors import got
from config.learning import LearningSpec, ManagerId
from config.rfm import RfmSpec
from config.routing import RoutingSpec, SlackSpec, TeamsSpec
from config.rules import FitRule, IntentRule, NegativeRule, Positive, Text
from config.schedules import DecaySpec, RetentionSpec, ScheduleSpec, SlaSpec
from scoring import BandSpec, Model, Threshold

RULE_SECTIONS = ("fit", "intent", "negative")


def _model_default(name: str) -> float:
    """scoring.Model's own default, so the two never disagree."""
    (field,) = [f for f in dataclasses.fields(Model) if f.name == name]
    return float(field.default)  # type: ignore[arg-type]


class ThresholdSpec(Strict):
    """A number (points), or ``{percentile: 90, min_points: 50}``."""

    points: float | None = None
    percentile: Annotated[float, Field(gt=0, lt=100)] | None = None
    min_points: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"points": value}
        if isinstance(value, dict):
            return value
        raise ValueError(got("points (a number) or {percentile: 90, min_points: 50}", value))

    @model_validator(mode="after")
    def _one_kind(self) -> ThresholdSpec:
        if (self.points is None) == (self.percentile is None):
            raise ValueError("give points (a number) or a percentile, not both or neither")
        if self.min_points is not None and self.percentile is None:
            raise ValueError("min_points applies only to a percentile band")
        return self

    def to_threshold(self) -> Threshold:
        if self.percentile is not None:
            return Threshold(percentile=self.percentile, min_points=self.min_points or 0.0)
        return Threshold(points=self.points)


class BandsSpec(Strict):
    warm: ThresholdSpec
    hot: ThresholdSpec

    @field_validator("hot")
    @classmethod
    def _hot_above_warm(cls, hot: ThresholdSpec, info: ValidationInfo) -> ThresholdSpec:
        warm = info.data.get("warm")
        if warm is None:
            return hot
        for field in ("points", "percentile"):
            low, high = getattr(warm, field), getattr(hot, field)
            if low is not None and high is not None and high < low:
                raise ValueError(f"hot {field} ({high:g}) must not be below warm ({low:g})")
        return hot

    def to_bands(self) -> BandSpec:
        return BandSpec(warm=self.warm.to_threshold(), hot=self.hot.to_threshold())


def descending(value: float, info: ValidationInfo, names: tuple[str, ...], what: str) -> float:
    """Each cut-off is at most the one before it (fields validate in declaration order)."""
    index = names.index(str(info.field_name))
    before = info.data.get(names[index - 1]) if index else None
    if before is not None and value > before:
        previous = _alias(names[index - 1])
        raise ValueError(
            f"must not be above the {what} before it ({previous}: {before:g}), got {value:g}"
        )
    return value


def _alias(name: str) -> str:
    return name.removeprefix("level")


class GradesSpec(Strict):
    """Least fit points for each grade, best first; below C the grade is D."""

    A: float
    B: float
    C: float

    @field_validator("B", "C")
    @classmethod
    def _descending(cls, value: float, info: ValidationInfo) -> float:
        return descending(value, info, ("A", "B", "C"), "grade")

    def to_grades(self) -> tuple[tuple[str, float], ...]:
        return tuple((name, getattr(self, name)) for name in type(self).model_fields)


class EngagementSpec(Strict):
    """Least intent points for levels 4, 3 and 2; below them the level is 1."""

    level4: float = Field(alias="4")
    level3: float = Field(alias="3")
    level2: float = Field(alias="2")

    @field_validator("level3", "level2")
    @classmethod
    def _descending(cls, value: float, info: ValidationInfo) -> float:
        return descending(value, info, ("level4", "level3", "level2"), "level")

    @model_validator(mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        # YAML reads `4:` as an integer key; the fields are named by their strings.
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def to_engagement(self) -> tuple[tuple[int, float], ...]:
        fields = type(self).model_fields
        return tuple((int(str(f.alias)), getattr(self, name)) for name, f in fields.items())


class ModelSpec(Strict):
    name: Text
    points_per_logodds: Positive = _model_default("points_per_logodds")
    intercept: float = _model_default("intercept")
    bands: BandsSpec | None = None
    grades: GradesSpec | None = None
    engagement: EngagementSpec | None = None


class AlertSettings(Strict):
    """When alerts fire and which score changes are kept in history."""

    cooldown_hours: Annotated[float, Field(ge=0)] = 24.0
    history_min_delta: Annotated[float, Field(ge=0)] = 5.0
    on_rescore: bool = False
    # A model change may turn thousands of leads hot at once: alert the highest this many
    # (null: every one); the rest are in `leadbot top` and the digest.
    rescore_limit: Annotated[int, Field(ge=0)] | None = 100
    console: bool = True


class ConfigSpec(Strict):
    """The whole file. New sections (routing, schedules, chat) become new fields here."""

    model: ModelSpec
    fit: list[FitRule] = Field(default_factory=list)
    intent: list[IntentRule] = Field(default_factory=list)
    negative: list[NegativeRule] = Field(default_factory=list)
    alerts: AlertSettings = AlertSettings()
    slack: SlackSpec = SlackSpec()
    teams: TeamsSpec = TeamsSpec()
    routing: RoutingSpec = RoutingSpec()
    managers: list[ManagerId] = Field(default_factory=list)
    learning: LearningSpec = LearningSpec()
    # None (absent) means the default schedules; an empty list means none.
    schedules: list[ScheduleSpec] | None = None
    sla: SlaSpec = SlaSpec()
    decay: DecaySpec = DecaySpec()
    retention: RetentionSpec = RetentionSpec()
    crm: CrmSpec = CrmSpec()
    rfm: RfmSpec = RfmSpec()

    @field_validator(
        "fit",
        "intent",
        "negative",
        "alerts",
        "slack",
        "teams",
        "routing",
        "managers",
        "learning",
        "sla",
        "decay",
        "retention",
        "crm",
        "rfm",
        mode="before",
    )
    @classmethod
    def _empty_section(cls, value: Any, info: ValidationInfo) -> Any:
        # `fit:` with every rule commented out reads as null: treat it as empty.
        if value is None:
            return [] if info.field_name in (*RULE_SECTIONS, "managers") else {}
        return value

    def to_model(self) -> Model:
        specs: list[FitRule | IntentRule | NegativeRule] = [*self.fit, *self.intent]
        rules = tuple(spec.to_rule() for spec in [*specs, *self.negative])
        extra: dict[str, Any] = {}
        model = self.model
        if model.bands is not None:
            extra["bands"] = model.bands.to_bands()
        if model.grades is not None:
            extra["grades"] = model.grades.to_grades()
        if model.engagement is not None:
            extra["engagement"] = model.engagement.to_engagement()
        return Model(
            rules=rules,
            points_per_logodds=model.points_per_logodds,
            intercept=model.intercept,
            name=model.name,
            **extra,
        )
