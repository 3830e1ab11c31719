"""The alert's CRM button opens the lead's real record once it is known — found when the
alert is sent (the record may be linked after the alert was queued) and when a click
redraws it — else the configured template, else no button; Slack and Teams alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox.dispatcher import Dispatcher
from bot.outbox.messages import AlertMessage
from bot.slack.alert_blocks import CRM_ACTION, alert_message
from bot.slack.runtime import renderers
from bot.slack.transport import SlackTransport
from bot.teams.alert_card import alert_card
from bot.teams.runtime import renderer
from config.loader import LeadbotConfig
from storage import crm
from storage.engine import session_factory
from storage.ingest import enqueue
from storage.outbox import Claimed
from storage.posts import find_post, record_post
from tests.bot.alert_samples import sample_alert
from tests.bot.conftest import T0
from tests.bot.teams.test_teams_transport import CHANNEL, incoming, install, transport
from tests.fakes.clock import Clock
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector

HUBSPOT_URL = "https://app.hubspot.com/contacts/4412/record/0-1/51"
SALESFORCE_URL = "https://acme.my.salesforce.com/lightning/r/Lead/00Q5e00000AbCdE/view"
TEMPLATE = "https://crm.example/leads/{id}"


def _alert(config: LeadbotConfig, **records: str) -> AlertMessage:
    payload = sample_alert(config.model)
    if records:
        payload["crm_records"] = records
    return AlertMessage.from_payload(payload)


def _slack_button(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return next((e for e in buttons if e["action_id"] == CRM_ACTION), None)


def _teams_button(card: dict[str, Any]) -> dict[str, Any] | None:
    return next((a for a in card.get("actions", []) if a["type"] == "Action.OpenUrl"), None)


@pytest.mark.parametrize(
    ("records", "template", "title", "url"),
    [
        ({"hubspot": HUBSPOT_URL}, TEMPLATE, "Open in HubSpot", HUBSPOT_URL),  # record wins
        ({"salesforce": SALESFORCE_URL}, None, "Open in Salesforce", SALESFORCE_URL),
        ({"salesforce": SALESFORCE_URL, "hubspot": HUBSPOT_URL}, None, "Open in HubSpot",
         HUBSPOT_URL),
        ({}, TEMPLATE, "Open in CRM", "https://crm.example/leads/u1"),  # not known: template
        ({}, None, None, None),  # neither: no button
    ],
)  # fmt: skip
def test_both_renderers_open_the_record_else_the_template_else_nothing(
    config: LeadbotConfig,
    records: dict[str, str],
    template: str | None,
    title: str | None,
    url: str | None,
) -> None:
    alert = _alert(config, **records)
    blocks, _ = alert_message(alert, crm_url=template)
    slack = _slack_button(blocks)
    teams = _teams_button(alert_card(alert, crm_url=template))
    if title is None:
        assert slack is None
        assert teams is None
        return
    assert slack is not None
    assert teams is not None
    assert (slack["text"]["text"], slack["url"]) == (title, url)
    assert (teams["title"], teams["url"]) == (title, url)


def test_the_records_never_leak_into_what_the_outbox_stores(config: LeadbotConfig) -> None:
    alert = _alert(config, hubspot=HUBSPOT_URL)
    assert alert.crm_records == (("hubspot", HUBSPOT_URL),)
    assert AlertMessage.from_payload(alert.to_payload()) == alert  # round trip
    assert "crm_records" not in _alert(config).to_payload()


def _row(config: LeadbotConfig, destination: str) -> dict[str, Any]:
    return {"kind": "alert", "lead_id": "u1", "destination": destination, "dedupe_key": "a:u1",
            "payload": sample_alert(config.model), "status": "pending", "attempts": 0,
            "available_at": T0, "created_at": T0}  # fmt: skip


async def _queue_then_link(engine: AsyncEngine, row: dict[str, Any]) -> None:
    """The alert is queued first; the CRM sync learns the record a moment later."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=[row]))
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda c: crm.link_records(c, crm="hubspot", links={"u1": ("51", HUBSPOT_URL)})
        )


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test", clock=clock) as fake:
        yield fake


async def test_slack_posts_the_record_found_after_queueing_and_redraws_with_it(
    engine: AsyncEngine, slack: FakeSlack, clock: Clock, config: LeadbotConfig
) -> None:
    await _queue_then_link(engine, _row(config, "slack:C0ALERTS"))
    posts: list[str] = []

    async def on_posted(message: Claimed, channel: str, ts: str) -> None:
        async with session_factory(engine)() as session:
            await record_post(
                session, lead_id="u1", outbox_id=message.id, platform="slack",
                channel=channel, ts=ts, at=datetime.fromtimestamp(T0, UTC),
            )  # fmt: skip
            await session.commit()
        posts.append(ts)

    send = SlackTransport(
        token="xoxb-test", base_url=slack.url, renderers=renderers(config), clock=clock,
        sleep=clock.sleep, on_posted=on_posted,
    )  # fmt: skip
    assert await Dispatcher(engine, send, clock=clock).run_once() == 1
    [call] = slack.calls_to("chat.postMessage")
    button = _slack_button(call.body["blocks"])
    assert button is not None
    assert (button["text"]["text"], button["url"]) == ("Open in HubSpot", HUBSPOT_URL)
    # A click redraws the alert from its post: the record is read again there.
    async with session_factory(engine)() as session:
        posted = await find_post(session, platform="slack", channel="C0ALERTS", ts=posts[0])
    assert posted is not None
    redrawn, _ = alert_message(AlertMessage.from_payload(posted.payload))
    assert (_slack_button(redrawn) or {}).get("url") == HUBSPOT_URL


async def test_teams_sends_the_record_found_after_queueing(
    engine: AsyncEngine, clock: Clock, config: LeadbotConfig
) -> None:
    async with FakeConnector() as fake:
        await install(engine, incoming(fake, CHANNEL, "channel", team={"id": CHANNEL}))
        await _queue_then_link(engine, _row(config, f"teams:conversation:{CHANNEL}"))
        send = transport(engine, clock, render=renderer(config))
        assert await Dispatcher(engine, send, clock=clock).run_once() == 1
        [call] = fake.calls
    [attachment] = call.body["attachments"]
    button = _teams_button(attachment["content"])
    assert button is not None
    assert (button["title"], button["url"]) == ("Open in HubSpot", HUBSPOT_URL)


async def test_an_alert_sent_before_the_record_is_known_keeps_no_record_button(
    engine: AsyncEngine, slack: FakeSlack, clock: Clock, config: LeadbotConfig
) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=[_row(config, "slack:C0ALERTS")]))
    send = SlackTransport(
        token="xoxb-test", base_url=slack.url, renderers=renderers(config), clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    assert await Dispatcher(engine, send, clock=clock).run_once() == 1
    [call] = slack.calls_to("chat.postMessage")
    assert _slack_button(call.body["blocks"]) is None  # no template configured, no record
