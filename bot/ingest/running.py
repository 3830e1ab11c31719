"""The running ingest side: pipeline, group committer and the percentile band edges, started
and stopped together — in the server process (thread mode) or in the writer process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.ingest.batcher import GroupCommitter
from bot.ingest.pipeline import Pipeline
from bot.models.edges import BandEdges, OnRefresh, following_band_edges
from config.loader import LeadbotConfig
from scoring.bands import Thresholds


@contextlib.asynccontextmanager
async def running_ingest(
    engine: AsyncEngine,
    config: LeadbotConfig,
    *,
    clock: Callable[[], float],
    on_alert: Callable[[], None] | None = None,
    max_events: int = 5_000,
    inline: bool = False,
    router: Router | None = None,
    edges: BandEdges | None = None,
) -> AsyncIterator[GroupCommitter]:
    """A started ``GroupCommitter``; on exit, queued requests are answered and it stops.
    ``inline``: see ``Pipeline.inline``. ``edges``: a holder the rest of the process reads
    (the server's commands), kept fresh together with the pipeline's edges."""
    pipeline = Pipeline(engine, config, inline=inline, router=router or Router())
    async with pipeline, following_percentiles(pipeline, edges):
        committer = GroupCommitter(pipeline, clock=clock, max_events=max_events, on_alert=on_alert)
        runner = asyncio.create_task(committer.run())
        try:
            yield committer
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


def _edges_of(pipeline: Pipeline, edges: BandEdges | None) -> tuple[BandEdges, OnRefresh]:
    """A holder for the pipeline's bands (``edges`` when given), and the hook that hands
    each refresh to the pipeline."""

    def use(thresholds: Thresholds) -> None:
        pipeline.thresholds = thresholds

    return edges or BandEdges(pipeline.model.bands), use


@contextlib.asynccontextmanager
async def following_percentiles(
    pipeline: Pipeline, edges: BandEdges | None = None
) -> AsyncIterator[None]:
    """Keeps the pipeline's band edges (and ``edges``, when given) on the score
    distribution when the model's bands are percentiles (``bot.models.edges``); does nothing
    otherwise."""
    holder, use = _edges_of(pipeline, edges)
    async with following_band_edges(holder, pipeline.engine, on_refresh=use):
        yield
