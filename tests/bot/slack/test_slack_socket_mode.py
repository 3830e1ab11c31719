"""Slack over Socket Mode, end to end: the real app connects with its app-level token to the
fake Socket Mode server, gets envelopes on the WebSocket, acks them there, and answers
through the fake Web API and response URLs. No signing secret is set: Socket Mode needs none.
Nothing of leadbot's own is patched."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.app import StartupError, build_app
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from storage.tables import Feedback, Lead
from tests.bot.slack_helpers import (
    WEBHOOK_SECRET,
    Client,
    click_payload,
    count,
    eventually,
    hot_lead,
    recorded_alert,
)
from tests.fakes.slack_socket import FakeSocketSlack

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-1-A0LEADBOT-test"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSocketSlack]:
    async with FakeSocketSlack(token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


def socket_settings(db_url: str, slack: FakeSocketSlack) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url, "LEADBOT_INGEST": "thread",
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack.url,
    }  # fmt: skip


@pytest.fixture
async def client(
    db_url: str, config: LeadbotConfig, slack: FakeSocketSlack
) -> AsyncIterator[Client]:
    settings = load_settings(socket_settings(db_url, slack))
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        await slack.wait_connected()
        yield client


def command(slack: FakeSocketSlack, text: str, *, user: str = "U0REP1", n: int = 1) -> dict:  # type: ignore[type-arg]
    """A slash command's payload as Socket Mode carries it: the HTTP form's fields as JSON."""
    return {
        "token": "legacy", "team_id": "T0TEAM", "team_domain": "acme", "channel_id": "C0SALES",
        "channel_name": "sales", "user_id": user, "user_name": "rep", "command": "/lead",
        "text": text, "api_app_id": "A0LEADBOT", "is_enterprise_install": "false",
        "response_url": slack.response_url(f"cmd{n}"), "trigger_id": f"trig.{n}",
    }  # fmt: skip


def click(slack: FakeSocketSlack, action: str, lead_id: str, *, user: str, ts: str, n: int) -> dict:  # type: ignore[type-arg]
    """A ``block_actions`` payload for one of the alert's buttons."""
    return click_payload(slack, action, lead_id, user=user, ts=ts, n=n)


def text_of(call_body: dict[str, Any]) -> str:
    return orjson.dumps(call_body).decode()


async def test_the_app_opens_the_connection_with_its_app_token(
    client: Client, slack: FakeSocketSlack
) -> None:
    [opened] = slack.calls_to("apps.connections.open")
    assert opened.ok
    assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert len(slack.connections) == 1
    assert slack.current is slack.connections[0]


async def test_lead_feedback_envelope_is_acked_and_stored(
    client: Client, slack: FakeSocketSlack
) -> None:
    await hot_lead(client)
    payload = command(slack, "feedback dana@acmesoft.com won signed the annual plan")
    ack = await slack.send_envelope("slash_commands", payload)
    assert ack["envelope_id"].startswith("env-")
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    assert await count(client, Feedback) == 1
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()
    assert (row["outcome"], row["by"]) == ("won", "slack:U0REP1")
    assert row["features"]["rules"]["demo"] > 0.9
    assert "won" in text_of(slack.calls_to("response_url")[0].body)


async def test_lead_score_envelope_answers_through_its_response_url(
    client: Client, slack: FakeSocketSlack
) -> None:
    await hot_lead(client)
    started = time.monotonic()
    await slack.send_envelope("slash_commands", command(slack, "score dana@acmesoft.com", n=2))
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    assert time.monotonic() - started < 3.0
    [answer] = slack.calls_to("response_url")
    assert answer.path.endswith("/cmd2")
    assert answer.body["response_type"] == "ephemeral"
    assert "Dana Reyes" in text_of(answer.body)


async def test_every_envelope_is_a_new_request_but_a_redelivery_acts_once(
    client: Client, slack: FakeSocketSlack
) -> None:
    """Socket Mode hands Bolt the payload as a dict (no raw body): two different commands must
    both be answered, and the same payload delivered again must not act twice."""
    await hot_lead(client)
    await slack.send_envelope("slash_commands", command(slack, "score dana@acmesoft.com", n=1))
    won = command(slack, "feedback dana@acmesoft.com won", n=2)
    await slack.send_envelope("slash_commands", won)
    await eventually(lambda: len(slack.calls_to("response_url")) == 2)
    await slack.send_envelope("slash_commands", won, retry_attempt=1)
    await asyncio.sleep(0.2)
    assert await count(client, Feedback) == 1
    assert len(slack.calls_to("response_url")) == 2


