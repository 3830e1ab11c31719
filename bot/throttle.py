"""Log a repeated failure once per period, with how often it happened, not once per event.

An outage makes every request fail the same way; a traceback per request buries the one
line that matters and can fill a disk (a 20 s database stop at 100 req/s wrote 240k lines).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Throttled:
    """``failed(key, message)`` logs the first failure of ``key`` at once (with the
    traceback when ``exc_info``), then at most once per ``period`` seconds with the count of
    failures since; ``recovered(key)`` logs how many were suppressed, once it works again."""

    logger: logging.Logger
    period: float = 30.0
    clock: Callable[[], float] = time.monotonic
    level: int = logging.ERROR  # WARNING for what is the sender's fault, not ours
    _since: dict[str, tuple[float, int]] = field(default_factory=dict)

    def failed(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        now = self.clock()
        last = self._since.get(key)
        if last is None:
            self._since[key] = (now, 0)
            self.logger.log(self.level, message, *args, exc_info=exc_info)
            return
        at, suppressed = last
        if now - at < self.period:
            self._since[key] = (at, suppressed + 1)
            return
        self._since[key] = (now, 0)
        self.logger.log(
            self.level,
            message + " (%d more like it in the last %.0f s)", *args, suppressed + 1, now - at,
        )  # fmt: skip

    def recovered(self, key: str, message: str) -> None:
        last = self._since.pop(key, None)
        if last is not None:
            self.logger.warning("%s (after %d suppressed failure(s))", message, last[1])
