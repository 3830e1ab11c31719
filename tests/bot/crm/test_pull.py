"""The CRM pull: outcomes changed since the cursor become labels, and the cursor moves only
after they are committed. HubSpot is a fake at the wire; the connector is the real one."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.crm.base import Connector
from bot.crm.pull import crm_connectors, pull_outcomes
from bot.ingest.pipeline import Pipeline
from bot.jobs.scheduler import JobContext, Scheduler
from config.loader import LeadbotConfig
from config.schedules import Schedule
from config.settings import load_settings
from storage import crm as repo
from storage.crm import FEEDBACK
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bot.conftest import IDEAL, SMALL_MODEL, T0, events, identify
from tests.fakes.hubspot_api import FakeHubSpot

TOKEN = "pat-test"
OTHER = "ben@widgets.io"
NOW = time.time()
DAY = 86400.0


@pytest.fixture
async def hub() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def connectors(hub: FakeHubSpot, config: LeadbotConfig) -> dict[str, Connector]:
    env = {"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_API_URL": hub.url}
    return crm_connectors(load_settings(env), config)


async def _leads(engine: AsyncEngine, config: LeadbotConfig) -> None:
    async with Pipeline(engine, config) as pipeline:
        calls = events(identify("u1", T0, **IDEAL), identify("u2", T0, email=OTHER))
        await pipeline.ingest(calls, now=T0 + 60)


async def _labels(engine: AsyncEngine) -> list[tuple[str, str]]:
    query = select(FEEDBACK.c.ref, FEEDBACK.c.outcome).order_by(FEEDBACK.c.ref)
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(query)]  # type: ignore[misc]


async def _cursor(engine: AsyncEngine) -> float | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: repo.cursor(c, crm="hubspot", kind="outcomes"))


async def test_a_pull_stores_outcomes_and_then_moves_the_cursor(
    engine: AsyncEngine, config: LeadbotConfig, hub: FakeHubSpot, connectors: dict[str, Connector]
) -> None:
    await _leads(engine, config)
    dana = hub.add_contact(IDEAL["email"], lifecyclestage="customer", modified_at=NOW - 3600)
    ben = hub.add_contact(OTHER, hs_lead_status="BAD_TIMING", modified_at=NOW - 7200)
    hub.add_contact("open@x.test", lifecyclestage="lead", modified_at=NOW - 60)
    report = await pull_outcomes(engine, connectors, model=config.model, now=NOW)
    assert not report.failed, report.summary()
    assert (report.pulls[0].outcomes, report.pulls[0].stored) == (2, 2)
    assert await _labels(engine) == sorted([(f"{dana}:won", "won"), (f"{ben}:lost", "lost")])
    cursor = await _cursor(engine)
    assert cursor is not None
    assert NOW - 3600 <= cursor <= NOW
    again = await pull_outcomes(engine, connectors, model=config.model, now=NOW + 60)
    assert again.pulls[0].stored == 0  # read again from the cursor: stored once
    assert len(await _labels(engine)) == 2


async def test_the_first_pull_reads_thirty_days_back_unless_told_since(
    engine: AsyncEngine, config: LeadbotConfig, hub: FakeHubSpot, connectors: dict[str, Connector]
) -> None:
    await _leads(engine, config)
    hub.add_contact(IDEAL["email"], lifecyclestage="customer", modified_at=NOW - 40 * DAY)
    first = await pull_outcomes(engine, connectors, model=config.model, now=NOW)
    assert (first.pulls[0].since, first.pulls[0].outcomes) == (NOW - 30 * DAY, 0)
    since = await pull_outcomes(
        engine, connectors, model=config.model, now=NOW, since=NOW - 50 * DAY
    )
    assert since.pulls[0].stored == 1


async def test_a_failed_pull_keeps_the_cursor_and_the_next_one_catches_up(
    engine: AsyncEngine, config: LeadbotConfig, hub: FakeHubSpot, connectors: dict[str, Connector]
) -> None:
    await _leads(engine, config)
    hub.add_contact(IDEAL["email"], lifecyclestage="customer", modified_at=NOW - 3600)
    await pull_outcomes(engine, connectors, model=config.model, now=NOW)
    before = await _cursor(engine)
    hub.add_contact(OTHER, hs_lead_status="UNQUALIFIED", modified_at=NOW + 30)
    await hub.stop()
    failed = await pull_outcomes(engine, connectors, model=config.model, now=NOW + 60)
    assert [p.crm for p in failed.failed] == ["hubspot"]
    assert "cursor kept" in failed.summary()
    assert await _cursor(engine) == before
    assert len(await _labels(engine)) == 1
    await hub.start()
    caught_up = await pull_outcomes(engine, connectors, model=config.model, now=NOW + 120)
    assert caught_up.pulls[0].stored == 1
    assert (await _cursor(engine) or 0) > (before or 0)


async def test_a_pull_failing_midway_stores_nothing_and_keeps_the_cursor(
    engine: AsyncEngine, config: LeadbotConfig, hub: FakeHubSpot, connectors: dict[str, Connector]
) -> None:
    await _leads(engine, config)
    hub.add_contact(IDEAL["email"], lifecyclestage="customer", modified_at=NOW - 3600)
    hub.add_deal("closedlost", [hub.add_contact(OTHER)], modified_at=NOW - 60)
    hub.scopes.discard("crm.objects.deals.read")  # contacts read, then the deals refused
    failed = await pull_outcomes(engine, connectors, model=config.model, now=NOW)
    assert hub.requests_to("POST", "/crm/v3/objects/contacts/search")
    assert "crm.objects.deals.read" in (failed.pulls[0].error or "")
    assert (await _cursor(engine), await _labels(engine)) == (None, [])
    hub.scopes.add("crm.objects.deals.read")
    done = await pull_outcomes(engine, connectors, model=config.model, now=NOW + 60)
    assert done.pulls[0].stored == 2
    assert await _cursor(engine) is not None


async def test_the_scheduler_pulls_every_15_minutes_with_a_crm(
    engine: AsyncEngine, config: LeadbotConfig, hub: FakeHubSpot, connectors: dict[str, Connector]
) -> None:
    await _leads(engine, config)
    hub.add_contact(IDEAL["email"], lifecyclestage="customer", modified_at=NOW - 3600)
    woken: list[bool] = []
    context = JobContext(crm=connectors, on_labels=lambda: woken.append(True))
    scheduler = Scheduler(engine, config, context=context)
    assert scheduler.jobs["crm_pull"].schedule.cron == "*/15 * * * *"
    result = await scheduler.fire("crm_pull", NOW)
    assert result.outcome == "ok: hubspot: 1 outcomes, 1 new labels, 0 matching no lead"
    assert woken == [True]
    await hub.stop()
    failed = await scheduler.fire("crm_pull", NOW + 900)
    assert failed.outcome.startswith("failed: RuntimeError: hubspot: failed, cursor kept")


async def test_crm_pull_is_scheduled_only_with_a_crm_and_not_against_the_list(
    config: LeadbotConfig, engine: AsyncEngine, connectors: dict[str, Connector]
) -> None:
    assert "crm_pull" not in Scheduler(engine, config).jobs
    none = dataclasses.replace(config, schedules=())
    assert Scheduler(engine, none, context=JobContext(crm=connectors)).jobs == {}
    own = dataclasses.replace(config, schedules=(Schedule(job="crm_pull", cron="0 * * * *"),))
    jobs = Scheduler(engine, own, context=JobContext(crm=connectors)).jobs
    crons = {job.id: job.schedule.cron for job in jobs.values()}
    assert crons == {"crm_pull": "0 * * * *", "rfm": "4-59/15 * * * *"}  # rfm: always added


async def test_leadbot_crm_pull(
    tmp_path: Path, config: LeadbotConfig, hub: FakeHubSpot, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    url = f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
    engine = create_engine(url)
    await upgrade(engine)
    await _leads(engine, config)
    (tmp_path / "model.yaml").write_text(SMALL_MODEL)
    env = {"DATABASE_URL": url, "LEADBOT_CONFIG": str(tmp_path / "model.yaml"),
           "HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_API_URL": hub.url}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    hub.add_contact(IDEAL["email"], lifecyclestage="customer", modified_at=NOW - 40 * DAY)
    assert await asyncio.to_thread(main, ["crm", "pull", "--since", "not a time"]) == 2
    assert "--since" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["crm", "pull", "--crm", "salesforce"]) == 2
    assert "SALESFORCE_INSTANCE_URL" in capsys.readouterr().err
    since = time.strftime("%Y-%m-%d", time.gmtime(NOW - 45 * DAY))
    assert await asyncio.to_thread(main, ["crm", "pull", "--since", since]) == 0
    assert capsys.readouterr().out == "hubspot: 1 outcomes, 1 new labels, 0 matching no lead\n"
    assert len(await _labels(engine)) == 1
    await hub.stop()
    assert await asyncio.to_thread(main, ["crm", "pull"]) == 1
    assert "hubspot: failed, cursor kept" in capsys.readouterr().err
    await engine.dispose()
