"""CRM outcomes become labels once, on the lead they match, with the lead's features."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.base import CrmOutcome
from bot.crm.outcomes import store_outcomes
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig
from storage.crm import FEEDBACK, LINKS
from tests.bot.conftest import IDEAL, T0, events, identify, track


def won(record: str, email: str | None, crm: str = "hubspot") -> CrmOutcome:
    return CrmOutcome(crm=crm, record_id=record, email=email, outcome="won", at=T0 + 3600,
                      reason="lifecycle stage customer", ref=f"{record}:won")  # fmt: skip


async def test_outcomes_match_by_email_then_by_record_and_store_once(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    async with Pipeline(engine, config) as pipeline:
        calls = events(identify("u1", T0, **IDEAL), track("u1", "Demo Requested", T0 + 60))
        await pipeline.ingest(calls, now=T0 + 120)
    email = IDEAL["email"]
    first = await store_outcomes(engine, [won("501", email.upper()), won("999", "nobody@x.test")],
                                 model=config.model)  # fmt: skip
    assert (first.stored, first.duplicates, first.unmatched) == (1, 0, ["999"])
    # The same outcome again, now found by the record id the first one linked.
    again = await store_outcomes(engine, [won("501", None)], model=config.model)
    assert (again.stored, again.duplicates) == (0, 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(FEEDBACK))).mappings().all()
        links = (await conn.execute(select(LINKS.c.lead_id, LINKS.c.crm, LINKS.c.record_id))).all()
    [row] = rows
    assert (row["lead_id"], row["outcome"], row["source"], row["by"]) == (
        "u1", "won", "crm:hubspot", "crm:hubspot")  # fmt: skip
    assert row["ref"] == "501:won"
    assert row["features"]["rules"]["demo"] > 0  # the snapshot the learner fits on
    assert links == [("u1", "hubspot", "501")]
    # A lost outcome of the same record is a label of its own.
    lost = CrmOutcome(crm="hubspot", record_id="501", email=None, outcome="lost", at=T0 + 7200,
                      reason="lead status unqualified", ref="501:lost")  # fmt: skip
    assert (await store_outcomes(engine, [lost], model=config.model)).stored == 1
