"""The ingest marks a lead for its CRMs exactly when its score, band or grade changed."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig
from storage.crm import LINKS, claim_due, mark_written
from tests.bot.conftest import IDEAL, T0, events, identify, page, track


def with_crms(config: LeadbotConfig, *crms: str) -> LeadbotConfig:
    return dataclasses.replace(config, crm=dataclasses.replace(config.crm, targets=crms))


async def dirty(engine: AsyncEngine) -> dict[tuple[str, str], float | None]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(LINKS.c.lead_id, LINKS.c.crm, LINKS.c.dirty_at))
        return {(lead, crm): (at.timestamp() if at else None) for lead, crm, at in rows}


async def test_changed_leads_with_an_email_are_marked_for_each_crm(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    async with Pipeline(engine, with_crms(config, "hubspot", "salesforce")) as pipeline:
        await pipeline.ingest(events(identify("u1", T0, **IDEAL)), now=T0)
        await pipeline.ingest(events(page(None, "/pricing", T0, anonymousId="a-9")), now=T0)
        marked = await dirty(engine)
        assert set(marked) == {("u1", "hubspot"), ("u1", "salesforce")}  # not the anonymous
        assert marked[("u1", "hubspot")] == T0
        # Written, then an event that moves nothing (a blog page: 1 point, same band).
        async with engine.begin() as conn:
            due = await conn.run_sync(
                lambda c: claim_due(c, crm="hubspot", now=T0 + 1, limit=10, lease_until=T0 + 60)
            )
            assert [d.lead_id for d in due] == ["u1"]
            written = {"u1": ("501", None)}
            await conn.run_sync(
                lambda c: mark_written(
                    c, crm="hubspot", written=written, read_at=T0 + 1, now=T0 + 2
                )
            )
        await pipeline.ingest(events(page("u1", "/blog/x", T0 + 10)), now=T0 + 10)
        assert (await dirty(engine))[("u1", "hubspot")] is None
        # A demo request moves the score by 30: due again.
        await pipeline.ingest(events(track("u1", "Demo Requested", T0 + 20)), now=T0 + 20)
        assert (await dirty(engine))[("u1", "hubspot")] == T0 + 20


async def test_no_crm_configured_marks_nothing(engine: AsyncEngine, config: LeadbotConfig) -> None:
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(identify("u1", T0, **IDEAL)), now=T0)
    assert await dirty(engine) == {}


async def test_a_rescore_makes_linked_leads_due_again(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    from bot.models.rescore import rescore

    async with Pipeline(engine, with_crms(config, "hubspot")) as pipeline:
        await pipeline.ingest(events(identify("u1", T0, **IDEAL)), now=T0)
    async with engine.begin() as conn:
        written = {"u1": ("501", None)}
        await conn.run_sync(
            lambda c: mark_written(c, crm="hubspot", written=written, read_at=T0, now=T0)
        )
    assert (await dirty(engine))[("u1", "hubspot")] is None
    halved = dataclasses.replace(
        config.model, rules=tuple(dataclasses.replace(r, points=r.points / 2)
                                  for r in config.model.rules))  # fmt: skip
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda c: rescore(c, model=halved, now=T0 + 5, history_delta=5.0, cause="test")
        )
    assert (await dirty(engine))[("u1", "hubspot")] == T0 + 5
