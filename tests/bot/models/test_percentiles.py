"""Percentile bands follow the score distribution, refreshed off the ingest path."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from bot.ingest.running import following_percentiles
from config.loader import load_config
from tests.bot.conftest import SMALL_MODEL, T0, events, identify, page

PERCENTILE_MODEL = SMALL_MODEL.replace(
    "bands: {warm: 20, hot: 50}", "bands: {warm: 20, hot: {percentile: 80, min_points: 25}}"
)


async def test_the_hot_edge_becomes_the_80th_percentile_of_current_scores(
    sqlite_engine: AsyncEngine,
) -> None:
    config = load_config(text=PERCENTILE_MODEL, name="percentile.yaml")
    async with Pipeline(sqlite_engine, config) as pipeline:
        assert pipeline.thresholds.hot == 25  # no scores yet: the floor
        # ten leads: five sales leaders (20), four at SaaS companies who saw pricing (40), one
        # who saw it three times (60)
        calls = [identify(f"u{i}", T0, title="VP Sales") for i in range(5)]
        calls += [identify(f"s{i}", T0, title="VP Sales", company={"industry": "SaaS"})
                  for i in range(4)]  # fmt: skip
        calls += [page(f"s{i}", "/pricing", T0) for i in range(4)]
        calls += [identify("top", T0, title="VP Sales", company={"industry": "SaaS"})]
        calls += [page("top", "/pricing", T0 + i) for i in range(3)]
        await pipeline.ingest(events(*calls), now=T0 + 10)
        async with following_percentiles(pipeline):  # what running_ingest starts
            for _ in range(100):
                if pipeline.thresholds.hot != 25:
                    break
                await asyncio.sleep(0.01)
    # scores: five at 20, four at 40, one at 60 → the 80th percentile is 40
    assert pipeline.thresholds.hot == pytest.approx(40, abs=0.01)  # 10 s of decay
    assert pipeline.thresholds.warm == 20
