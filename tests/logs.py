"""What background loops log, read from pytest's ``caplog``: the records that say something,
and a wait until one does (the loops run as tasks; their log is what they tell an admin)."""

from __future__ import annotations

import asyncio
import logging

import pytest


def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """The records whose message contains ``text``."""
    return [r for r in caplog.records if text in r.getMessage()]


async def until_logged(
    caplog: pytest.LogCaptureFixture, text: str, *, seconds: float = 10.0
) -> None:
    """Until a record containing ``text`` is logged (TimeoutError after ``seconds``)."""
    async with asyncio.timeout(seconds):
        while not logged(caplog, text):  # noqa: ASYNC110 (records are a list, not an event)
            await asyncio.sleep(0.01)


def warned_once(caplog: pytest.LogCaptureFixture, text: str) -> logging.LogRecord:
    """The one record containing ``text``: a warning without a traceback (an outage is
    nobody's bug)."""
    [record] = logged(caplog, text)
    assert record.levelno == logging.WARNING, record.levelname
    assert not record.exc_info
    return record
