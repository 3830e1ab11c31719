"""Scheduled digests from the outbox to Slack: ``queue_digest`` stores the digest (blocks,
fallback, plain text, chart), the dispatcher posts it and uploads the PNG in its thread
with ``files_upload_v2`` — against the fake Slack Web API at the wire."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app
from bot.digest.delivery import queue_digest
from bot.ingest.signatures import sign
from bot.outbox.dispatcher import Dispatcher
from bot.outbox.messages import DigestMessage
from bot.slack.runtime import renderers
from bot.slack.transport import SlackTransport
from bot.web.keys import DISPATCHER, ENGINE
from config.loader import LeadbotConfig, load_config
from config.schedules import Schedule
from storage.ingest import OUTBOX
from tests.bot.conftest import IDEAL, SMALL_MODEL, T0, identify, track
from tests.bot.slack.test_slack_transport import Clock
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client, eventually, slack_settings
from tests.fakes.slack_api import UPLOAD, FakeSlack

BOSS = "U0BOSS"
PNG = b"\x89PNG\r\n\x1a\n"
CONFIG = f"""
managers: [{BOSS}]
routing:
  teams: {{emea: [U0REP1, U0REP2]}}
"""
DAILY = Schedule(job="digest", cron="0 8 * * *", period="day")
EMEA = Schedule(
    job="digest", cron="0 8 * * 1", period="week", team="emea", to=("slack:#sales-managers",)
)


@pytest.fixture
def digest_config() -> LeadbotConfig:
    return load_config(text=SMALL_MODEL + CONFIG, name="digest.yaml")


@pytest.fixture
async def bot(db_url: str, digest_config: LeadbotConfig, slack: FakeSlack) -> AsyncIterator[Client]:
    settings = slack_settings(db_url, slack)
    client: Client = TestClient(TestServer(build_app(settings=settings, config=digest_config)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def hot_lead(client: Client) -> None:
    now = time.time()
    body = orjson.dumps(
        {"batch": [identify("u1", now, **IDEAL), track("u1", "Demo Requested", now)]}
    )
    headers = sign(WEBHOOK_SECRET, body, msg_id="m-hot", timestamp=int(now))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202


async def digest_rows(engine: AsyncEngine) -> list[dict]:  # type: ignore[type-arg]
    async with engine.connect() as conn:
        query = select(OUTBOX).where(OUTBOX.c.kind == "digest").order_by(OUTBOX.c.id)
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_a_daily_digest_reaches_the_managers_dm_with_its_chart_in_the_thread(
    bot: Client, slack: FakeSlack, digest_config: LeadbotConfig
) -> None:
    await hot_lead(bot)
    await eventually(lambda: len(slack.calls_to("chat.postMessage")) == 1)  # the alert
    engine = bot.app[ENGINE]
    assert await queue_digest(engine, config=digest_config, schedule=DAILY, now=time.time()) == 1
    bot.app[DISPATCHER].wake()
    await eventually(lambda: any(u.completed for u in slack.uploads), seconds=5)
    post = slack.calls_to("chat.postMessage", ok_only=True)[1]
    dm = slack.channel_id(f"@{BOSS}")
    assert post.body["channel"] == dm
    assert post.body["blocks"][0]["type"] == "header"
    assert post.body["blocks"][0]["text"]["text"] == "Daily digest — all leads"
    assert "Dana Reyes (AcmeSoft)" in orjson.dumps(post.body["blocks"]).decode()
    assert post.body["text"].startswith("Daily digest — all leads\n")
    assert "New hot leads: 1" in post.body["text"]
    ts = next(ts for (ch, ts), m in slack.messages.items() if ch == dm)
    [upload] = slack.uploads
    assert (upload.channel_id, upload.thread_ts) == (dm, ts)
    assert (upload.filename, upload.title) == ("digest.png", "Daily digest — all leads")
    assert upload.content is not None
    assert upload.content.startswith(PNG)
    assert upload.length == len(upload.content)
    for _ in range(100):  # marked sent right after the upload returns
        [row] = await digest_rows(engine)
        if row["status"] == "sent":
            break
        await asyncio.sleep(0.02)
    assert row["status"] == "sent"
    assert base64.b64decode(row["payload"]["chart"]["png_base64"]) == upload.content
    stored = DigestMessage.from_payload(row["payload"])  # data, not Block Kit
    assert "blocks" not in row["payload"]
    assert stored.digest is not None
    assert dict(stored.digest.funnel)["hot"] == 1
    assert post.body["text"].startswith("Daily digest — all leads")
    assert "Funnel (each counted in the period): new leads 1 · turned hot 1" in post.body["text"]
    steps = [c.method for c in slack.calls if c.method.startswith("files.") or c.method == UPLOAD]
    assert steps == ["files.getUploadURLExternal", UPLOAD, "files.completeUploadExternal"]


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test", clock=clock) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def dispatcher(
    engine: AsyncEngine, fake: FakeSlack, clock: Clock, config: LeadbotConfig
) -> Dispatcher:
    transport = SlackTransport(
        token="xoxb-test", base_url=fake.url, renderers=renderers(config), clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    return Dispatcher(engine, transport, clock=clock)


async def test_a_team_digest_goes_to_its_channel_once_and_the_chart_to_the_channel_id(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock, digest_config: LeadbotConfig
) -> None:
    queue: dict[str, Any] = {"config": digest_config, "schedule": EMEA}
    assert await queue_digest(sqlite_engine, **queue, now=T0) == 1
    assert await queue_digest(sqlite_engine, **queue, now=T0 + 20) == 0  # same slot
    assert await dispatcher(sqlite_engine, fake, clock, digest_config).run_once() == 1
    [post] = fake.calls_to("chat.postMessage")
    assert post.body["channel"] == "#sales-managers"
    assert post.body["text"].startswith("Weekly digest — team emea")
    [upload] = fake.uploads
    # completeUploadExternal wants a channel id: the one chat.postMessage answered.
    assert upload.channel_id == fake.channel_id("#sales-managers")
    assert upload.channel_id != "#sales-managers"
    assert upload.completed
    [row] = await digest_rows(sqlite_engine)
    assert row["destination"] == "slack:#sales-managers"
    stored = DigestMessage.from_payload(row["payload"]).digest
    assert stored is not None
    assert (stored.scope.kind, stored.scope.name, stored.period.name) == ("team", "emea", "week")


async def test_a_failed_upload_keeps_the_digest_delivered_once_and_says_why(
    sqlite_engine: AsyncEngine,
    fake: FakeSlack,
    clock: Clock,
    digest_config: LeadbotConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await queue_digest(sqlite_engine, config=digest_config, schedule=DAILY, now=T0)
    fake.error_next("files.completeUploadExternal", "missing_scope", needed="files:write")
    deliver = dispatcher(sqlite_engine, fake, clock, digest_config)
    with caplog.at_level(logging.ERROR):
        assert await deliver.run_once() == 1
    clock.now += 3600
    assert await deliver.run_once() == 0
    assert len(fake.calls_to("chat.postMessage")) == 1
    [row] = await digest_rows(sqlite_engine)
    assert row["status"] == "sent"
    assert not fake.uploads[0].completed
    assert "could not be uploaded" in caplog.text
    assert "files:write" in caplog.text


async def test_an_unknown_team_is_named(
    sqlite_engine: AsyncEngine, digest_config: LeadbotConfig
) -> None:
    schedule = Schedule(job="digest", cron="0 8 * * *", period="day", team="apac")
    with pytest.raises(ValueError, match=r"'apac'.*emea"):
        await queue_digest(sqlite_engine, config=digest_config, schedule=schedule, now=T0)
