"""Live band edges (``bot.models.edges``): one holder, refreshed by one coroutine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from bot.models.edges import BandEdges, following_band_edges
from config.loader import load_config
from scoring.bands import Thresholds
from storage.engine import create_engine
from tests.bot.conftest import SMALL_MODEL, T0, events, identify

MEDIAN_HOT = SMALL_MODEL.replace(
    "bands: {warm: 20, hot: 50}", "bands: {warm: 10, hot: {percentile: 50, min_points: 15}}"
)


async def _until(edges: BandEdges, expected: Thresholds) -> None:
    for _ in range(200):
        if edges.current == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"edges stayed {edges.current}, expected {expected}")


async def test_following_refreshes_the_holder_and_tells_the_listener(
    engine: AsyncEngine,
) -> None:
    config = load_config(text=MEDIAN_HOT, name="median.yaml")
    async with Pipeline(engine, config) as pipeline:
        calls = [
            identify("a", T0, title="VP"),
            identify("b", T0, title="VP", company={"industry": "SaaS"}),
        ]
        await pipeline.ingest(events(*calls), now=T0)  # scores 20 and 30
    edges = BandEdges(config.model.bands)
    assert edges.live
    assert edges.current == Thresholds(warm=10, hot=15)  # the floor until a refresh
    heard: list[Thresholds] = []
    async with following_band_edges(edges, engine, on_refresh=heard.append, every=0.01):
        await _until(edges, Thresholds(warm=10, hot=25))
        async with Pipeline(engine, config) as pipeline:
            more = identify("c", T0, title="VP", company={"industry": "SaaS"})
            await pipeline.ingest(events(more), now=T0)  # 20, 30, 30
        await _until(edges, Thresholds(warm=10, hot=30))
    assert heard[0] == Thresholds(warm=10, hot=25)
    assert heard[-1] == Thresholds(warm=10, hot=30)
    settled = len(heard)
    await asyncio.sleep(0.05)
    assert len(heard) == settled  # the task stopped with the block


async def test_a_failed_read_keeps_the_last_edges(tmp_path: Path) -> None:
    config = load_config(text=MEDIAN_HOT, name="median.yaml")
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path}/never-migrated.db")
    edges = BandEdges(config.model.bands)
    edges.current = Thresholds(warm=10, hot=42)
    heard: list[Thresholds] = []
    try:
        async with following_band_edges(edges, broken, on_refresh=heard.append, every=0.01):
            await asyncio.sleep(0.05)  # several attempts, each failing: no such table
    finally:
        await broken.dispose()
    assert (edges.current, heard) == (Thresholds(warm=10, hot=42), [])


async def test_fixed_bands_are_never_re_read(tmp_path: Path) -> None:
    config = load_config(text=SMALL_MODEL, name="small.yaml")
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path}/never-migrated.db")
    edges = BandEdges(config.model.bands)
    heard: list[Thresholds] = []
    try:
        async with following_band_edges(edges, broken, on_refresh=heard.append, every=0.01) as e:
            await asyncio.sleep(0.03)
    finally:
        await broken.dispose()
    assert e is edges
    assert not edges.live
    assert (edges.current, heard) == (Thresholds(warm=20, hot=50), [])
