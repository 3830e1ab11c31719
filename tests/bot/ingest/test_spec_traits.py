"""The Segment spec's trait names reach the default model's rules: an identify's ``title``,
``company`` object and ``address``, and a group call's ``employees`` and ``industry``."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from config.loader import load_config
from scoring import LeadState
from storage.ingest import LEADS
from tests.bot.conftest import T0, call, events


async def stored(engine: AsyncEngine, lead_id: str) -> dict:  # type: ignore[type-arg]
    async with engine.connect() as conn:
        row = (await conn.execute(select(LEADS).where(LEADS.c.id == lead_id))).mappings().one()
    return dict(row)


@pytest.mark.parametrize("company_from", ["identify", "group"])
async def test_spec_traits_fire_the_default_fit_rules(
    engine: AsyncEngine, company_from: str
) -> None:
    person = {"email": "ines@northwind.example", "firstName": "Ines", "lastName": "Ortega",
              "title": "VP of Sales", "address": {"country": "Germany"}}  # fmt: skip
    calls = [call("identify", T0, userId="u1", traits=person)]
    if company_from == "identify":  # the identify spec's company object
        person["company"] = {"name": "Northwind", "employee_count": 450, "industry": "Software"}
    else:  # a group call, with the group spec's names
        group = {"name": "Northwind", "employees": 450, "industry": "Software", "plan": "pro"}
        calls.append(call("group", T0 + 1, userId="u1", groupId="g-7", traits=group))
    async with Pipeline(engine, load_config(None)) as pipeline:
        await pipeline.ingest(events(*calls), now=T0 + 2)
    lead = await stored(engine, "u1")
    assert (lead["name"], lead["company"]) == ("Ines Ortega", "Northwind")
    fired = LeadState.from_dict(lead["state"]).fit
    assert fired == {"role_sales_leader", "company_size_core", "industry_software", "core_country"}
