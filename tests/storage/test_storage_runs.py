"""Scheduled runs: one claim per job and slot, on both databases, even when racing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.runs import claim_run, finish_run, list_runs, prune_runs

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


async def test_a_slot_is_claimed_once_per_job(engine: AsyncEngine) -> None:
    assert await claim_run(engine, job="sla", run_key="2026-03-02T08:00:00+00:00", now=NOW)
    assert not await claim_run(engine, job="sla", run_key="2026-03-02T08:00:00+00:00", now=NOW)
    # Another job, or the next slot, is a run of its own.
    assert await claim_run(engine, job="decay", run_key="2026-03-02T08:00:00+00:00", now=NOW)
    assert await claim_run(engine, job="sla", run_key="2026-03-02T08:15:00+00:00", now=NOW)
    runs = await list_runs(engine, job="sla")
    assert [r.run_key for r in runs] == ["2026-03-02T08:00:00+00:00", "2026-03-02T08:15:00+00:00"]
    assert runs[0].started_at == datetime.fromtimestamp(NOW, UTC)
    assert runs[0].finished_at is None


async def test_racing_claims_have_one_winner(engine: AsyncEngine) -> None:
    won = await asyncio.gather(
        *(claim_run(engine, job="digest", run_key="k", now=NOW) for _ in range(8))
    )
    assert sorted(won) == [False] * 7 + [True]


async def test_finish_records_the_outcome(engine: AsyncEngine) -> None:
    await claim_run(engine, job="sla", run_key="k", now=NOW)
    await finish_run(engine, job="sla", run_key="k", now=NOW + 3, outcome="failed: " + "x" * 400)
    (run,) = await list_runs(engine)
    assert run.finished_at == datetime.fromtimestamp(NOW + 3, UTC)
    assert run.outcome is not None
    assert len(run.outcome) == 255
    assert run.outcome.startswith("failed: x")


async def test_prune_drops_one_jobs_old_runs_only(engine: AsyncEngine) -> None:
    await claim_run(engine, job="sla", run_key="old", now=NOW - 31 * DAY)
    await claim_run(engine, job="sla", run_key="new", now=NOW - 29 * DAY)
    await claim_run(engine, job="decay", run_key="old", now=NOW - 31 * DAY)
    assert await prune_runs(engine, job="sla", before=NOW - 30 * DAY) == 1
    assert [(r.job, r.run_key) for r in await list_runs(engine)] == [
        ("sla", "new"),
        ("decay", "old"),
    ]
