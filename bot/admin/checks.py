"""The vocabulary of ``leadbot doctor``: a :class:`Check` line, the :class:`Context` the
checks fill in as they go, and the one-line reason an exception gives."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from config.loader import LeadbotConfig
from config.settings import Settings

Status = Literal["OK", "WARN", "FAIL"]
OK: Status = "OK"
WARN: Status = "WARN"
FAIL: Status = "FAIL"

TIMEOUT = 5.0  # seconds per check


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report. ``detail`` may span lines; ``fix`` is empty when OK."""

    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Context:
    """What the checks learn as they go, in order: settings, config, then the database."""

    environ: Mapping[str, str]
    timeout: float = TIMEOUT
    now: float = field(default_factory=time.time)
    settings: Settings | None = None
    bad: dict[str, str] = field(default_factory=dict)  # variable → the loader's message
    config: LeadbotConfig | None = None
    engine: AsyncEngine | None = None  # set once the database answered
    revision: str | None = None
    schema_current: bool = False


CheckFn = Callable[[Context], Awaitable[list[Check]]]


def ok(name: str, detail: str) -> list[Check]:
    return [Check(name, OK, detail)]


def warn(name: str, detail: str, fix: str) -> list[Check]:
    return [Check(name, WARN, detail, fix)]


def fail(name: str, detail: str, fix: str) -> list[Check]:
    return [Check(name, FAIL, detail, fix)]


def not_checked(name: str, why: str) -> list[Check]:
    return [Check(name, WARN, f"not checked: {why}")]


def reason(exc: BaseException) -> str:
    """The innermost useful error, on one line: a driver's error rather than SQLAlchemy's
    wrapper, the cause a requests or urllib3 error carries."""
    for _ in range(5):
        if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException):
            exc = exc.orig
        elif isinstance(getattr(exc, "reason", None), BaseException):
            exc = exc.reason  # type: ignore[attr-defined]
        elif exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        else:
            break
    text = " ".join(str(exc).split()) or "no message"
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}"
