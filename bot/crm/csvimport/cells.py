"""Cell values of CRM exports as leadbot stores them: times, employee counts, e-mails, flags.

Times, in the formats HubSpot and Salesforce write them:

- ``2024-03-05``, ``2024-03-05 14:02``, ``2024-03-05 14:02:33``, ISO 8601 with ``T`` and an
  offset or ``Z`` (HubSpot's exports and Salesforce's API-style reports);
- ``3/5/2024``, ``3/5/2024 2:02 PM``, ``05/03/2024 14:02`` (Salesforce reports, in the
  exporting user's locale: month first in the US, day first in Europe);
- ``05.03.2024`` and ``05.03.2024 14:02`` (German-style locales: always day first).

A slashed date is read month first or day first as the whole file shows (a value like
``25/03/2024`` can only be day first), or as ``--date-order`` says. When neither decides, a
date whose day and month could be swapped (``3/5/2024``) is an error, never a guess.
A time without an offset is UTC: both CRMs export in the exporting user's time zone, which
the file does not say, and hours do not move a lead's score.

Employee counts: ``1200``, ``1,200``, ``1.200``, ``1 200``; a range ``501-1000`` (HubSpot's
dropdown values) counts as its midpoint, rounded down (750), and an open range ``10,001+``
or ``10000+`` as its lower bound, so the model's size bands see a representative number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

DateOrder = Literal["mdy", "dmy"]


class CellError(ValueError):
    """A cell that cannot be read; the message says what is wrong (the column is added by
    the caller)."""


_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_LOCAL = re.compile(
    r"(\d{1,2})([/.])(\d{1,2})\2(\d{4}),?"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AP]M)?)?",
    re.IGNORECASE,
)
_FORMATS = "2024-03-05 14:02, 3/5/2024 2:02 PM, 05/03/2024 14:02 or 05.03.2024"


def date_order(values: Iterable[str]) -> DateOrder | None:
    """The order a file's slashed dates are in, when one of them can only be read one way
    (a first number above 12 is a day, a second above 12 too); None when none decides or
    the file shows both."""
    month_first = day_first = False
    for value in values:
        match = _LOCAL.fullmatch(value.strip())
        if match is None or match.group(2) != "/":
            continue
        first, second = int(match.group(1)), int(match.group(3))
        day_first = day_first or first > 12
        month_first = month_first or second > 12
    if day_first == month_first:
        return None
    return "dmy" if day_first else "mdy"


def parse_time(text: str, order: DateOrder | None) -> float:
    """Unix seconds of an exported time (see the module for the formats)."""
    value = text.strip()
    if match := _ISO.fullmatch(value):
        year, month, day, hour, minute, second, offset = match.groups()
        return _unix(value, int(year), int(month), int(day), hour, minute, second, None, offset)
    if match := _LOCAL.fullmatch(value):
        first, sep, second_part, year, hour, minute, second, ampm = match.groups()
        a, b = int(first), int(second_part)
        if sep == ".":
            day, month = a, b
        elif a > 12 or b > 12 or a == b:
            day, month = (a, b) if a > 12 else (b, a)
        elif order is None:
            raise CellError(
                f"{value!r} is ambiguous: month {a} day {b}, or day {a} month {b}? "
                "give --date-order mdy or dmy"
            )
        else:
            month, day = (a, b) if order == "mdy" else (b, a)
        return _unix(value, int(year), month, day, hour, minute, second, ampm, None)
    raise CellError(f"{value!r} is not a date ({_FORMATS})")


def _unix(
    text: str, year: int, month: int, day: int, hour: str | None, minute: str | None,
    second: str | None, ampm: str | None, offset: str | None,
) -> float:  # fmt: skip
    h = int(hour or 0)
    if ampm is not None:
        if not 1 <= h <= 12:
            raise CellError(f"{text!r}: hour {h} with {ampm.upper()}")
        h = h % 12 + (12 if ampm.upper() == "PM" else 0)
    zone = UTC
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime(year, month, day, h, int(minute or 0), int(second or 0), tzinfo=zone)
    except ValueError as exc:
        raise CellError(f"{text!r} is not a date: {exc}") from None
    return moment.timestamp()


_COUNT = r"\d{1,3}(?:[,. \u00a0\u202f]\d{3})+|\d+"
_EMPLOYEES = re.compile(rf"({_COUNT})(?:\s*(?:-|–|to)\s*({_COUNT})|\s*(\+))?", re.IGNORECASE)


def employee_count(text: str) -> int:
    """A representative head count (see the module)."""
    match = _EMPLOYEES.fullmatch(text.strip())
    if match is None:
        raise CellError(f"{text.strip()!r} is not a number of employees (1200, 1,200, 501-1000)")
    low = _count(match.group(1))
    if match.group(2) is None:
        return low
    high = _count(match.group(2))
    if high < low:
        raise CellError(f"{text.strip()!r}: the range ends below its start")
    return (low + high) // 2


def _count(text: str) -> int:
    return int(re.sub(r"\D", "", text))


_EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]+")


def email(text: str) -> str:
    """A lower-cased e-mail address."""
    value = text.strip()
    if not _EMAIL.fullmatch(value):
        raise CellError(f"{value!r} is not an e-mail address")
    return value.lower()


_TRUE, _FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n", ""}


def flag(text: str) -> bool:
    """Salesforce's checkbox columns: 1/0, true/false, yes/no; empty is false."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CellError(f"{text.strip()!r} is not 1/0, true/false or yes/no")
