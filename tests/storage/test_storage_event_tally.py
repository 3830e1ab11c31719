"""The events tally: ``stats`` counts the tally and the newer events, and that is every event,
whatever mix of inserts, moves of the tally and deletions (the largest ids included, which
SQLite hands out again) came before; on PostgreSQL a transaction that took a smaller id and
commits after a larger one is counted once, not skipped. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.retention import count_events
from storage import locks, offloop
from storage.event_tally import EVENTS, TALLY, advance, boundary, delete_events, event_count
from storage.ingest import insert_new_events

AT = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
LEADS = [f"lead-{i}" for i in range(6)]


def _insert(conn: Connection, numbers: list[int], lead: str) -> None:
    insert_new_events(conn, rows=[(f"m{n}", lead, "track", "x", AT, AT, {}) for n in numbers])


def _truth(conn: Connection) -> tuple[int, int]:
    """(what the tally says, what counting every row says)."""
    every = int(conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())
    return event_count(conn), every


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
async def test_the_count_is_every_event_after_any_inserts_moves_and_deletions(
    engine: AsyncEngine, seed: int
) -> None:
    rng, numbers = random.Random(seed), itertools.count()
    async with offloop.Worker(engine) as worker:
        for _ in range(30):
            step = rng.choice(["insert", "insert", "move", "forget", "forget newest"])
            if step == "insert":
                batch = [next(numbers) for _ in range(rng.randint(1, 8))]
                await worker.write(_insert, batch, rng.choice(LEADS))
            elif step == "move":
                await count_events(worker)
            else:
                lead = rng.choice(LEADS)
                if step == "forget newest":  # the lead of the largest id: SQLite reuses it
                    newest = select(EVENTS.c.lead_id).order_by(EVENTS.c.id.desc()).limit(1)
                    lead = await worker.read(lambda c, q=newest: c.execute(q).scalar()) or lead
                await worker.write(delete_events, EVENTS.c.lead_id == lead)
            counted, every = await worker.read(_truth)
            assert counted == every, step


async def test_a_move_counts_what_it_passes_and_the_count_reads_few_rows(
    engine: AsyncEngine,
) -> None:
    async with offloop.Worker(engine) as worker:
        await worker.write(_insert, list(range(50)), "lead-0")
        assert await count_events(worker) == 50
        assert await count_events(worker) == 0  # nothing new
        await worker.write(_insert, list(range(50, 53)), "lead-1")
        tally = await worker.read(lambda c: c.execute(select(TALLY)).one())
        assert (tally.counted_to, tally.events) == (await worker.read(_max_id) - 3, 50)
        assert await worker.read(event_count) == 53
        assert await worker.write(delete_events, EVENTS.c.lead_id == "lead-0") == 50
        assert await worker.read(_truth) == (3, 3)


def _ingest(conn: Connection, number: int, lead: str) -> None:
    """What an ingest transaction does first: the gate shared, then its events."""
    locks.enter(conn, [f"user:{lead}"])
    _insert(conn, [number], lead)


def _max_id(conn: Connection) -> int:
    return int(conn.execute(select(func.max(EVENTS.c.id))).scalar_one())


@pytest.mark.postgres
async def test_an_event_committed_after_a_newer_one_is_counted_once(
    postgres_url: str,
) -> None:
    """Ingest transaction A takes id k and waits; B takes k + 1 and commits. Moving the
    tally waits for A (it holds the ingest gate shared, as every ingest transaction does),
    so A's event is neither skipped below the tally nor counted twice."""
    from storage.engine import create_engine
    from storage.migrate import upgrade

    engine = create_engine(postgres_url)
    try:
        await upgrade(engine)
        async with engine.connect() as a, engine.connect() as b:
            await a.begin()
            await a.run_sync(_ingest, 1, "lead-a")
            await b.begin()
            await b.run_sync(_ingest, 2, "lead-b")
            await b.commit()
            async with offloop.Worker(engine) as worker:
                move = asyncio.ensure_future(count_events(worker))
                await asyncio.sleep(0.5)
                assert not move.done()  # waiting for A, not counting past its id
                await a.commit()
                assert await asyncio.wait_for(move, 10) == 2
                assert await worker.read(_truth) == (2, 2)
                tally = await worker.read(lambda c: c.execute(select(TALLY)).one())
                assert tally.counted_to == await worker.read(_max_id)
                stuck = await worker.read(
                    lambda c: c.execute(text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                        "database = (SELECT oid FROM pg_database WHERE datname = "
                        "current_database())"  # tests in parallel share the server
                    )).scalar_one()
                )  # fmt: skip
                assert stuck == 0  # the gate is not held past the read of the newest id
    finally:
        await engine.dispose()


async def test_boundary_and_advance_alone_never_pass_the_newest_event(
    engine: AsyncEngine,
) -> None:
    """An id handed to ``advance`` past the newest event (the largest were deleted since
    ``boundary`` read it) stops at the newest: a new row gets the next id and is counted."""
    async with offloop.Worker(engine) as worker:
        await worker.write(_insert, list(range(10)), "lead-0")
        await worker.write(_insert, list(range(10, 20)), "lead-1")
        to = await worker.write(boundary)
        await worker.write(delete_events, EVENTS.c.lead_id == "lead-1")
        await worker.write(advance, to)
        await worker.write(_insert, list(range(20, 25)), "lead-2")
        assert await worker.read(_truth) == (15, 15)
