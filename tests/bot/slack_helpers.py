"""What the Slack tests (HTTP and Socket Mode) share: waiting, counting, a hot lead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.ingest.signatures import generate_secret, sign
from bot.web.keys import ENGINE
from config.settings import Settings, load_settings
from storage.tables import AlertPost
from tests.bot.conftest import IDEAL, identify, track
from tests.fakes.slack_api import FakeSlack

WEBHOOK_SECRET = generate_secret()
SIGNING_SECRET = "slack-signing-secret-for-tests"

Client = TestClient[web.Request, web.Application]


async def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time allowed")


async def count(client: Client, model: Any) -> int:
    async with client.app[ENGINE].connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def hot_lead(client: Client) -> None:
    """Dana Reyes (lead ``u1``), hot, through a signed webhook."""
    now = time.time()
    body = orjson.dumps(
        {"batch": [identify("u1", now, **IDEAL), track("u1", "Demo Requested", now)]}
    )
    headers = sign(WEBHOOK_SECRET, body, msg_id="m-hot", timestamp=int(now))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202


def click_payload(
    slack: FakeSlack, action: str, lead_id: str, *, user: str, ts: str, n: int
) -> dict[str, Any]:
    """A ``block_actions`` payload for one of the alert's buttons, as Slack sends it."""
    return {
        "type": "block_actions", "team": {"id": "T0TEAM"}, "api_app_id": "A0APP",
        "user": {"id": user, "name": user.lower()}, "trigger_id": f"trig.click.{n}",
        "channel": {"id": "C00000001"}, "container": {"type": "message", "message_ts": ts},
        "message": {"ts": ts, "blocks": [{"type": "header", "text": {"type": "plain_text",
                                                                    "text": "Dana Reyes"}}]},
        "response_url": slack.response_url(f"click{n}"),
        "actions": [{"action_id": f"lead_{action}", "block_id": "actions", "value": lead_id,
                     "type": "button", "action_ts": str(time.time())}],
    }  # fmt: skip


def slack_settings(db_url: str, slack: FakeSlack, *, ingest: str = "thread") -> Settings:
    """Settings for the bot with signed webhooks and Slack at the fake Web API."""
    return load_settings({
        "DATABASE_URL": db_url, "LEADBOT_INGEST": ingest,
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET, "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.url,
    })  # fmt: skip


async def recorded_alert(client: Client, slack: FakeSlack) -> tuple[str, str]:
    """The alert's ``(channel, ts)`` once Slack holds it and the bot has recorded it as its
    post: Slack answers ``chat.postMessage`` before the bot commits the record, and a click
    in between finds no alert to update (the bot says so and tells the clicker)."""
    await eventually(lambda: bool(slack.messages))
    ((channel, ts),) = slack.messages
    posts = AlertPost.__table__.c  # type: ignore[attr-defined]
    query = select(posts.ts).where(posts.channel == channel, posts.ts == ts)
    for _ in range(150):
        async with client.app[ENGINE].connect() as conn:
            if (await conn.execute(query)).first() is not None:
                return channel, ts
        await asyncio.sleep(0.02)
    raise AssertionError(f"the bot never recorded its post {channel}/{ts}")
