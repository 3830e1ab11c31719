"""An activation works every lead out before its write transaction (``rescore.prepare``);
a lead the ingest wrote in between is worked out again inside it, so no lead keeps a score
from its row as it was before (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.models.rescore import Ahead, Rescored, prepare, rescore
from scoring.engine import score
from scoring.state import LeadState
from storage import offloop
from storage.ingest import upsert_leads
from storage.tables import Lead
from tests.bot.models.test_versions import MODEL, NOW, _row, _state

LEADS = Lead.__table__  # type: ignore[attr-defined]
BUMPED = replace(MODEL, rules=tuple(replace(r, points=r.points + 5) for r in MODEL.rules))


async def test_leads_written_after_the_preparation_are_rescored_as_they_are_now(
    engine: AsyncEngine,
) -> None:
    rng = random.Random(3)
    rows = [_row(f"lead-{i}", _state(rng, MODEL), MODEL) for i in range(20)]
    await offloop.write(engine, lambda c: upsert_leads(c, rows=rows))
    ahead: Ahead = await offloop.read(engine, lambda c: prepare(c, model=BUMPED, now=NOW))
    assert len(ahead.leads) == 20
    # What the ingest would write meanwhile: one lead changed, one new.
    changed = [
        _row("lead-3", _state(rng, MODEL), MODEL),
        _row("lead-new", _state(rng, MODEL), MODEL),
    ]
    await offloop.write(engine, lambda c: upsert_leads(c, rows=changed))

    def run(conn: Connection) -> Rescored:
        return rescore(conn, model=BUMPED, now=NOW, history_delta=5.0, cause="t", ahead=ahead)

    done = await offloop.write(engine, run)
    assert done.leads == 21
    async with engine.connect() as conn:
        stored = (await conn.execute(select(LEADS.c.id, LEADS.c.state, LEADS.c.score))).all()
    for lead_id, state, points in stored:
        expected = score(LeadState.from_dict(state), BUMPED, NOW, explain=False).total
        assert points == pytest.approx(expected), lead_id
