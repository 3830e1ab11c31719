"""How background work waits out a database outage: it tries again after 5 s, then 10 s, …
up to a minute between tries, so an outage delays the work instead of dropping it, and a
long one costs a try a minute, not a stream of them."""

from __future__ import annotations

from dataclasses import dataclass, field

RETRY_FIRST = 5.0
RETRY_MOST = 60.0


@dataclass
class Backoff:
    """The wait before each next try: ``first``, doubled each time, at most ``most``."""

    first: float = RETRY_FIRST
    most: float = RETRY_MOST
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._next = self.first

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self.most)
        return wait

    def reset(self) -> None:
        self._next = self.first
