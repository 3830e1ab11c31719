"""Conditions as written in YAML: ``path: {operator: value}`` or the bare-value shorthand.

Each operator is a field of :class:`ConditionSpec` named after a :class:`scoring.Op`, so the
list of allowed operators in an error message comes from the type, not from a copy of it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from config.errors import got, one_of_words, show
from scoring import Condition, Op, Scale
from scoring.model import compile_pattern


class Strict(BaseModel):
    """Base of every YAML section: unknown keys are errors, types are not coerced
    (``points: "20"`` is a mistake worth reporting, not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError(got("a string, number or true/false", value))


def _one_of_item(value: Any) -> Any:
    # YAML 1.1 reads unquoted no/yes/on/off as booleans: `one_of: [SE, NO]` loses Norway.
    if isinstance(value, bool):
        return _bool_hint(value)
    if isinstance(value, str | int):
        return value
    raise ValueError(got("a string", value))


def _bool_hint(value: bool) -> Any:
    raise ValueError(
        f"expected a string, got {show(value)}: YAML reads unquoted yes/no/on/off as "
        "true/false, so quote the value (for example 'NO')"
    )


def _valid_regex(value: str) -> str:
    try:
        compile_pattern(value)
    except re.error as err:
        where = f" at position {err.pos}" if err.pos is not None else ""
        raise ValueError(f"invalid regular expression {value!r}: {err.msg}{where}") from None
    return value


def _condition_path(value: str) -> str:
    parts = value.split(".")
    if not value or any(not part.strip() for part in parts):
        raise ValueError(
            f"a condition path is dotted names such as company.employee_count, got {value!r}"
        )
    return value


ConditionPath = Annotated[str, AfterValidator(_condition_path)]


class RangeSpec(Strict):
    """``min`` inclusive, ``max`` exclusive; at least one of them."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeSpec:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(
                f"min ({self.min:g}) must be below max ({self.max:g}): "
                "min is inclusive and max exclusive, so this range matches nothing"
            )
        return self


class ScaleSpec(Strict):
    """Points in proportion to a number: none at or below ``from``, the rule's whole
    points at or above ``to``, a straight line between."""

    trait: ConditionPath
    low: float = Field(alias="from")
    high: float = Field(alias="to")

    @model_validator(mode="after")
    def _bounds(self) -> ScaleSpec:
        if not self.low < self.high:
            raise ValueError(
                f"from ({self.low:g}) must be below to ({self.high:g}): the points grow "
                "from nothing at from to the rule's whole points at to"
            )
        return self

    def to_scale(self) -> Scale:
        return Scale(tuple(self.trait.split(".")), self.low, self.high)


class ConditionSpec(Strict):
    """Exactly one operator. A bare value (``title: CEO``) is shorthand for ``equals``."""

    equals: Annotated[Any, AfterValidator(_plain_scalar)] = None
    one_of: list[Annotated[Any, AfterValidator(_one_of_item)]] | None = None
    range: RangeSpec | None = None
    pattern: Annotated[str, AfterValidator(_valid_regex)] | None = None
    exists: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        if isinstance(value, list):
            raise ValueError(got("a condition such as {one_of: [a, b]} or a plain value", value))
        if value is None:
            raise ValueError(
                got("a condition such as {equals: X} or {exists: true}, or a plain value", value)
            )
        return {Op.EQUALS.value: value}

    @model_validator(mode="after")
    def _exactly_one(self) -> ConditionSpec:
        given = [name for name in type(self).model_fields if name in self.model_fields_set]
        if len(given) != 1:
            found = f"{len(given)}: {one_of_words(given)}" if given else "none"
            raise ValueError(
                f"needs exactly one operator ({one_of_words(type(self).model_fields)}), got {found}"
            )
        if getattr(self, given[0]) is None:
            raise ValueError(f"{given[0]} needs a value")
        return self

    def to_condition(self, path: str) -> Condition:
        """The scoring form: one_of lower-cased, range as floats, pattern compiled."""
        keys = tuple(path.split("."))
        if self.one_of is not None:
            return Condition(keys, Op.ONE_OF, frozenset(str(v).lower() for v in self.one_of))
        if self.range is not None:
            return Condition(keys, Op.RANGE, (self.range.min, self.range.max))
        if self.pattern is not None:
            return Condition(keys, Op.PATTERN, compile_pattern(self.pattern))
        if self.exists is not None:
            return Condition(keys, Op.EXISTS, self.exists)
        return Condition(keys, Op.EQUALS, self.equals)


Conditions = dict[ConditionPath, ConditionSpec]


def to_conditions(conditions: Conditions | None) -> tuple[Condition, ...]:
    return tuple(spec.to_condition(path) for path, spec in (conditions or {}).items())
