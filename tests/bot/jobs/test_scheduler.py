"""The scheduler with a controlled clock: slots computed from the cron and ``now``, each slot
run once (twice fired, or fired by two replicas on one PostgreSQL), triggers never awaited."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.ingest.pipeline import Pipeline
from bot.jobs.scheduler import Scheduler, jobs_for, slot_at
from bot.metrics import REGISTRY
from bot.outbox.dispatcher import Dispatcher
from config.loader import LeadbotConfig, load_config
from config.schedules import Schedule
from storage.engine import create_engine
from storage.ingest import HISTORY, LEADS, OUTBOX
from storage.migrate import upgrade
from storage.outbox import Claimed
from storage.runs import list_runs
from tests.bot.conftest import DAY, IDEAL, SMALL_MODEL, T0, events, identify, track
from tests.logs import logged, until_logged
from tests.outage import movable_database


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


class Capture:
    async def deliver(self, message: Claimed) -> None:
        pass


async def _seed_hot_lead(engine: AsyncEngine, config: LeadbotConfig) -> None:
    """A lead alerted hot at T0 (60 points; its demo halves every 14 days)."""
    router = Router(config.routing, slack_channel="#sales-alerts")
    async with Pipeline(engine, config, router=router) as pipeline:
        await pipeline.ingest(
            events(identify("hot", T0, **IDEAL), track("hot", "Demo Requested", T0)), now=T0
        )
    await Dispatcher(engine, Capture(), clock=lambda: T0).run_once()


def test_default_jobs_and_unique_ids() -> None:
    default = [j.id for j in jobs_for(load_config(text=SMALL_MODEL))]
    assert default == ["sla", "decay", "retention", "rfm"]
    config = load_config(
        text=SMALL_MODEL
        + """routing: {teams: {emea: [U0AAA]}}
schedules:
  - {job: digest, cron: "0 8 * * 1-5"}
  - {job: digest, cron: "0 17 * * 5"}
  - {job: digest, cron: "0 8 * * *", period: day, team: emea}
  - {job: retrain, cron: "0 3 * * 0"}
"""
    )
    ids = [j.id for j in jobs_for(config)]
    assert ids == [
        "digest-week", "digest-week-2", "digest-day-emea", "retrain", "retention", "rfm",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cron", "tz", "now", "slot"),
    [
        ("*/15 * * * *", "UTC", at(2026, 3, 4, 10, 7, 30), at(2026, 3, 4, 10, 0)),
        ("*/15 * * * *", "UTC", at(2026, 3, 4, 10, 15), at(2026, 3, 4, 10, 15)),  # on the dot
        ("7 * * * *", "UTC", at(2026, 3, 4, 10, 6, 59), at(2026, 3, 4, 9, 7)),
        # Monday to Friday at 8 in Paris (UTC+1 in March): Saturday noon → Friday 07:00 UTC.
        ("0 8 * * 1-5", "Europe/Paris", at(2026, 3, 7, 12, 0), at(2026, 3, 6, 7, 0)),
        ("0 3 1 1 *", "UTC", at(2026, 3, 4, 10, 0), at(2026, 1, 1, 3, 0)),  # yearly
    ],
)
def test_the_slot_is_the_latest_fire_time_at_or_before_now(
    cron: str, tz: str, now: float, slot: float
) -> None:
    trigger = Schedule(job="sla", cron=cron, timezone=tz).trigger()
    found = slot_at(trigger, now)
    assert found is not None
    assert found.tzinfo is not None
    assert found.timestamp() == slot


async def test_each_slot_runs_once_and_the_next_slot_runs_again(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    engine = sqlite_engine
    await _seed_hot_lead(engine, config)
    scheduler = Scheduler(engine, config)
    first = at(2026, 3, 16, 9, 7, 2)  # decay runs at minute 7 of every hour
    assert first > T0 + 14 * DAY

    def runs_of(outcome: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "leadbot_scheduler_runs_total", {"job": "decay", "outcome": outcome}
            )
            or 0.0
        )

    ok_before, skipped_before = runs_of("ok"), runs_of("skipped")
    ran = await scheduler.fire("decay", first)
    assert (ran.ran, ran.run_key) == (True, "2026-03-16T09:07:00+00:00")
    assert ran.outcome == "ok: 1 of 1 leads rescored, 1 cooling"
    again = await scheduler.fire("decay", first + 50 * 60)  # 09:57: still the 09:07 slot
    assert (again.ran, again.outcome) == (False, "skipped: already run")
    following = await scheduler.fire("decay", at(2026, 3, 16, 10, 7))
    assert (following.ran, following.run_key) == (True, "2026-03-16T10:07:00+00:00")
    runs = await list_runs(engine, job="decay")
    assert [(r.run_key, r.outcome) for r in runs] == [
        ("2026-03-16T09:07:00+00:00", "ok: 1 of 1 leads rescored, 1 cooling"),
        ("2026-03-16T10:07:00+00:00", "ok: 1 of 1 leads rescored, 0 cooling"),
    ]
    assert all(r.finished_at is not None for r in runs)
    assert (runs_of("ok") - ok_before, runs_of("skipped") - skipped_before) == (2, 1)


async def test_old_runs_are_pruned_by_the_job_itself(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    scheduler = Scheduler(sqlite_engine, config)
    await scheduler.fire("sla", at(2026, 1, 1, 0, 0))
    await scheduler.fire("sla", at(2026, 1, 20, 0, 0))
    await scheduler.fire("sla", at(2026, 2, 5, 0, 0))  # 35 days after the first
    keys = [r.run_key for r in await list_runs(sqlite_engine, job="sla")]
    assert keys == ["2026-01-20T00:00:00+00:00", "2026-02-05T00:00:00+00:00"]


async def test_start_schedules_every_job_and_stop_ends_it(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    scheduler = Scheduler(sqlite_engine, config)
    jobs = ("sla", "decay", "retention", "rfm")
    assert scheduler.next_runs() == dict.fromkeys(jobs)
    scheduler.start()
    try:
        nexts = scheduler.next_runs()
        assert set(nexts) == set(jobs)
        now = datetime.now(UTC)
        for moment in nexts.values():
            assert moment is not None
            assert now < moment <= now + timedelta(hours=1)
        assert nexts["decay"].minute == 7  # type: ignore[union-attr]
        assert nexts["sla"].minute % 15 == 0  # type: ignore[union-attr]
        described = [line.split(":")[0] for line in scheduler.describe()]
        assert described == list(jobs)
    finally:
        await scheduler.stop()
    assert scheduler.next_runs() == dict.fromkeys(jobs)


@pytest.fixture
async def two_replicas(postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines (two replicas' connection pools) on one migrated PostgreSQL database."""
    first, second = create_engine(postgres_url), create_engine(postgres_url)
    try:
        await upgrade(first)
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


