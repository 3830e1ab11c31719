"""Turn pydantic validation errors into Problems a person can act on.

pydantic reports ``loc`` tuples and generic messages (``Input should be a valid number``).
Here each ``loc`` becomes a field path and a line from the YAML marks, and each error type a
short message that quotes the bad value and, for unknown keys, lists the allowed ones,
read from the schema types themselves.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.errors import (
    FieldPath,
    Problem,
    bad_key,
    format_path,
    got,
    one_of_words,
    show,
    unknown_key,
)
from config.rules import RULE_CHECK
from config.yamlmarks import Marks

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}
_COMPLETE = {RULE_CHECK}  # error types whose message needs nothing added
_KEY = "[key]"  # pydantic's loc marker for a bad dict key


def problems_from(
    err: ValidationError, root: type[BaseModel], marks: Marks, name: str
) -> list[Problem]:
    """One Problem per pydantic error, placed at the nearest line the YAML marks know."""
    problems = []
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        path: FieldPath = tuple(part for part in loc if part != _KEY)
        where = path
        if error["type"] == "invalid_key":  # loc ends in a stand-in for the bad key
            path = path[:-1]
            where = (*path, str(error.get("input")))
        message = describe(error, allowed_keys(root, loc[:-1]), allowed_keys(root, loc))
        problems.append(Problem(name, marks.line_for(where), format_path(path), message))
    return problems


def describe(
    error: ErrorDetails, parent_keys: list[str] | None, own_keys: list[str] | None = None
) -> str:
    """The message for one error. ``parent_keys`` are the keys allowed beside the field (for
    an unknown key), ``own_keys`` the keys the field itself takes (for a wrong type)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return unknown_key(parent_keys or [])
    if kind == "invalid_key" or (kind == "string_type" and error["loc"][-1:] == (_KEY,)):
        return bad_key(value)
    if kind in ("model_type", "dict_type") and own_keys:
        return got(f"a mapping with keys {one_of_words(own_keys)}", value)
    if kind in _EXPECTED:
        return got(_EXPECTED[kind], value)
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {show(ctx.get(key))}, got {show(value)}"
    if kind in ("literal_error", "enum"):
        return f"expected {ctx.get('expected')}, got {show(value)}"
    return _plain(error)


def _plain(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    if error["type"] in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if error["type"] in _COMPLETE:
        return error["msg"]
    if error["type"] in _EXPECTED:
        return got(_EXPECTED[error["type"]], error.get("input"))
    return f"{error['msg']}, got {show(error.get('input'))}"


def allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys the model at ``loc`` accepts (aliases where set), or None if ``loc`` is not a
    model. Walks the field annotations, so the list is never out of date."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if _is_model(current):
            field = _field(current, part)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is list and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict and part != _KEY:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    if not _is_model(current):
        return None
    return [f.alias or name for name, f in current.model_fields.items()]


def _field(model: type[BaseModel], part: Any) -> Any:
    for name, field in model.model_fields.items():
        if part in (name, field.alias):
            return field
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` → X; ``X | None`` → X."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp
