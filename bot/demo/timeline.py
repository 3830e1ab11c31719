"""When a demo lead acts, and the Segment calls it makes.

Times are integer milliseconds since the window's start, so the stream is exact and sorts
without float ties. A lead's sessions fall in its local working hours (evenings now and
then), weekdays more often than weekends, and never go back in time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.demo import vocab

SECOND_MS = 1_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEKDAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 0.9, 0.3, 0.2)  # Monday first
SESSION_ROOM_MS = 2 * HOUR_MS  # a session starts at least this long before the window ends

# A call waiting for its messageId and timestamp: (time, creation order, body).
Pending = tuple[int, int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Window:
    """``days`` whole days from ``start`` (an aware datetime, kept in UTC)."""

    start: datetime
    days: int

    @property
    def end_ms(self) -> int:
        return self.days * DAY_MS

    def midnight_ms(self, day: int) -> int:
        """The UTC midnight of the window's ``day``-th calendar day, relative to start."""
        base = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        return (base - self.start) // timedelta(milliseconds=1) + day * DAY_MS

    def weekday(self, day: int) -> int:
        return (self.start.weekday() + day) % 7

    def iso(self, ms: int) -> str:
        """Segment's format: ISO 8601 in UTC, milliseconds, ``Z``."""
        at = self.start + timedelta(milliseconds=ms)
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class Clock:
    """One lead's time: sessions move forward, calls within a session are seconds apart."""

    def __init__(self, rng: random.Random, window: Window, utc_offset_hours: float) -> None:
        self._rng = rng
        self._window = window
        self._offset_ms = round(utc_offset_hours * HOUR_MS)
        self._last: int | None = None
        self._next = 0

    def session(self, lo: float, hi: float) -> None:
        """Start a session on a day in the fractions ``[lo, hi)`` of the window."""
        days = self._window.days
        first = math.floor(lo * days)
        if self._last is not None:
            first = max(first, self._last // DAY_MS)
        first = min(first, days - 1)
        last = min(days, max(first + 1, math.ceil(hi * days)))
        candidates = list(range(first, last))
        weights = [WEEKDAY_WEIGHTS[self._window.weekday(d)] for d in candidates]
        for _ in range(40):
            day = self._rng.choices(candidates, weights)[0]
            at = self._window.midnight_ms(day) + self._local_start_ms() - self._offset_ms
            if self._fits(at):
                self._next = at
                return
        # No working hour fits (a tiny window, or one full day already used): carry on.
        after = 0 if self._last is None else self._last + 15 * 60 * SECOND_MS
        self._next = min(after, max(0, self._window.end_ms - SESSION_ROOM_MS))

    def _local_start_ms(self) -> int:
        rng = self._rng
        hour = rng.uniform(19.0, 22.0) if rng.random() < 0.08 else rng.uniform(8.0, 17.5)
        return round(hour * HOUR_MS) + rng.randrange(SECOND_MS)

    def _fits(self, at: int) -> bool:
        after_last = self._last is None or at > self._last + 10 * 60 * SECOND_MS
        return after_last and 0 <= at < self._window.end_ms - SESSION_ROOM_MS

    def tick(self) -> int:
        """The time of the next call: the session's start, then 20 s – 4 min after the last."""
        at = max(self._next, 0 if self._last is None else self._last)
        at = min(at, self._window.end_ms - 1)
        self._last = at
        self._next = at + self._rng.randint(20 * SECOND_MS, 240 * SECOND_MS)
        return at


class Writer:
    """Appends one lead's Segment calls to a shared list, under its current ids."""

    def __init__(
        self,
        clock: Clock,
        out: list[Pending],
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> None:
        self.clock = clock
        self.user_id = user_id
        self.anonymous_id = anonymous_id
        self._out = out
        self._referrer: str | None = None

    def session(self, lo: float, hi: float, referrer: str | None = None) -> None:
        self.clock.session(lo, hi)
        self._referrer = referrer

    def _emit(self, body: dict[str, Any]) -> None:
        ids: dict[str, Any] = {}
        if self.user_id is not None:
            ids["userId"] = self.user_id
        if self.anonymous_id is not None:
            ids["anonymousId"] = self.anonymous_id
        self._out.append((self.clock.tick(), len(self._out), ids | body))

    def identify(self, traits: dict[str, Any]) -> None:
        self._emit({"type": "identify", "traits": traits})

    def track(self, event: str, properties: dict[str, Any] | None = None) -> None:
        self._emit({"type": "track", "event": event, "properties": properties or {}})

    def alias(self, previous_id: str) -> None:
        self._emit({"type": "alias", "previousId": previous_id})

    def page(self, path: str) -> None:
        """A page view; the session's referrer goes on its first page only."""
        if path in vocab.PAGE_NAMES:
            name = title = vocab.PAGE_NAMES[path]
        else:  # /blog/<slug> and the like
            section, slug = path.strip("/").split("/", 1)
            name = vocab.PAGE_NAMES[section]
            title = f"{slug.replace('-', ' ').capitalize()} | {name}"
        properties: dict[str, Any] = {"path": path, "url": vocab.SITE + path, "title": title}
        if self._referrer is not None:
            properties["referrer"] = self._referrer
            self._referrer = None
        self._emit({"type": "page", "name": name, "properties": properties})