@pytest.mark.postgres
async def test_two_schedulers_on_one_postgresql_run_each_slot_once(
    two_replicas: tuple[AsyncEngine, AsyncEngine], config: LeadbotConfig
) -> None:
    a_engine, b_engine = two_replicas
    await _seed_hot_lead(a_engine, config)
    a, b = Scheduler(a_engine, config), Scheduler(b_engine, config)
    # The replicas' clocks read a little apart, inside the same 09:07 slot: were both to
    # run, the lead would be rescored twice, at two different times.
    times = (at(2026, 3, 16, 9, 7, 1), at(2026, 3, 16, 9, 7, 3))
    ran: dict[str, float] = {}
    for job in ("decay", "sla"):
        results = await asyncio.gather(a.fire(job, times[0]), b.fire(job, times[1]))
        assert sorted(r.ran for r in results) == [False, True]
        assert {r.run_key for r in results} == {slot_key(a, job, times[0])}
        ran[job] = next(t for t, r in zip(times, results, strict=True) if r.ran)
    async with a_engine.connect() as conn:
        scored_at = (await conn.execute(select(LEADS.c.scored_at))).scalar_one()
        history = (await conn.execute(select(HISTORY).where(HISTORY.c.cause == "decay"))).all()
        cooling = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "cooling"))).all()
    assert len(history) == len(cooling) == 1
    assert scored_at.timestamp() == ran["decay"]
    runs = await list_runs(b_engine)
    assert sorted(r.job for r in runs) == ["decay", "sla"]
    assert all(r.outcome is not None and r.outcome.startswith("ok: ") for r in runs)


def slot_key(scheduler: Scheduler, job: str, now: float) -> str:
    slot = slot_at(scheduler.jobs[job].trigger, now)
    assert slot is not None
    return slot.isoformat()


