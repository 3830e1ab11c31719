"""Scheduled runs: who runs a job's slot when several bot replicas share one database.

Every replica's scheduler fires the same slot of the same schedule. Each tries to insert
``(job, run_key)``, the key being the slot's fire time; the primary key lets exactly one
insert land (``ON CONFLICT DO NOTHING RETURNING``), and only that replica runs the job. A
run that crashes keeps its row: its slot is not retried, the next slot runs as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import ScheduledRun

RUNS = ScheduledRun.__table__  # type: ignore[attr-defined]
OUTCOME_LENGTH = 255


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def claim_run(engine: AsyncEngine, *, job: str, run_key: str, now: float) -> bool:
    """Record the start of ``job``'s run for ``run_key``; True when this caller won it,
    False when a run of that slot was already recorded (here or by another replica)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(RUNS)
        .values(job=job, run_key=run_key, started_at=_at(now))
        .on_conflict_do_nothing(index_elements=["job", "run_key"])
        .returning(RUNS.c.job)
    )
    async with engine.begin() as conn:
        return (await conn.execute(stmt)).first() is not None


async def finish_run(
    engine: AsyncEngine, *, job: str, run_key: str, now: float, outcome: str
) -> None:
    """Record how the run ended (``ok: …`` or ``failed: …``, cut to the column's length)."""
    stmt = (
        update(RUNS)
        .where(RUNS.c.job == job, RUNS.c.run_key == run_key)
        .values(finished_at=_at(now), outcome=outcome[:OUTCOME_LENGTH])
    )
    async with engine.begin() as conn:
        await conn.execute(stmt)


async def prune_runs(engine: AsyncEngine, *, job: str, before: float) -> int:
    """Delete ``job``'s runs started before ``before``; returns how many went."""
    stmt = delete(RUNS).where(RUNS.c.job == job, RUNS.c.started_at < _at(before))
    async with engine.begin() as conn:
        return (await conn.execute(stmt)).rowcount


async def list_runs(engine: AsyncEngine, *, job: str | None = None) -> list[ScheduledRun]:
    """Recorded runs, oldest slot first (all jobs, or one)."""
    query = select(RUNS).order_by(RUNS.c.run_key, RUNS.c.job)
    if job is not None:
        query = query.where(RUNS.c.job == job)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [ScheduledRun(**row) for row in rows]
