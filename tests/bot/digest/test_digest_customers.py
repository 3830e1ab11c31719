"""The digest's customers section: present with customers (segment sizes, moves, revenue at
risk, top champions, a chart panel), in every renderer and through the outbox's JSON;
absent for a leads-only install and in a team's digest."""

from __future__ import annotations

import io

import orjson
from matplotlib.image import imread
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.customer_alerts import recompute_and_alert
from bot.chat.routing import Router
from bot.digest.chart import render_chart
from bot.digest.codec import digest_from_json, digest_to_json
from bot.digest.content import Period, Scope, build_digest
from bot.digest.plain import render_text
from bot.slack.digest_blocks import digest_blocks
from bot.teams.digest_card import digest_card
from config.loader import LeadbotConfig
from tests.bot.conftest import DAY, T0
from tests.bot.jobs.test_rfm import bought, ingest, shop_history

LATER = T0 + 150 * DAY


async def slipped(engine: AsyncEngine, config: LeadbotConfig) -> None:
    await ingest(engine, config, *shop_history(T0), now=T0)
    await recompute_and_alert(engine, config.rfm, router=Router(), now=T0)
    fresh = [bought(f"c{i}", f"c{i}-new", LATER - (1 + i) * DAY, 40.0) for i in range(9)]
    await ingest(engine, config, *fresh, now=LATER)
    await recompute_and_alert(engine, config.rfm, router=Router(), now=LATER)


async def week(engine: AsyncEngine, config: LeadbotConfig, scope: Scope | None = None):  # type: ignore[no-untyped-def]
    now = LATER + 3600
    return await build_digest(
        engine, config=config, period=Period.last("week", now), scope=scope or Scope.everyone(),
        now=now,
    )  # fmt: skip


def width(png: bytes) -> int:
    return int(imread(io.BytesIO(png), format="png").shape[1])


async def test_the_customers_section_and_its_chart_panel(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await slipped(engine, config)
    digest = await week(engine, config)
    section = digest.customers
    assert section is not None
    assert section.customers == 10
    risky = [s for s in section.segments if s.name in ("At risk", "Can't lose them")]
    assert sum(s.moved_in for s in risky) == 1  # the star
    assert section.moves >= 1
    assert section.at_risk_revenue == sum(s.revenue for s in risky) >= 9600.0  # the star's
    assert section.at_risk_customers == sum(s.customers for s in risky) >= 1
    assert "star" not in [c.id for c in section.champions]
    stored = digest_from_json(digest_to_json(digest))  # as the outbox delivers it
    assert stored.customers == section
    blocks, _ = digest_blocks(stored)
    teams = orjson.dumps(digest_card(stored)).decode().replace("\\\\", "")  # unescaped
    for shown in (render_text(stored), orjson.dumps(blocks).decode(), teams):
        assert "Customers (RFM)" in shown
        risk = f"{section.at_risk_revenue:,.0f} EUR ({section.at_risk_customers} customers At"
        assert f"Revenue at risk: {risk}" in shown
        assert f"10 customers, {section.moves} moved between segments" in shown
    assert width(render_chart(digest)) > 1200  # the segment panel beside the other two


async def test_no_section_without_customers_or_in_a_team_digest(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    empty = await week(engine, config)
    assert empty.customers is None
    assert "Customers (RFM)" not in render_text(empty)
    assert "customers" not in digest_to_json(empty)
    assert width(render_chart(empty)) == 1000  # leads only: the chart as before
    await slipped(engine, config)
    team = await week(engine, config, Scope.team("emea", ["U0AAA1"]))
    assert team.customers is None
