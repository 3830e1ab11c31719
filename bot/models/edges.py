"""Live band edges: percentile bands follow the current score distribution.

Each process that scores keeps its own ``BandEdges`` fresh with ``following_band_edges``:
the ingest side (the writer process, or the server in thread mode) for stored bands and
alerts, and the server for what ``/lead`` answers and buttons show. Fixed bands need no
refreshing and start no task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.throttle import Throttled
from scoring.bands import Thresholds, default_thresholds, resolve_thresholds
from scoring.model import BandSpec
from storage.engine import session_factory
from storage.health import is_outage
from storage.leads import current_scores

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0

OnRefresh = Callable[[Thresholds], None]


@dataclass
class BandEdges:
    """The edges to score with now: the fixed edges (or percentile floors) until the first
    ``refresh`` reads the score distribution."""

    spec: BandSpec
    current: Thresholds = field(init=False)

    def __post_init__(self) -> None:
        self.current = default_thresholds(self.spec)

    @property
    def live(self) -> bool:
        """Whether the edges move with the scores (some band is a percentile)."""
        return self.spec.uses_percentiles

    async def refresh(self, engine: AsyncEngine) -> Thresholds:
        """Re-read every lead's score and resolve the edges from them."""
        async with session_factory(engine)() as session:
            scores = await current_scores(session)
        self.current = resolve_thresholds(self.spec, scores)
        return self.current


async def follow_band_edges(
    edges: BandEdges,
    engine: AsyncEngine,
    *,
    on_refresh: OnRefresh | None = None,
    every: float = REFRESH_SECONDS,
) -> None:
    """Refresh ``edges`` now and every ``every`` seconds until cancelled, off any request
    path; ``on_refresh`` gets each new value. A failed read keeps the last edges."""
    failures = Throttled(log, period=600.0)
    while True:
        try:
            thresholds = await edges.refresh(engine)
        except Exception as exc:
            failures.failed(
                "refresh", "could not refresh percentile band edges; keeping the last ones: %r",
                exc, exc_info=not is_outage(exc),
            )  # fmt: skip
        else:
            failures.recovered("refresh", "percentile band edges refresh again")
            if on_refresh is not None:
                on_refresh(thresholds)
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def following_band_edges(
    edges: BandEdges,
    engine: AsyncEngine,
    *,
    on_refresh: OnRefresh | None = None,
    every: float = REFRESH_SECONDS,
) -> AsyncIterator[BandEdges]:
    """``follow_band_edges`` in a task for the duration of the block, when the bands are
    percentiles; fixed edges are yielded as they are."""
    if not edges.live:
        yield edges
        return
    task = asyncio.create_task(follow_band_edges(edges, engine, on_refresh=on_refresh, every=every))
    try:
        yield edges
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
