"""What a rep is told, and what the log says, when their command or click fails: the same
words in Slack and Teams."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from storage.health import is_database_outage

OUTAGE_NOTICE = "the database is unreachable right now; try again in a minute"


@dataclass(frozen=True, slots=True)
class Failure:
    notice: str  # plain text for the rep (the adapter escapes it)
    level: int  # how loud the log line is
    traceback: bool  # whether the log carries it: only for what may be a bug


def failure(error: Exception) -> Failure:
    """A ``ValueError`` is the request's own fault (an unknown lead): its message, no
    trace. An outage is nobody's bug: a warning, and the rep told to try again. Anything
    else is logged with its traceback and shown as an internal error."""
    if isinstance(error, ValueError):
        return Failure(str(error), logging.INFO, traceback=False)
    if is_database_outage(error):
        return Failure(OUTAGE_NOTICE, logging.WARNING, traceback=False)
    return Failure("an internal error", logging.ERROR, traceback=True)


def sorry(notice: str) -> str:
    return f"Sorry, that did not work: {notice}. Nothing was changed."
