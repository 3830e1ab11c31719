"""The bot's periodic jobs (digests, SLA follow-ups, the decay sweep, retraining,
retention, the CRM pull) on APScheduler 3's ``AsyncIOScheduler``, each slot run once however many
replicas fire it.

Every replica schedules every job. When a trigger fires, :func:`run_job` first claims the
slot in ``scheduled_runs`` (``storage.runs``): the key is the slot's fire time, the latest
one at or before ``now``, so replicas firing the same slot race on the same primary key and
only the winner does the work. On SQLite there is one process, and the claim costs nothing.
While the database is down no claim can be written: the trigger tries again until it can
(:meth:`Scheduler.fire_when_up`), so an outage delays a slot instead of dropping it; a run
the outage cuts short runs again on its claim once the database is back.

Time is an argument: tests call :meth:`Scheduler.fire` (or :func:`run_job`) with the
``now`` they want, and never wait for a wall-clock trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.base import Connector
from bot.jobs.decay import decay_sweep
from bot.metrics import SCHEDULER_RUNS
from bot.models.learning import manager_destinations, retrain_now
from bot.models.live import ActiveModel
from bot.models.rescore import RescoreAlerts
from bot.outage import RETRY_FIRST, RETRY_MOST, Backoff
from bot.throttle import Throttled
from config.loader import LeadbotConfig
from config.schedules import CRM_PULL, RFM, Schedule
from storage.health import is_database_outage, is_outage
from storage.runs import claim_run, finish_run, prune_runs

log = logging.getLogger(__name__)

KEEP_RUNS_SECONDS = 30 * 86400.0
# A slot fired this late (a blocked loop, a suspended host) still runs; later, it is dropped.
MISFIRE_GRACE_SECONDS = 300
STOP_GRACE_SECONDS = 30.0
_LOOKBACK_START = 60.0
_LOOKBACK_MAX = 400 * 86400.0  # a yearly schedule's last slot is within this


@dataclass(frozen=True)
class Job:
    """A schedule with its id (unique in the configuration, the same on every replica)."""

    id: str
    schedule: Schedule
    trigger: CronTrigger


@dataclass(frozen=True)
class RunResult:
    job: str
    run_key: str
    ran: bool  # False: the slot had been claimed already (by another replica, or before)
    outcome: str  # "ok: …", "failed: …" or "skipped: …"


class Interrupted(Exception):
    """The database went down while a run this caller had claimed was working: the slot is
    still this caller's, to run again once the database is back (``resume``). Every job
    may run again for its slot: what it queues carries a dedupe key, and what it writes is
    written again alike."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class JobContext:
    """What the jobs need beside the database and the configuration."""

    active: ActiveModel | None = None  # the model to decay with; the configured one if None
    managers: Sequence[str] | None = None  # where default digests and proposals go
    alerts: RescoreAlerts | None = None  # alerts owed when an auto-applied retrain rescores
    on_queued: Callable[[], None] | None = None  # wake the outbox dispatcher
    crm: Mapping[str, Connector] | None = None  # the CRMs crm_pull reads (credentials set)
    on_labels: Callable[[], None] | None = None  # wake the learner after new CRM labels


def jobs_for(config: LeadbotConfig, *, crm: bool = False) -> list[Job]:
    """The configured schedules as jobs, ids like ``sla``, ``decay``, ``digest-week-emea``
    (``-2``, ``-3``… when two schedules would share one). With a CRM (``crm``), ``crm_pull``
    every 15 minutes, and ``rfm`` always, unless the schedules name them or are ``[]``."""
    jobs: list[Job] = []
    taken: set[str] = set()
    schedules = config.schedules
    if crm and schedules and all(s.job != "crm_pull" for s in schedules):
        schedules = (*schedules, CRM_PULL)
    if schedules and all(s.job != "rfm" for s in schedules):
        schedules = (*schedules, RFM)
    for schedule in schedules:
        base = schedule.job
        if schedule.job == "digest":
            base = "-".join(p for p in ("digest", schedule.period, schedule.team) if p)
        job_id, n = base[:60], 1
        while job_id in taken:
            n += 1
            job_id = f"{base[:60]}-{n}"
        taken.add(job_id)
        jobs.append(Job(job_id, schedule, schedule.trigger()))
    return jobs


def slot_at(trigger: CronTrigger, now: float) -> datetime | None:
    """The trigger's latest fire time at or before ``now`` (UTC), or None within the last
    ~400 days. The window widens until it holds a fire time, then steps to the last one."""
    moment = datetime.fromtimestamp(now, UTC)
    window = _LOOKBACK_START
    while window <= _LOOKBACK_MAX:
        fire = trigger.get_next_fire_time(None, moment - timedelta(seconds=window))
        if fire is not None and fire <= moment:
            return _last_fire(trigger, fire, moment).astimezone(UTC)
        window *= 4
    return None


