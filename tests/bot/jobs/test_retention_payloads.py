"""Retention of raw event payloads: those received more than ``retention.event_payload_days``
ago become ``{}``, batch by batch, from where the last run stopped; the event rows stay, so
a replay of an old message is still a duplicate, and no score moves, stored or rescored.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from bot.jobs.retention import retention_sweep
from bot.models.rescore import rescore
from config.errors import ConfigError
from config.loader import LeadbotConfig, load_config
from storage.retention import EVENTS, first_unpruned_event, prune_event_payloads
from storage.tables import Lead
from tests.bot.conftest import DAY, IDEAL, SMALL_MODEL, T0, events, identify, page, track

LEADS = Lead.__table__  # type: ignore[attr-defined]
LATER = T0 + 200 * DAY  # the sweep's "now": T0 is past the default 180 days, T0 + 190 is not


async def _payloads(engine: AsyncEngine) -> dict[int, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(EVENTS.c.id, EVENTS.c.payload).order_by(EVENTS.c.id))
        return {int(r.id): r.payload for r in rows}


async def _leads(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(LEADS).order_by(LEADS.c.id))
        return [dict(r) for r in rows.mappings()]


async def test_old_payloads_go_the_rows_duplicates_and_scores_stay(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    old = [
        identify("u1", T0, **IDEAL),
        page("u1", "/pricing", T0 + 60),
        track("u2", "Demo Requested", T0 + 90),
    ]
    recent = page("u1", "/pricing/enterprise", T0 + 190 * DAY)
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(*old, now=T0 + 120), now=T0 + 120)
        await pipeline.ingest(events(recent, now=T0 + 190 * DAY), now=T0 + 190 * DAY)
        before = await _leads(engine)
        stored = await _payloads(engine)

        pruned = await retention_sweep(engine, config=config, now=LATER)

        assert pruned.event_payloads == 3
        after = await _payloads(engine)
        assert list(after) == list(stored)  # every event row is still there
        assert [p for p in after.values() if p] == [stored[max(stored)]]  # the recent one
        assert await _leads(engine) == before  # the lead state holds what scoring needs
        replay = await pipeline.ingest(events(old[1], now=LATER), now=LATER)
        assert (replay.accepted, replay.duplicates) == (0, 1)
        assert await _leads(engine) == before
    again = await retention_sweep(engine, config=config, now=LATER + DAY)
    assert again.event_payloads == 0


async def test_a_rescore_after_pruning_gives_the_same_scores(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(
            events(identify("u1", T0, **IDEAL), page("u1", "/pricing", T0 + 60), now=T0),
            now=T0,
        )
        await pipeline.ingest(events(track("u2", "Demo Requested", T0), now=T0), now=T0)
        model = pipeline.model

    async def rescored() -> list[dict[str, Any]]:
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda c: rescore(c, model=model, now=LATER, history_delta=5.0, cause="t")
            )
        return await _leads(engine)

    first = await rescored()
    assert (await retention_sweep(engine, config=config, now=LATER)).event_payloads == 3
    assert not any((await _payloads(engine)).values())
    assert await rescored() == first


def _event(n: int, received: datetime) -> dict[str, Any]:
    return {
        "id": n, "message_id": f"m{n}", "lead_id": "l", "type": "track", "name": "x",
        "timestamp": received, "received_at": received, "payload": {"n": n},
    }  # fmt: skip


async def test_batches_walk_in_id_order_and_stop_at_the_first_recent_event(
    engine: AsyncEngine,
) -> None:
    cut = datetime(2026, 1, 1, tzinfo=UTC)
    old, new = cut - timedelta(days=1), cut + timedelta(seconds=1)
    # ids 1..7 old, 8 arrived late (new), 9 old again: it waits for 8 (the pruned rows stay
    # a prefix in id order), 10 is new.
    rows = [_event(n, old) for n in range(1, 8)] + [_event(8, new), _event(9, old)]
    async with engine.begin() as conn:
        await conn.execute(insert(EVENTS), [*rows, _event(10, new)])
        await conn.execute(delete(EVENTS).where(EVENTS.c.id.in_([3, 4])))  # a forgotten lead
        steps: list[tuple[int, int | None]] = []
        start: int | None = await conn.run_sync(first_unpruned_event)
        while start is not None:
            emptied, start = await conn.run_sync(
                prune_event_payloads, start=start, before=cut, limit=2
            )
            steps.append((emptied, start))
    assert steps == [(2, 3), (2, 7), (1, None)]  # 1-2, then 5-6, then 7 (8 is new)
    left = await _payloads(engine)
    assert [n for n, p in left.items() if p] == [8, 9, 10]


async def test_bisection_finds_where_the_last_run_stopped(engine: AsyncEngine) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        assert await conn.run_sync(first_unpruned_event) is None  # no event at all
        await conn.execute(insert(EVENTS), [_event(n, at) for n in range(1, 200, 3)])
        for pruned_up_to, first in ((1, 1), (2, 4), (100, 100), (150, 151), (199, 199)):
            await conn.execute(EVENTS.update().values(payload={"n": 0}))
            await conn.execute(EVENTS.update().where(EVENTS.c.id < pruned_up_to).values(payload={}))
            assert await conn.run_sync(first_unpruned_event) == first
        await conn.execute(EVENTS.update().values(payload={}))
        assert await conn.run_sync(first_unpruned_event) is None  # all pruned


async def test_null_keeps_payloads_forever_and_zero_is_refused(engine: AsyncEngine) -> None:
    forever = load_config(text=SMALL_MODEL + "retention: {event_payload_days: null}\n", name="r")
    assert forever.retention.event_payload_days is None
    async with engine.begin() as conn:
        await conn.execute(insert(EVENTS), [_event(1, datetime(2020, 1, 1, tzinfo=UTC))])
    assert (await retention_sweep(engine, config=forever, now=LATER)).event_payloads == 0
    assert (await _payloads(engine))[1] == {"n": 1}
    with pytest.raises(ConfigError, match="event_payload_days"):
        load_config(text=SMALL_MODEL + "retention: {event_payload_days: 0}\n", name="r")
