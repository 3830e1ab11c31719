"""The CRM syncer against a fake HubSpot at the wire: batches, pace, outages, refusals, and
a change that arrives while a write is under way."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.hubspot import HubSpotConnector
from bot.crm.sync import CrmSyncer, reasons_line
from bot.ingest.pipeline import Pipeline
from bot.models.live import ActiveModel
from bot.outage import Backoff
from config.crm import HubSpotOutcomes
from config.loader import LeadbotConfig
from scoring import LeadState, score
from storage.crm import LINKS
from tests.bot.conftest import IDEAL, T0, events, identify, track
from tests.fakes.hubspot_api import FakeHubSpot
from tests.logs import logged, until_logged
from tests.outage import movable_database

TOKEN = "pat-sync"


@pytest.fixture
def hubspot_token() -> str:
    return TOKEN  # the fake HubSpot (tests/bot/crm/conftest.py) takes this one


@pytest.fixture
def crm_config(config: LeadbotConfig) -> LeadbotConfig:
    return dataclasses.replace(config, crm=dataclasses.replace(config.crm, targets=("hubspot",)))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def syncer(engine: AsyncEngine, hub: FakeHubSpot, config: LeadbotConfig, clock: Clock) -> CrmSyncer:
    connector = HubSpotConnector(TOKEN, HubSpotOutcomes(), api_url=hub.url, timeout=2.0)
    return CrmSyncer(engine, [connector], ActiveModel(config.model), clock=clock)


async def leads(engine: AsyncEngine, config: LeadbotConfig, n: int) -> None:
    calls = [identify(f"u{i}", T0, **(IDEAL | {"email": f"p{i}@acme.example"})) for i in range(n)]
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(*calls), now=T0)


async def dirty_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(LINKS.c.dirty_at))).all()
    return sum(1 for (at,) in rows if at is not None)


async def test_changed_leads_are_written_in_batches_of_100_at_a_pace(
    engine: AsyncEngine, hub: FakeHubSpot, crm_config: LeadbotConfig
) -> None:
    await leads(engine, crm_config, 150)
    sync = syncer(engine, hub, crm_config, Clock(T0 + 60))
    started = time.monotonic()
    assert await sync.run_once() == 150
    upserts = hub.requests_to("POST", "/crm/v3/objects/contacts/batch/upsert")
    assert [len(r.json["inputs"]) for r in upserts] == [100, 50]
    assert time.monotonic() - started >= 0.1  # HubSpot's 100 requests per 10 s
    assert len(hub.contacts) == 150
    assert await dirty_count(engine) == 0
    assert await sync.run_once() == 0  # nothing changed since: nothing sent
    assert len(hub.requests_to("POST", "/crm/v3/objects/contacts/batch/upsert")) == 2


async def test_the_score_sent_is_the_score_now_with_its_reasons(
    engine: AsyncEngine, hub: FakeHubSpot, crm_config: LeadbotConfig
) -> None:
    async with Pipeline(engine, crm_config) as pipeline:
        calls = events(identify("u1", T0, **IDEAL), track("u1", "Demo Requested", T0 + 1))
        await pipeline.ingest(calls, now=T0 + 1)
    later = T0 + 7 * 86400  # a week on: the demo request has decayed
    await syncer(engine, hub, crm_config, Clock(later)).run_once()
    contact = hub.contact_by_email(IDEAL["email"])
    assert contact is not None
    async with engine.connect() as conn:
        state = (await conn.execute(select(LINKS.c.record_url))).scalar_one()
    assert state is not None
    assert contact.id in state
    expected = score(
        LeadState.from_dict(await _state(engine, "u1")), crm_config.model, later
    )  # fmt: skip
    assert float(contact.properties["leadbot_score"]) == pytest.approx(expected.total, abs=0.05)
    assert contact.properties["leadbot_band"] == str(expected.band)
    assert contact.properties["leadbot_reasons"] == reasons_line(expected, 3)


async def _state(engine: AsyncEngine, lead_id: str) -> dict:  # type: ignore[type-arg]
    from storage.ingest import LEADS

    async with engine.connect() as conn:
        query = select(LEADS.c.state).where(LEADS.c.id == lead_id)
        return dict((await conn.execute(query)).scalar_one())


async def test_an_outage_only_delays_and_retry_after_is_honoured(
    engine: AsyncEngine, hub: FakeHubSpot, crm_config: LeadbotConfig
) -> None:
    await leads(engine, crm_config, 3)
    clock = Clock(T0 + 60)
    sync = syncer(engine, hub, crm_config, clock)
    hub.fail_next(429, 1, retry_after=30)
    assert await sync.run_once() == 0
    assert await dirty_count(engine) == 3
    asked = len(hub.requests)
    clock.now += 10  # within Retry-After: the syncer does not ask again
    assert await sync.run_once() == 0
    assert len(hub.requests) == asked
    clock.now += 25
    hub.fail_next(500, 1)
    assert await sync.run_once() == 0  # a 5xx, the second failure in a row: 15 s
    clock.now += 10
    assert await sync.run_once() == 0
    clock.now += 6
    assert await sync.run_once() == 3
    assert await dirty_count(engine) == 0


async def test_a_record_refused_alone_waits_and_the_others_are_written(
    engine: AsyncEngine, hub: FakeHubSpot, crm_config: LeadbotConfig
) -> None:
    calls = [identify("ok", T0, **IDEAL), identify("bad", T0, **(IDEAL | {"email": "x@bad"}))]
    async with Pipeline(engine, crm_config) as pipeline:
        await pipeline.ingest(events(*calls), now=T0)
    clock = Clock(T0 + 60)
    sync = syncer(engine, hub, crm_config, clock)
    assert await sync.run_once() == 1
    async with engine.connect() as conn:
        rows = {r.lead_id: r for r in (await conn.execute(select(LINKS))).all()}
    assert rows["ok"].dirty_at is None
    assert rows["bad"].dirty_at is not None  # kept: the next change of the lead retries it
    assert rows["bad"].last_error
    assert rows["bad"].next_at.timestamp() == pytest.approx(T0 + 60 + 86400)


async def test_a_change_during_a_write_is_written_after_it(
    engine: AsyncEngine, hub: FakeHubSpot, crm_config: LeadbotConfig
) -> None:
    await leads(engine, crm_config, 1)
    clock = Clock(T0 + 60)
    sync = syncer(engine, hub, crm_config, clock)
    held = hub.hold_next()  # the write is slow; meanwhile the lead changes
    write = asyncio.create_task(sync.run_once())
    await asyncio.wait_for(held.arrived.wait(), 10)  # read at T0 + 60, being sent
    async with Pipeline(engine, crm_config) as pipeline:
        await pipeline.ingest(events(track("u0", "Demo Requested", T0 + 61)), now=T0 + 61)
    clock.now = T0 + 62
    held.release()
    assert await write == 2  # the slow write cleared nothing it had not read: sent again
    upserts = hub.requests_to("POST", "/crm/v3/objects/contacts/batch/upsert")
    first, second = (float(r.json["inputs"][0]["properties"]["leadbot_score"]) for r in upserts)
    assert second == pytest.approx(first + 30, abs=1.0)  # with the demo request
    assert await dirty_count(engine) == 0


async def test_both_crms_get_the_score_and_salesforce_skips_a_lead_it_lacks(
    engine: AsyncEngine, hub: FakeHubSpot, config: LeadbotConfig
) -> None:
    from bot.crm.salesforce import SalesforceConnector
    from config.crm import SalesforceOutcomes
    from tests.fakes.salesforce_api import FakeSalesforce

    both = dataclasses.replace(
        config, crm=dataclasses.replace(config.crm, targets=("hubspot", "salesforce"))
    )
    await leads(engine, both, 2)
    async with FakeSalesforce() as sfdc:
        known = sfdc.add_lead("p0@acme.example")
        salesforce = SalesforceConnector(
            outcomes=SalesforceOutcomes(), instance_url=sfdc.url, access_token=sfdc.token,
            verify=sfdc.ca_file, timeout=2.0,
        )  # fmt: skip
        hubspot = HubSpotConnector(TOKEN, HubSpotOutcomes(), api_url=hub.url, timeout=2.0)
        try:
            sync = CrmSyncer(engine, [hubspot, salesforce], ActiveModel(both.model),
                             clock=Clock(T0 + 60))  # fmt: skip
            assert await sync.run_once() == 3  # two HubSpot contacts, one Salesforce Lead
        finally:
            salesforce.close()
        assert float(sfdc.lead(known)["Leadbot_Score__c"]) > 0
        assert len(hub.contacts) == 2
    async with engine.connect() as conn:
        rows = {(r.lead_id, r.crm): r for r in (await conn.execute(select(LINKS))).all()}
    assert rows[("u0", "salesforce")].record_url.endswith(f"/lightning/r/Lead/{known}/view")
    assert rows[("u1", "salesforce")].dirty_at is not None  # no such Lead: waits, not dropped
    assert "no Lead" in rows[("u1", "salesforce")].last_error


async def test_a_database_outage_delays_the_sync_and_does_not_end_it(
    tmp_path: Path, hub: FakeHubSpot, crm_config: LeadbotConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The database goes away while the syncer runs, and comes back: the changed leads are
    written then, and the wait was one line."""
    caplog.set_level(logging.INFO, logger="bot.crm.sync")
    async with movable_database(tmp_path) as db:
        await leads(db.engine, crm_config, 3)
        db.take_away()
        sync = syncer(db.engine, hub, crm_config, Clock(T0 + 60))
        sync.backoff = Backoff(first=0.02, most=0.05)
        task = asyncio.create_task(sync.run())
        try:
            await until_logged(caplog, "CRM sync failed")
            await asyncio.sleep(0.1)  # a few more rounds fail
            assert not task.done()
            db.put_back()
            async with asyncio.timeout(10):
                while await dirty_count(db.engine):  # noqa: ASYNC110 (a database read)
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert len(hub.contacts) == 3
    [failed] = logged(caplog, "CRM sync failed")
    assert "unable to open database file" in failed.getMessage()
    assert not failed.exc_info
    assert logged(caplog, "CRM sync works again")
