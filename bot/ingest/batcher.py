"""Group commit: requests that arrive while a transaction is running share the next one.

Each request is answered only after the transaction holding its events has committed, so
a 202 always means "stored". Under load many requests share one commit; alone, a request
pays for one commit as it would anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.ingest.inbound import InboundEvent
from bot.ingest.pipeline import IngestResult, Pipeline
from bot.throttle import Throttled
from storage.health import is_outage

log = logging.getLogger(__name__)
FAILURES = Throttled(log)


@dataclass
class _Pending:
    events: Sequence[InboundEvent]
    done: asyncio.Future[IngestResult]


class GroupCommitter:
    """Feeds queued requests to ``Pipeline.ingest_many`` in groups of up to ``max_events``."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        clock: Callable[[], float],
        max_events: int = 5_000,
        on_alert: Callable[[], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.clock = clock
        self.max_events = max_events
        self.on_alert = on_alert
        self._queue: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def alive(self) -> bool:
        """Whether requests are being committed (false once stopped)."""
        return not self._closed

    async def submit(self, events: Sequence[InboundEvent]) -> IngestResult:
        """Queue one request's events; returns once they are committed (or raises)."""
        if self._closed:
            raise RuntimeError("leadbot is shutting down")
        done: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(events, done))
        self._wake.set()
        return await done

    def _take(self) -> list[_Pending]:
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].events) <= self.max_events):
            item = self._queue.popleft()
            if not item.done.cancelled():
                group.append(item)
                size += len(item.events)
        return group

    async def run(self) -> None:
        """The writer loop; run it as a background task, cancel it to stop."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while group := self._take():
                    await self._commit(group)
        finally:
            self._closed = True
            for item in self._queue:
                if not item.done.done():
                    item.done.set_exception(RuntimeError("leadbot is shutting down"))

    async def _commit(self, group: list[_Pending]) -> None:
        outcomes, alerts = await commit_isolated(
            self.pipeline, [p.events for p in group], now=self.clock()
        )
        for item, outcome in zip(group, outcomes, strict=True):
            _settle(item, outcome)
        if alerts and self.on_alert is not None:
            self.on_alert()


Outcome = IngestResult | Exception


async def commit_isolated(
    pipeline: Pipeline, requests: Sequence[Sequence[InboundEvent]], *, now: float
) -> tuple[list[Outcome], int]:
    """Commit requests together; if that fails, one by one, so one bad request cannot sink
    its neighbours — unless the database itself is down, when every request fails at once
    (retrying each alone would only multiply the failures). Returns each request's result
    or error, and the alerts queued."""
    try:
        done = await pipeline.ingest_many(requests, now=now)
    except Exception as exc:
        if len(requests) == 1 or is_outage(exc):
            FAILURES.failed(
                "commit", "ingest failed; nothing of %d request(s) was stored: %s",
                len(requests), exc, exc_info=not is_outage(exc),
            )  # fmt: skip
            return [exc] * len(requests), 0
        log.warning("group of %d requests failed (%s); retrying one by one", len(requests), exc)
        outcomes: list[Outcome] = []
        alerts = 0
        for request in requests:
            one, queued = await commit_isolated(pipeline, [request], now=now)
            outcomes += one
            alerts += queued
        return outcomes, alerts
    FAILURES.recovered("commit", "ingest commits again")
    return list(done.results), done.alerts


def _settle(item: _Pending, outcome: Outcome) -> None:
    if item.done.done():
        return
    if isinstance(outcome, Exception):
        item.done.set_exception(outcome)
    else:
        item.done.set_result(outcome)