def _last_fire(trigger: CronTrigger, fire: datetime, moment: datetime) -> datetime:
    while True:
        # Cron fire times fall on whole seconds: the next one starts a second later.
        following = trigger.get_next_fire_time(None, fire + timedelta(seconds=1))
        if following is None or following > moment:
            return fire
        fire = following


async def run_job(
    job: Job,
    *,
    engine: AsyncEngine,
    config: LeadbotConfig,
    now: float,
    context: JobContext | None = None,
    resume: str | None = None,
) -> RunResult:
    """Claim ``job``'s slot at ``now`` and, if this caller won it, do the work and record
    the outcome. A failing job is logged and recorded, never raised: the scheduler goes on.
    Except when the database goes down during the work: that raises :class:`Interrupted`,
    and ``resume`` (its key) runs that claimed slot's work again, at ``now``."""
    if resume is None:
        slot = slot_at(job.trigger, now)
        if slot is None:
            return RunResult(job.id, "", ran=False, outcome="skipped: no slot at or before now")
        key = slot.isoformat()
        if not await claim_run(engine, job=job.id, run_key=key, now=now):
            SCHEDULER_RUNS.labels(job=job.id, outcome="skipped").inc()
            log.debug("%s %s: already run", job.id, key)
            return RunResult(job.id, key, ran=False, outcome="skipped: already run")
    else:
        key = resume
    context = context or JobContext()
    try:
        outcome = "ok: " + await _work(job, engine, config, now, context)
    except Exception as exc:
        if is_database_outage(exc):  # not a CRM's network error in crm_pull
            raise Interrupted(key) from exc
        log.exception("scheduled job %s (%s) failed", job.id, key)
        outcome = f"failed: {type(exc).__name__}: {exc}"
    SCHEDULER_RUNS.labels(job=job.id, outcome=outcome.split(":", 1)[0]).inc()
    await finish_run(engine, job=job.id, run_key=key, now=time.time(), outcome=outcome)
    await prune_runs(engine, job=job.id, before=now - KEEP_RUNS_SECONDS)
    log.info("scheduled job %s (%s): %s", job.id, key, outcome)
    return RunResult(job.id, key, ran=True, outcome=outcome)


async def _work(
    job: Job, engine: AsyncEngine, config: LeadbotConfig, now: float, context: JobContext
) -> str:
    """Do one job; a short description of what it did."""
    kind = job.schedule.job
    if kind == "decay":
        active = context.active or ActiveModel(config.model)
        model = await active.current(engine)
        decayed = await decay_sweep(
            engine, config=config, model=model, now=now, on_queued=context.on_queued
        )
        return f"{decayed.updated} of {decayed.checked} leads rescored, {decayed.cooling} cooling"
    if kind == "sla":
        from bot.jobs.sla import sla_sweep  # written alongside; imported when first needed

        queued = await sla_sweep(engine, config=config, now=now)
        return _queued(queued, "follow-ups", context)
    if kind == "digest":
        from bot.digest.delivery import queue_digest

        queued = await queue_digest(
            engine, config=config, schedule=job.schedule, now=now, managers=context.managers
        )
        return _queued(queued, "digests", context)
    if kind == "retrain":
        return await _retrain(engine, config, now, context)
    if kind == "crm_pull":
        return await _crm_pull(engine, config, now, context)
    if kind == "rfm":  # customers' scores, and the alerts of good customers slipping
        from bot.chat.customer_alerts import rfm_job
        from bot.chat.routing import Router

        routed = context.alerts.router if context.alerts else Router(config.routing)
        woken = context.on_queued
        return await rfm_job(engine, config.rfm, router=routed, now=now, on_queued=woken)
    if kind == "retention":
        from bot.jobs.retention import retention_sweep

        return (await retention_sweep(engine, config=config, now=now)).summary()
    raise ValueError(f"unknown job kind {kind!r}")


async def _retrain(
    engine: AsyncEngine, config: LeadbotConfig, now: float, context: JobContext
) -> str:
    destinations = context.managers or manager_destinations(
        config.learning, config.managers, config.slack.default_channel
    )
    result, decision = await retrain_now(
        engine=engine, config=config, destinations=destinations, now=now,
        created_by="schedule", alerts=context.alerts,
    )  # fmt: skip
    if result.version_id is None:
        return f"no new version: {result.proposal.reason}"
    if context.on_queued is not None:
        context.on_queued()
    applied = " (applied)" if decision is not None else ""
    return f"proposed v{result.version_id}{applied}"


