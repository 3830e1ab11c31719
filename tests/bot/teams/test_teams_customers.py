"""Customers in Teams end to end: ``lead customer`` messages and clicks on the slipping
customer's card posted to /api/messages, the fake Bot Connector at the wire, a real
database (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.chat.routing import Router
from bot.web.keys import DISPATCHER, ENGINE
from config.loader import LeadbotConfig
from storage.customer_alerts import ACTIONS
from tests.bot.customer_helpers import slipping_star
from tests.bot.slack_helpers import Client, eventually
from tests.bot.teams.test_teams_app import (
    CHANNEL,
    REP,
    execute,
    flat,
    install,
    mention,
    post,
    recorded_post,
)
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.filterwarnings(
    "ignore:It is recommended to use web.RequestKey:aiohttp.web_exceptions.NotAppKeyWarning"
)


async def star_alert(client: Client, fake: FakeConnector, config: LeadbotConfig) -> str:
    await install(client, fake)
    router = Router(config.routing, teams=True)
    await slipping_star(client, client.app[ENGINE], config, router)
    client.app[DISPATCHER].wake()
    await eventually(lambda: len(fake.posted(CHANNEL)) == 1)
    [(card_id, _)] = fake.activities[CHANNEL].items()
    await recorded_post(client, card_id)  # a click comes after the post is recorded
    return card_id


async def test_lead_customer_is_answered_with_a_card(
    client: Client, fake: FakeConnector, config: LeadbotConfig
) -> None:
    await star_alert(client, fake, config)
    assert (await post(client, mention(fake, "lead customer star@shop.example"))).status in (
        200, 202,
    )  # fmt: skip
    [reply] = fake.calls_to("reply")
    card = flat(reply.body["attachments"][0]["content"])
    assert "Dana <b\\\\>Star</b\\\\>" in card  # lead data made inert (plain)
    for expected in ("Segment history", "Last orders", "12 orders", "9,600.00 EUR", "star\\\\-0"):
        assert expected in card, expected
    await post(client, mention(fake, "lead customer ghost@nowhere.example"))
    missing = flat(fake.calls_to("reply")[-1].body)
    assert "No lead or customer matches" in missing


async def test_the_alert_card_and_its_buttons_store_and_redraw(
    client: Client, fake: FakeConnector, config: LeadbotConfig
) -> None:
    card_id = await star_alert(client, fake, config)
    posted = flat(fake.activities[CHANNEL][card_id])
    assert "usually every 10 days; 9,600 EUR in the last year" in posted
    for verb in ("customer_reached_out", "customer_snooze", "customer_not_a_concern"):
        assert verb in posted
    data: dict[str, Any] = {"leadbot": "customer_action", "action": "reached_out",
                            "lead_id": "star"}  # fmt: skip
    resp = await post(client, execute(fake, card_id, "customer_reached_out", **data))
    assert resp.status == 200
    answer = flat(await resp.json())
    assert "Reached out by Riley Rep" in answer
    assert "customer_snooze" not in answer  # decided: no buttons left
    await eventually(lambda: len(fake.calls_to("update")) == 1)
    async with client.app[ENGINE].connect() as conn:
        [row] = (await conn.execute(select(ACTIONS))).all()
    assert (row.lead_id, row.action, row.by) == ("star", "reached_out", f"teams:{REP}")
