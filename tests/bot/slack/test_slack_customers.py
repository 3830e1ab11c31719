"""Customers in Slack end to end: signed ``/lead customer`` commands and button clicks to
/slack/events, the fake Slack Web API at the wire, a real database (SQLite, PostgreSQL)."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.destinations import running_router
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import Settings
from storage.customer_alerts import ACTIONS
from tests.bot.customer_helpers import NOW, slipping_star
from tests.bot.slack.test_slack_app import command_body, post_slack
from tests.bot.slack_helpers import (
    Client,
    click_payload,
    eventually,
    recorded_alert,
    slack_settings,
)
from tests.fakes.slack_api import FakeSlack

DAY = 86_400.0


@pytest.fixture
def settings(db_url: str, slack: FakeSlack) -> Settings:
    return slack_settings(db_url, slack)


@pytest.fixture
async def client(settings: Settings, config: LeadbotConfig) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        yield client


async def answer(slack: FakeSlack, n: int) -> str:
    await eventually(lambda: len(slack.calls_to("response_url")) >= n)
    return orjson.dumps(slack.calls_to("response_url")[n - 1].body).decode()


async def test_lead_customer_shows_scores_segment_orders_and_history(
    client: Client, slack: FakeSlack, settings: Settings, config: LeadbotConfig
) -> None:
    router = running_router(settings, config)
    await slipping_star(client, client.app[ENGINE], config, router)
    resp = await post_slack(client, command_body(slack, "customer star@shop.example"))
    assert resp.status == 200
    shown = await answer(slack, 1)
    assert "Dana &lt;b&gt;Star&lt;/b&gt;" in shown  # lead data escaped in mrkdwn
    for expected in ("Champions", "*12* orders", "9,600.00 EUR", "Segment history",
                     "Last orders", "star-0", "R *"):  # fmt: skip
        assert expected in shown, expected
    assert "151 days ago" in shown

    await post_slack(client, command_body(slack, "customer nobody@else.example", n=2))
    assert "No lead or customer matches 'nobody@else.example'" in await answer(slack, 2)
    await post_slack(client, command_body(slack, "help", n=3))
    assert "/lead customer &lt;email|id&gt; — a customer's RFM" in await answer(slack, 3)


async def test_the_slipping_alert_is_posted_once_and_snooze_updates_it(
    client: Client, slack: FakeSlack, settings: Settings, config: LeadbotConfig
) -> None:
    engine = client.app[ENGINE]
    await slipping_star(client, engine, config, running_router(settings, config))
    await eventually(lambda: len(slack.calls_to("chat.postMessage")) == 1)
    [post] = slack.calls_to("chat.postMessage")
    assert post.body["channel"] == "#sales-alerts"
    posted = orjson.dumps(post.body).decode()
    assert "last order 151 days ago, usually every 10 days; 9,600 EUR in the last year" in posted
    for label in ("Reached out", "Snooze", "Not a concern"):
        assert label in posted
    channel, ts = await recorded_alert(client, slack)  # a click comes after the record

    payload: dict[str, Any] = click_payload(slack, "x", "star", user="U0ALICE", ts=ts, n=1)
    payload["channel"]["id"] = channel
    payload["actions"][0]["action_id"] = "customer_snooze"
    body = urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()})
    assert (await post_slack(client, body)).status == 200
    await eventually(lambda: len(slack.calls_to("chat.update")) == 1)
    updated = orjson.dumps(slack.messages[(channel, ts)]["blocks"]).decode()
    assert "Snoozed by <@U0ALICE> until" in updated
    assert "Reached out" in updated
    assert "customer_snooze" not in updated  # the snooze button is spent
    async with engine.connect() as conn:
        [row] = (await conn.execute(select(ACTIONS))).all()
    assert (row.lead_id, row.action, row.by) == ("star", "snooze", "slack:U0ALICE")
    assert row.snoozed_until.timestamp() > NOW + 13 * DAY
