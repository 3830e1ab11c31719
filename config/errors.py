"""Configuration problems, and the wording used for them in every module of ``config/``.

A bad configuration never surfaces as a traceback: every check produces a :class:`Problem`
naming the file, the line and the field, and the loader raises them together as one
:class:`ConfigError` so the person fixing the file sees everything at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FieldPath = tuple[str | int, ...]
"""A position in the configuration data: mapping keys (str) and sequence indexes (int)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration, as ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem found in one configuration; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("a ConfigError needs at least one problem")
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """In file order (problems without a line first), then by field."""
    return sorted(problems, key=lambda p: (p.file, p.line or 0, p.field))


def format_path(path: FieldPath) -> str:
    """``('fit', 3, 'when', 'title')`` → ``fit[3].when.title``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def show(value: Any) -> str:
    """A bad value as the user would recognise it: strings quoted, YAML words for the rest."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def got(expected: str, value: Any) -> str:
    return f"expected {expected}, got {show(value)}"


def one_of_words(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def unknown_key(allowed: Iterable[str]) -> str:
    return f"unknown key; allowed keys: {one_of_words(allowed)}"


def bad_key(key: Any) -> str:
    hint = ""
    if isinstance(key, bool):
        hint = ": YAML reads unquoted yes/no/on/off as true/false, so quote the key"
    return f"keys here must be strings, got {show(key)}{hint}"


def duplicate_key(first_line: int) -> str:
    return f"duplicate key (first given at line {first_line}); YAML would keep only the last"


def duplicate_id(rule_id: str, first: str, first_line: int | None) -> str:
    where = f"{first}, line {first_line}" if first_line is not None else first
    return f"duplicate rule id {rule_id!r} (first used at {where}); ids must be unique"


def file_not_found() -> str:
    return "file not found"