async def test_retrain_and_digest_jobs_run_on_their_slots(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    schedules = (
        Schedule(job="retrain", cron="0 3 * * 0"),
        Schedule(job="digest", cron="0 8 * * 1-5", timezone="Europe/Paris", period="week"),
    )
    scheduler = Scheduler(sqlite_engine, dataclasses.replace(config, schedules=schedules))
    result = await scheduler.fire("retrain", at(2026, 3, 15, 3, 0, 5))
    assert result.ran
    assert result.run_key == "2026-03-15T03:00:00+00:00"  # a Sunday: crontab's 0
    assert result.outcome.startswith("ok: no new version")  # no labels yet
    digest = await scheduler.fire("digest-week", at(2026, 3, 16, 7, 0, 1))
    assert (digest.run_key, digest.outcome) == ("2026-03-16T07:00:00+00:00", "ok: 1 digests queued")


WAITS = "waits for the database"


async def test_a_slot_fired_while_the_database_is_down_runs_once_it_is_back(
    tmp_path: Path, config: LeadbotConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is away when the 09:07 slot fires; it comes back at 09:40: the 09:07
    slot runs then, and the wait was one line."""
    now = [at(2026, 3, 16, 9, 7, 1)]
    caplog.set_level(logging.INFO, logger="bot.jobs.scheduler")
    async with movable_database(tmp_path) as db:
        scheduler = Scheduler(db.engine, config, clock=lambda: now[0], retry_first=0.01,
                              retry_max=0.02)  # fmt: skip
        db.take_away()
        task = asyncio.create_task(scheduler.fire_when_up("decay"))
        await until_logged(caplog, WAITS)
        await asyncio.sleep(0.1)  # several more tries, all failing
        assert not task.done()
        db.put_back()
        now[0] = at(2026, 3, 16, 9, 40)
        async with asyncio.timeout(10):
            result = await task
        runs = await list_runs(db.engine)
    assert result is not None
    assert (result.ran, result.run_key) == (True, "2026-03-16T09:07:00+00:00")
    assert result.outcome.startswith("ok: ")
    assert [(r.run_key, r.outcome) for r in runs] == [("2026-03-16T09:07:00+00:00", result.outcome)]
    [wait] = logged(caplog, WAITS)
    assert "unable to open database file" in wait.getMessage()
    assert not wait.exc_info
    assert logged(caplog, "scheduled job decay reaches the database")


async def test_stop_ends_a_slot_waiting_for_the_database_at_once(
    tmp_path: Path, config: LeadbotConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.jobs.scheduler")
    async with movable_database(tmp_path) as db:
        scheduler = Scheduler(db.engine, config, retry_first=60.0)
        db.take_away()
        task = asyncio.create_task(scheduler.fire_when_up("sla"))
        await until_logged(caplog, WAITS)
        async with asyncio.timeout(2):  # not the 60 s the next try waits for
            await scheduler.stop()
            assert await task is None


async def test_a_run_the_database_cuts_short_runs_again_once_it_is_back(
    tmp_path: Path, config: LeadbotConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The 09:07 decay slot is claimed; the database goes away at that commit, so the sweep
    cannot read. Once it is back, the same claimed slot runs, once, and its outcome is
    recorded."""
    caplog.set_level(logging.INFO, logger="bot.jobs.scheduler")
    async with movable_database(tmp_path) as db:
        await _seed_hot_lead(db.engine, config)
        scheduler = Scheduler(db.engine, config, clock=lambda: at(2026, 3, 16, 9, 7, 2),
                              retry_first=0.01, retry_max=0.02)  # fmt: skip
        commits: list[Any] = []

        def cut(conn: Any) -> None:  # the first commit, the claim's: the database goes away
            commits.append(conn)
            if len(commits) == 1:
                db.take_away()

        event.listen(db.engine.sync_engine, "commit", cut)
        task = asyncio.create_task(scheduler.fire_when_up("decay"))
        await until_logged(caplog, "was cut short by the database")
        await asyncio.sleep(0.1)  # a few more tries, all failing
        assert not task.done()
        db.put_back()
        async with asyncio.timeout(10):
            result = await task
        runs = await list_runs(db.engine)
        async with db.engine.connect() as conn:
            cooling = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "cooling"))).all()
    assert result is not None
    assert (result.ran, result.outcome) == (True, "ok: 1 of 1 leads rescored, 1 cooling")
    assert [(r.run_key, r.outcome) for r in runs] == [
        ("2026-03-16T09:07:00+00:00", "ok: 1 of 1 leads rescored, 1 cooling")
    ]
    assert len(cooling) == 1
    [said] = logged(caplog, "was cut short by the database")
    assert "unable to open database file" in said.getMessage()
    assert not said.exc_info
    assert not logged(caplog, "failed")
