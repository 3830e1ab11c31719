"""Alert routing: console without Slack; owner, rules in order, teams taking turns, default."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import CONSOLE, Router
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig, load_config
from storage.ingest import OUTBOX
from tests.bot.conftest import IDEAL, SMALL_MODEL, T0, events, identify, track

ROUTED = (
    SMALL_MODEL
    + """
routing:
  owner: {trait: crm_owner, users: {"jane@acme.example": U0OWNER1}}
  teams: {enterprise: [U0AAA1, U0BBB2]}
  rules:
    - name: dach
      when: {address.country: {one_of: [de, at]}}
      channel: "#sales-dach"
    - name: big
      when: {company.employee_count: {range: {min: 1000}}}
      team: enterprise
"""
)


def _router(config: LeadbotConfig, channel: str | None = "#sales-alerts") -> Router:
    return Router(config.routing, slack_channel=channel)


def test_without_slack_everything_goes_to_the_console() -> None:
    config = load_config(text=ROUTED, name="r.yaml")
    assert _router(config, None).destinations({"crm_owner": "jane@acme.example"}) == (CONSOLE,)


def test_owner_first_then_rules_in_order_then_the_default() -> None:
    router = _router(load_config(text=ROUTED, name="r.yaml"))
    german_enterprise = {"address": {"country": "DE"}, "company": {"employee_count": 5000}}
    assert router.destinations({**german_enterprise, "crm_owner": "Jane@Acme.example"}) == (
        "slack:@U0OWNER1",
    )
    assert router.destinations(german_enterprise) == ("slack:#sales-dach",)
    assert router.destinations({"address": {"country": "US"}}) == ("slack:#sales-alerts",)


def test_a_team_takes_turns() -> None:
    router = _router(load_config(text=ROUTED, name="r.yaml"))
    big = {"company": {"employee_count": 2000}}
    turns = [router.destinations(big) for _ in range(5)]
    assert turns == [("slack:@U0AAA1",), ("slack:@U0BBB2",)] * 2 + [("slack:@U0AAA1",)]


async def test_the_pipeline_queues_the_alert_for_the_routed_destination(
    engine: AsyncEngine,
) -> None:
    config = load_config(text=ROUTED, name="r.yaml")
    async with Pipeline(engine, config, router=_router(config)) as pipeline:
        german = {**IDEAL, "address": {"country": "AT"}}
        await pipeline.ingest(
            events(identify("u1", T0, **german), track("u1", "Demo Requested", T0)), now=T0
        )
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OUTBOX.c.destination, OUTBOX.c.kind))).all()
    assert [tuple(r) for r in rows] == [("slack:#sales-dach", "alert")]