async def _crm_pull(
    engine: AsyncEngine, config: LeadbotConfig, now: float, context: JobContext
) -> str:
    from bot.crm.pull import pull_outcomes

    model = await (context.active or ActiveModel(config.model)).current(engine)
    report = await pull_outcomes(engine, context.crm or {}, model=model, now=now)
    if context.on_labels is not None and any(p.stored for p in report.pulls):
        context.on_labels()
    if report.failed:  # recorded as failed; the cursor stayed, the next slot reads again
        raise RuntimeError(report.summary())
    return report.summary()


def _queued(count: int, what: str, context: JobContext) -> str:
    if count and context.on_queued is not None:
        context.on_queued()
    return f"{count} {what} queued"


@dataclass
class Scheduler:
    """The configured jobs on an ``AsyncIOScheduler`` whose triggers call :meth:`fire` with
    ``clock()``. ``start`` inside the running loop; ``stop`` at shutdown."""

    engine: AsyncEngine
    config: LeadbotConfig
    context: JobContext = field(default_factory=JobContext)
    clock: Callable[[], float] = time.time
    jobs: dict[str, Job] = field(init=False)
    _aps: AsyncIOScheduler | None = field(init=False, default=None)
    retry_first: float = RETRY_FIRST  # while the database is down (``bot.outage``)
    retry_max: float = RETRY_MOST
    _running: set[asyncio.Task[RunResult | None]] = field(init=False, default_factory=set)
    _stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _outage: Throttled = field(init=False, default_factory=lambda: Throttled(log, period=300.0))

    def __post_init__(self) -> None:
        jobs = jobs_for(self.config, crm=bool(self.context.crm))
        self.jobs = {job.id: job for job in jobs}

    async def fire(self, job_id: str, now: float, resume: str | None = None) -> RunResult:
        """Run ``job_id``'s slot at ``now`` (what a trigger does, with a chosen time);
        ``resume``: see :func:`run_job`."""
        return await run_job(
            self.jobs[job_id], engine=self.engine, config=self.config, now=now,
            context=self.context, resume=resume,
        )  # fmt: skip

    async def fire_when_up(self, job_id: str) -> RunResult | None:
        """What a trigger does: :meth:`fire` at ``clock()``. While the database is down,
        wait and fire again, at the slot then current (the same one, or a later one that
        supersedes it); a run the database cut short runs again once it is back. None when
        the scheduler stops first."""
        backoff = Backoff(self.retry_first, self.retry_max)
        resume: str | None = None
        while True:
            try:
                result = await self.fire(job_id, self.clock(), resume)
            except Interrupted as exc:
                resume = exc.key
                self._outage.failed(
                    job_id, "scheduled job %s (%s) was cut short by the database (%r); it "
                    "runs again once the database is back", job_id, exc.key, exc.__cause__,
                )  # fmt: skip
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._outage.failed(
                    job_id, "scheduled job %s waits for the database (%r); trying again",
                    job_id, exc,
                )  # fmt: skip
            else:
                self._outage.recovered(job_id, f"scheduled job {job_id} reaches the database")
                return result
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff.next()):
                    await self._stopping.wait()
                    return None

    async def _tick(self, job_id: str) -> None:
        task = asyncio.ensure_future(self.fire_when_up(job_id))
        self._running.add(task)
        try:
            await asyncio.shield(task)  # a stop waits for the run instead of cutting it
        finally:
            self._running.discard(task)

    def start(self) -> None:
        self._stopping.clear()
        aps = AsyncIOScheduler(timezone=UTC)
        for job in self.jobs.values():
            aps.add_job(
                self._tick, job.trigger, args=[job.id], id=job.id, name=job.id,
                coalesce=True, max_instances=1, misfire_grace_time=MISFIRE_GRACE_SECONDS,
            )  # fmt: skip
        aps.start()
        self._aps = aps
        for line in self.describe():
            log.info("scheduled: %s", line)

    def next_runs(self) -> dict[str, datetime | None]:
        """Each job's next fire time (UTC); None before ``start``."""
        if self._aps is None:
            return dict.fromkeys(self.jobs)
        return {job.id: job.next_run_time for job in self._aps.get_jobs()}

    def describe(self) -> list[str]:
        """One line per job: its id, cron, time zone and next run."""
        nexts = self.next_runs()
        return [
            f"{job.id}: {job.schedule.cron} ({job.schedule.timezone}), next {_when(nexts[job.id])}"
            for job in self.jobs.values()
        ]

    async def stop(self) -> None:
        """No new runs; runs in progress get ``STOP_GRACE_SECONDS`` to finish, then are
        cancelled; a slot waiting for the database gives up at once."""
        self._stopping.set()
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).isoformat()


@contextlib.asynccontextmanager
async def running_scheduler(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    """The scheduler started for the duration of the block (the bot's lifecycle)."""
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()
