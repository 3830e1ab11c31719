"""SLA follow-up through the running bot: a hot lead alerted in Slack (signed webhook), then
``sla_sweep`` at controlled times — a reminder in the alert's thread, an escalation to the
manager's DM, nothing twice, nothing once someone claims, judges or snoozes the lead."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.app import build_app
from bot.ingest.signatures import sign
from bot.jobs.sla import ESCALATION, REMINDER, sla_sweep
from bot.outbox.messages import CoolingMessage, SlaEscalation, SlaReminder
from bot.slack.followup_blocks import cooling_message, escalation_message, reminder_message
from bot.web.keys import DISPATCHER, ENGINE
from config.loader import LeadbotConfig, load_config
from storage.claims import snooze_lead
from storage.engine import session_factory
from storage.feedback import record_feedback
from storage.tables import OutboxMessage
from tests.bot.conftest import IDEAL, SMALL_MODEL, identify, track
from tests.bot.slack.test_slack_app import action_body, post_slack
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client, eventually, slack_settings
from tests.fakes.slack_api import Call, FakeSlack

HOUR = 3600.0
BOSS = "U0BOSS"
REP = "U0REP1"
LEAD = "u1"


class Clock:
    """The bot's clock, moved by the test (it starts at the real time: Slack's signatures
    are checked against the real clock)."""

    def __init__(self) -> None:
        self.start = self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def at(self, hours: float) -> float:
        self.now = self.start + hours * HOUR
        return self.now


def sla_config(extra: str = f"managers: [{BOSS}]\n") -> LeadbotConfig:
    text = SMALL_MODEL + "sla: {remind_after_hours: 4, escalate_after_hours: 24}\n" + extra
    return load_config(text=text, name="sla.yaml")


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def started(db_url: str, config: LeadbotConfig, slack: FakeSlack, clock: Clock) -> Client:
    settings = slack_settings(db_url, slack)
    app = build_app(settings=settings, config=config, clock=clock)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def bot(db_url: str, slack: FakeSlack, clock: Clock) -> AsyncIterator[Client]:
    """The bot, alerting in #sales-alerts; sweeps may use another config (``sla`` and
    ``managers`` are read by the sweep only)."""
    client = await started(db_url, sla_config(), slack, clock)
    try:
        yield client
    finally:
        await client.close()


async def alerted(client: Client, slack: FakeSlack, clock: Clock) -> Call:
    """Dana Reyes (lead u1) turns hot through a signed webhook; her alert is posted."""
    now = clock()
    body = orjson.dumps(
        {"batch": [identify(LEAD, now, **IDEAL), track(LEAD, "Demo Requested", now)]}
    )
    headers = sign(WEBHOOK_SECRET, body, msg_id="m-hot", timestamp=int(now))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202
    await eventually(lambda: len(posts(slack)) == 1)
    return posts(slack)[0]


def posts(slack: FakeSlack) -> list[Call]:
    return slack.calls_to("chat.postMessage", ok_only=True)


def ts_of(slack: FakeSlack, call: Call) -> str:
    """The ts Slack gave the message ``call`` posted."""
    channel = slack.channel_id(str(call.body["channel"]))
    text = call.body["text"]
    return next(
        m["ts"] for (ch, _), m in slack.messages.items() if ch == channel and m["text"] == text
    )


async def sweep(client: Client, clock: Clock, hours: float) -> int:
    """Run the sweep at ``hours`` after the alert and let the bot deliver what it queued."""
    queued = await sla_sweep(client.app[ENGINE], config=sla_config(), now=clock.at(hours))
    client.app[DISPATCHER].wake()
    return queued


async def delivered(client: Client, slack: FakeSlack, count: int) -> None:
    await eventually(lambda: len(posts(slack)) == count)


async def outbox_kinds(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        query = select(col(OutboxMessage.kind)).order_by(col(OutboxMessage.id))
        return list((await conn.execute(query)).scalars())


async def test_reminder_in_the_thread_then_escalation_to_the_managers_dm_then_nothing(
    bot: Client, slack: FakeSlack, clock: Clock
) -> None:
    alert = await alerted(bot, slack, clock)
    assert await sweep(bot, clock, 3) == 0
    assert await sweep(bot, clock, 4) == 1
    await delivered(bot, slack, 2)
    reminder = posts(slack)[1]
    assert slack.channel_id(reminder.body["channel"]) == slack.channel_id(alert.body["channel"])
    assert reminder.body["thread_ts"] == ts_of(slack, alert)
    assert "Reminder: Dana Reyes (AcmeSoft) is still waiting" in reminder.body["text"]
    assert "alerted 4 h ago" in reminder.body["text"]
    assert await sweep(bot, clock, 5) == 0
    assert await sweep(bot, clock, 24) == 1
    await delivered(bot, slack, 3)
    escalation = posts(slack)[2]
    assert slack.calls_to("conversations.open")[-1].body["users"] == BOSS
    assert escalation.body["channel"] == slack.channel_id(f"@{BOSS}")
    assert "thread_ts" not in escalation.body
    assert escalation.body["text"].startswith("SLA missed: Dana Reyes (AcmeSoft)")
    flat = orjson.dumps(escalation.body["blocks"]).decode()
    assert f"<#{slack.channel_id('#sales-alerts')}>" in flat  # where the alert is
    claim = action_body(slack, "claim", LEAD, user=REP, ts=ts_of(slack, alert), n=1)
    assert (await post_slack(bot, claim)).status == 200
    await eventually(lambda: bool(slack.calls_to("chat.update")))
    assert await sweep(bot, clock, 30) == 0
    assert await sweep(bot, clock, 60) == 0
    assert len(posts(slack)) == 3
    assert await outbox_kinds(bot.app[ENGINE]) == ["alert", REMINDER, ESCALATION]


async def test_a_claim_after_the_reminder_stops_the_escalation(
    bot: Client, slack: FakeSlack, clock: Clock
) -> None:
    alert = await alerted(bot, slack, clock)
    assert await sweep(bot, clock, 4.5) == 1
    await delivered(bot, slack, 2)
    clock.at(6)
    claim = action_body(slack, "claim", LEAD, user=REP, ts=ts_of(slack, alert), n=2)
    assert (await post_slack(bot, claim)).status == 200
    await eventually(lambda: bool(slack.calls_to("chat.update")))
    assert await sweep(bot, clock, 24) == 0
    assert await sweep(bot, clock, 48) == 0
    assert len(posts(slack)) == 2


async def test_feedback_since_the_alert_stops_it_and_a_snooze_delays_it(
    bot: Client, slack: FakeSlack, clock: Clock
) -> None:
    await alerted(bot, slack, clock)
    engine = bot.app[ENGINE]
    async with session_factory(engine)() as session:
        await snooze_lead(session, lead_id=LEAD, until=_at(clock, 10))
        await session.commit()
    assert await sweep(bot, clock, 5) == 0  # snoozed until +10 h
    assert await sweep(bot, clock, 10.5) == 1  # the snooze is over: the reminder is due
    async with session_factory(engine)() as session:
        await record_feedback(
            session, lead_id=LEAD, outcome="disqualified", reason="no budget", by="slack:U0REP1",
            at=_at(clock, 11), features={},
        )  # fmt: skip
        await session.commit()
    assert await sweep(bot, clock, 30) == 0


async def test_escalate_to_wins_over_the_managers(
    bot: Client, slack: FakeSlack, clock: Clock
) -> None:
    await alerted(bot, slack, clock)
    config = load_config(
        text=SMALL_MODEL + f"managers: [{BOSS}]\nsla: {{escalate_to: '#sales-leads'}}\n"
    )
    engine = bot.app[ENGINE]
    assert await sla_sweep(engine, config=config, now=clock.at(25)) == 2  # both due at once
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OutboxMessage.kind, OutboxMessage.destination))).all()  # type: ignore[call-overload]
    alert_channel = slack.channel_id("#sales-alerts")
    assert set(rows) == {
        ("alert", "slack:#sales-alerts"),
        (REMINDER, f"slack:{alert_channel}"),
        (ESCALATION, "slack:#sales-leads"),
    }


async def test_without_managers_the_escalation_goes_to_the_alerts_channel(
    bot: Client, slack: FakeSlack, clock: Clock
) -> None:
    await alerted(bot, slack, clock)
    engine = bot.app[ENGINE]
    config = load_config(text=SMALL_MODEL)
    assert await sla_sweep(engine, config=config, now=clock.at(24)) == 2
    bot.app[DISPATCHER].wake()
    await delivered(bot, slack, 3)
    channel = slack.channel_id("#sales-alerts")
    assert [slack.channel_id(p.body["channel"]) for p in posts(slack)] == [channel] * 3
    reminder, escalation = posts(slack)[1:]
    assert "thread_ts" in reminder.body
    assert "thread_ts" not in escalation.body


def _at(clock: Clock, hours: float) -> datetime:
    return datetime.fromtimestamp(clock.start, UTC) + timedelta(hours=hours)


HOSTILE = {"id": "x1", "email": "a@b.co", "name": "<!channel> *boss*", "company": "<@U0EVIL>"}


def _payload(**extra: Any) -> dict[str, Any]:
    return {
        "lead": HOSTILE, "score": 71.25, "band": "hot", "hours_waiting": 26.0,
        "alerted_in": ["slack:C0ALERTS", "console"], "routed_to": [REP],
        "text": "SLA missed: <!channel> *boss* (<@U0EVIL>) waited 26 h", **extra,
    }  # fmt: skip


def test_follow_ups_escape_lead_data_and_mention_only_our_ids() -> None:
    rendered = (reminder_message(SlaReminder.from_payload(_payload())),
                escalation_message(SlaEscalation.from_payload(_payload())))  # fmt: skip
    for blocks, text in rendered:
        flat = orjson.dumps(blocks).decode()
        assert "<!channel>" not in flat
        assert "<@U0EVIL>" not in flat
        assert "&lt;!channel&gt;" in flat
        assert "<!channel>" not in text
        assert f"<@{REP}>" in flat
    blocks, _ = escalation_message(SlaEscalation.from_payload(_payload()))
    flat = orjson.dumps(blocks).decode()
    assert "<#C0ALERTS>" in flat
    assert "26 h" in flat
    assert "71.2" in flat or "71.3" in flat


def test_cooling_notice_renders_the_band_change() -> None:
    payload = {"lead": HOSTILE, "from": "hot", "to": "warm", "score": 55.0,
               "text": "cooling down", "thread_of": {"lead_id": "x1"}}  # fmt: skip
    blocks, text = cooling_message(CoolingMessage.from_payload(payload))
    flat = orjson.dumps(blocks).decode()
    assert "hot → warm" in flat
    assert "55.0" in flat
    assert "&lt;!channel&gt;" in flat
    assert text == "cooling down"