async def test_a_claim_click_updates_the_alert(client: Client, slack: FakeSocketSlack) -> None:
    await hot_lead(client)
    channel, ts = await recorded_alert(client, slack)
    ack = await slack.send_envelope("interactive", click(slack, "claim", "u1", user="U0ALICE",
                                                         ts=ts, n=1))  # fmt: skip
    assert "payload" not in ack or not ack["payload"]  # a button's ack carries nothing
    await eventually(lambda: len(slack.calls_to("chat.update")) == 1)
    [update] = slack.calls_to("chat.update", ok_only=True)
    assert update.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert "U0ALICE" in text_of(slack.messages[(channel, ts)]["blocks"])
    async with client.app[ENGINE].connect() as conn:
        claimed_by = (await conn.execute(select(Lead.claimed_by))).scalar_one()  # type: ignore[call-overload]
    assert claimed_by == "slack:U0ALICE"


async def test_a_disconnect_request_moves_the_app_to_a_new_connection(
    client: Client, slack: FakeSocketSlack
) -> None:
    """Slack asks for a reconnect every few hours: the app opens a new URL, closes the old
    socket, and keeps answering."""
    first = await slack.wait_connected()
    await slack.send_disconnect()
    await eventually(lambda: len(slack.connections) == 2 and first.close_code is not None)
    assert len(slack.calls_to("apps.connections.open", ok_only=True)) == 2
    assert slack.current is slack.connections[1]
    await slack.send_envelope("slash_commands", command(slack, "help", n=3))
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    assert slack.connections[1].received[0]["envelope_id"].startswith("env-")


async def test_the_socket_closes_cleanly_on_shutdown(
    db_url: str,
    config: LeadbotConfig,
    slack: FakeSocketSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(socket_settings(db_url, slack))
    caplog.set_level(logging.INFO)
    async with TestClient(TestServer(build_app(settings=settings, config=config))):
        connection = await slack.wait_connected()
        await slack.send_envelope("slash_commands", command(slack, "help"))
    await eventually(lambda: connection.close_code is not None, seconds=1.0)
    assert connection.close_code == WSCloseCode.OK
    assert slack.current is None
    assert len(slack.calls_to("apps.connections.open")) == 1  # closing is not reconnecting
    await asyncio.sleep(0.05)  # the client's cancelled tasks finish; none may log a failure
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy]


async def test_http_events_are_not_served_when_only_socket_mode_is_set(
    client: Client, slack: FakeSocketSlack
) -> None:
    """Without a signing secret no HTTP request can be from Slack: /slack/events is not
    there at all (404), even for a request signed with an empty secret; nothing changes."""
    await hot_lead(client)
    body = "&".join(f"{k}={v}" for k, v in command(slack, "feedback dana@acmesoft.com lost")
                    .items())  # fmt: skip
    ts = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0="
        + hmac.new(b"", f"v0:{ts}:{body}".encode(), "sha256").hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    resp = await client.post("/slack/events", data=body.encode(), headers=headers)
    assert resp.status == 404
    await asyncio.sleep(0.1)
    assert await count(client, Feedback) == 0


@pytest.mark.parametrize(
    ("token", "error"),
    [("xapp-1-someone-else", "invalid_auth"), (BOT_TOKEN, "not_allowed_token_type")],
)
async def test_the_fake_refuses_connections_without_the_app_token(
    slack: FakeSocketSlack, token: str, error: str
) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.url)
    with pytest.raises(SlackApiError) as refused:
        await client.apps_connections_open(app_token=token)
    assert refused.value.response["error"] == error
    opened = await client.apps_connections_open(app_token=APP_TOKEN)
    assert opened["url"].startswith("ws://127.0.0.1:")


def test_build_app_refuses_a_bot_token_without_a_secret_or_an_app_token(
    db_url: str, config: LeadbotConfig
) -> None:
    settings = load_settings({
        "DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    })  # fmt: skip
    with pytest.raises(StartupError) as refused:
        build_app(settings=settings, config=config)
    assert "SLACK_SIGNING_SECRET" in str(refused.value)
    assert "SLACK_APP_TOKEN" in str(refused.value)
