"""The decay sweep on a real database: leads scored by the pipeline, alerts delivered by the
dispatcher, then time passes and the sweep runs at a chosen ``now``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.ingest.pipeline import Pipeline
from bot.jobs.decay import decay_sweep
from bot.outbox.dispatcher import Dispatcher
from config.loader import LeadbotConfig
from config.schedules import Decay
from storage.ingest import HISTORY, LEADS, OUTBOX
from storage.outbox import Claimed
from tests.bot.conftest import DAY, IDEAL, T0, events, identify, page, track

CHANNEL = "#sales-alerts"


class Capture:
    def __init__(self) -> None:
        self.sent: list[Claimed] = []

    async def deliver(self, message: Claimed) -> None:
        self.sent.append(message)


@pytest.fixture
async def pipeline(engine: AsyncEngine, config: LeadbotConfig) -> AsyncIterator[Pipeline]:
    router = Router(config.routing, slack_channel=CHANNEL)
    async with Pipeline(engine, config, router=router) as pipeline:
        yield pipeline


async def _seed(engine: AsyncEngine, pipeline: Pipeline) -> Capture:
    """hot: leader 20 + software 10 + demo 30 = 60, alerted and delivered.
    warm: leader 20 + software 10 + pricing 10·2^(-Δt/7d), about 40.
    cold: pricing only, 10: below the warm edge (20)."""
    await pipeline.ingest(
        events(
            identify("hot", T0, **IDEAL),
            track("hot", "Demo Requested", T0),
            identify("warm", T0, **{**IDEAL, "email": "wes@acmesoft.com", "name": "Wes"}),
            page("warm", "/pricing", T0),
            page("cold", "/pricing", T0),
        ),
        now=T0,
    )
    capture = Capture()
    assert await Dispatcher(engine, capture, clock=lambda: T0).run_once() == 1
    return capture


async def _leads(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(LEADS))).mappings().all()
    return {row["id"]: dict(row) for row in rows}


async def _rows(engine: AsyncEngine, table: Any, *where: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(table).where(*where).order_by(table.c.id))).mappings()
        return [dict(row) for row in rows]


async def test_a_hot_lead_left_alone_cools_down_in_its_alerts_thread(
    engine: AsyncEngine, pipeline: Pipeline, config: LeadbotConfig
) -> None:
    capture = await _seed(engine, pipeline)
    assert capture.sent[0].destination == f"slack:{CHANNEL}"
    before = await _leads(engine)
    assert (before["hot"]["band"], before["hot"]["score"]) == ("hot", pytest.approx(60.0))

    later = T0 + 14 * DAY  # the demo's half-life: 30 → 15 points
    result = await decay_sweep(engine, config=config, model=config.model, now=later)

    after = await _leads(engine)
    assert after["hot"]["score"] == pytest.approx(45.0)
    assert (after["hot"]["band"], after["hot"]["intent"]) == ("warm", pytest.approx(15.0))
    assert after["hot"]["scored_at"].timestamp() == later
    (history,) = await _rows(
        engine, HISTORY, HISTORY.c.cause == "decay", HISTORY.c.lead_id == "hot"
    )
    assert (history["previous_band"], history["band"]) == ("hot", "warm")
    assert (history["previous_score"], history["score"]) == (pytest.approx(60), pytest.approx(45))
    (cooling,) = await _rows(engine, OUTBOX, OUTBOX.c.kind == "cooling")
    assert cooling["destination"] == f"slack:{CHANNEL}"
    assert cooling["lead_id"] == "hot"
    assert cooling["payload"] == {
        "lead": {"id": "hot", "email": "dana@acmesoft.com", "name": "Dana Reyes",
                 "company": "AcmeSoft"},
        "from": "hot",
        "to": "warm",
        "score": 45.0,
        "text": "Dana Reyes is cooling down: 45 points, now warm.",
        "thread_of": {"lead_id": "hot"},
    }  # fmt: skip
    assert (result.checked, result.updated, result.cooling) == (2, 2, 1)


async def test_only_leads_at_or_above_the_warm_edge_are_read(
    engine: AsyncEngine, pipeline: Pipeline, config: LeadbotConfig
) -> None:
    await _seed(engine, pipeline)
    before = await _leads(engine)
    assert before["cold"]["band"] == "cold"
    await decay_sweep(engine, config=config, model=config.model, now=T0 + 7 * DAY)
    after = await _leads(engine)
    # Its pricing visit halved too, but a cold lead has no band left to lose.
    assert after["cold"]["score"] == before["cold"]["score"] == pytest.approx(10.0)
    assert after["cold"]["scored_at"] == before["cold"]["scored_at"]


async def test_small_moves_are_stored_without_history(
    engine: AsyncEngine, pipeline: Pipeline, config: LeadbotConfig
) -> None:
    await _seed(engine, pipeline)
    # After a day: warm's pricing 10 → 9.06 (under the 5-point history delta), hot's demo
    # 30 → 28.6 (still hot).
    result = await decay_sweep(engine, config=config, model=config.model, now=T0 + DAY)
    after = await _leads(engine)
    assert after["warm"]["score"] == pytest.approx(30 + 10 * 2 ** (-1 / 7))
    assert after["hot"]["band"] == "hot"
    assert await _rows(engine, HISTORY, HISTORY.c.cause == "decay") == []
    assert await _rows(engine, OUTBOX, OUTBOX.c.kind == "cooling") == []
    assert (result.updated, result.history, result.cooling) == (2, 0, 0)


async def test_a_second_sweep_at_the_same_time_changes_nothing(
    engine: AsyncEngine, pipeline: Pipeline, config: LeadbotConfig
) -> None:
    await _seed(engine, pipeline)
    later = T0 + 14 * DAY
    await decay_sweep(engine, config=config, model=config.model, now=later)
    again = await decay_sweep(engine, config=config, model=config.model, now=later)
    assert (again.checked, again.updated, again.history, again.cooling) == (2, 0, 0, 0)
    assert len(await _rows(engine, OUTBOX, OUTBOX.c.kind == "cooling")) == 1


async def test_no_notice_when_turned_off_or_never_delivered(
    engine: AsyncEngine, pipeline: Pipeline, config: LeadbotConfig
) -> None:
    await pipeline.ingest(
        events(identify("hot", T0, **IDEAL), track("hot", "Demo Requested", T0)), now=T0
    )
    # The alert is still pending: there is no posted alert whose thread to answer.
    result = await decay_sweep(engine, config=config, model=config.model, now=T0 + 14 * DAY)
    assert (result.history, result.cooling) == (1, 0)
    await Dispatcher(engine, Capture(), clock=lambda: T0).run_once()
    await pipeline.ingest(events(track("hot", "Demo Requested", T0 + 20 * DAY)), now=T0 + 20 * DAY)
    quiet = dataclasses.replace(config, decay=Decay(cooling_notice=False))
    result = await decay_sweep(engine, config=quiet, model=config.model, now=T0 + 40 * DAY)
    assert result.history == 1
    assert result.cooling == 0
    assert await _rows(engine, OUTBOX, OUTBOX.c.kind == "cooling") == []
