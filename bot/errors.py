"""Errors the bot answers to its callers with.

Every message here may be returned to whoever sent the request, so none of them ever quotes a
secret; they name the field and the bad value instead.
"""

from dataclasses import dataclass
from typing import Any


class SignatureError(Exception):
    """A webhook request whose signature could not be verified.

    `reason` is safe to send back to the caller: it says what was wrong with the request
    (a missing header, a stale timestamp), never which secret was expected.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InputError(Exception):
    """A webhook body that cannot be accepted, with every problem found in it.

    `status` is 413 when any problem is a size limit, else 400. `problems` holds
    `(field path, message)` pairs, e.g. `("batch[3].timestamp", "not an ISO 8601 time: 'x'")`;
    the path is "" when the problem is the body as a whole.
    """

    def __init__(self, status: int, problems: list[tuple[str, str]]) -> None:
        if not problems:
            raise ValueError("InputError needs at least one problem")
        super().__init__("; ".join(_line(field, msg) for field, msg in problems))
        self.status = status
        self.problems = problems

    def to_json(self) -> dict[str, Any]:
        """The response body: the first problem up front, all of them under `errors`."""
        field, message = self.problems[0]
        return {
            "error": message,
            "field": field,
            "errors": [{"field": f, "message": m} for f, m in self.problems],
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """A chat request refused before its SDK sees it (``bot.slack.gate``, ``bot.teams.gate``):
    401 when it is not the platform's, 400 when it cannot be read. ``reason`` is the label
    of the rejected-requests metric."""

    status: int
    reason: str  # "signature" | "invalid"
    error: str
    field: str

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "field": self.field}


def _line(field: str, message: str) -> str:
    return f"{field}: {message}" if field else message


def field_at(prefix: str, name: str) -> str:
    """The path of ``name`` inside the field at ``prefix`` (``batch[3]`` + ``timestamp``)."""
    return f"{prefix}.{name}" if prefix else name


def json_kind(value: Any) -> str:
    """A JSON value's type, as the client wrote it, for "expected …, got …"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"the number {value!r}"


def shown(value: Any) -> str:
    """A bad value for an error message, cut short (it goes back to the caller): strings and
    numbers as written, anything else by its kind, so no structure is echoed whole."""
    is_scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
    text = repr(value) if is_scalar else json_kind(value)
    return text if len(text) <= 80 else text[:77] + "..."
