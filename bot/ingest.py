"""The running ingest side: pipeline, group committer and the percentile band edges, started
and stopped together — in the server process (thread mode) or in the writer process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.batcher import GroupCommitter
from bot.pipeline import Pipeline
from bot.routing import Router
from config.loader import LeadbotConfig
from scoring.bands import resolve_thresholds
from storage.engine import session_factory
from storage.leads import current_scores

log = logging.getLogger(__name__)

THRESHOLD_REFRESH_SECONDS = 60.0


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
) -> AsyncIterator[GroupCommitter]:
    """A started ``GroupCommitter``; on exit, queued requests are answered and it stops.
    ``inline``: see ``Pipeline.inline``."""
    pipeline = Pipeline(engine, config, inline=inline, router=router or Router())
    async with pipeline, following_percentiles(pipeline):
        committer = GroupCommitter(pipeline, clock=clock, max_events=max_events, on_alert=on_alert)
        runner = asyncio.create_task(committer.run())
        try:
            yield committer
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


@contextlib.asynccontextmanager
async def following_percentiles(pipeline: Pipeline) -> AsyncIterator[None]:
    """Keeps the pipeline's band edges on the score distribution when the model's bands
    are percentiles; does nothing otherwise."""
    if not pipeline.model.bands.uses_percentiles:
        yield
        return
    task = asyncio.create_task(follow_percentiles(pipeline))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def follow_percentiles(pipeline: Pipeline) -> None:
    """Percentile bands follow the current score distribution, re-read once a minute —
    off the ingest path, which uses the last edges computed here."""
    sessions = session_factory(pipeline.engine)
    while True:
        try:
            async with sessions() as session:
                scores = await current_scores(session)
            pipeline.thresholds = resolve_thresholds(pipeline.model.bands, scores)
        except Exception:
            log.exception("could not refresh percentile band edges; keeping the last ones")
        await asyncio.sleep(THRESHOLD_REFRESH_SECONDS)
