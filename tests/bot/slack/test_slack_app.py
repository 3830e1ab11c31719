"""Slack end to end: signed requests to /slack/events as Slack sends them, the fake Slack
Web API at the wire, a real database. Nothing of leadbot's own is patched."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from bot.app import build_app
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from storage.tables import Feedback, Lead
from tests.bot.slack_helpers import (
    SIGNING_SECRET,
    Client,
    click_payload,
    count,
    eventually,
    hot_lead,
    recorded_alert,
    slack_settings,
)
from tests.fakes.slack_api import FakeSlack
from tests.logs import warned_once
from tests.outage import OUTAGE_REPLY, cut_postgres


@pytest.fixture
async def client(db_url: str, config: LeadbotConfig, slack: FakeSlack) -> AsyncIterator[Client]:
    settings = slack_settings(db_url, slack)
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        yield client


def slack_headers(body: str, *, at: float | None = None, secret: str = SIGNING_SECRET) -> dict:  # type: ignore[type-arg]
    ts = str(int(at if at is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command_body(slack: FakeSlack, text: str, *, user: str = "U0REP1", n: int = 1) -> str:
    return urllib.parse.urlencode({
        "token": "legacy", "team_id": "T0TEAM", "channel_id": "C0SALES", "user_id": user,
        "user_name": "rep", "command": "/lead", "text": text, "trigger_id": f"trig.{n}",
        "response_url": slack.response_url(f"cmd{n}"), "api_app_id": "A0APP",
    })  # fmt: skip


def action_body(slack: FakeSlack, action: str, lead_id: str, *, user: str, ts: str, n: int) -> str:
    payload = click_payload(slack, action, lead_id, user=user, ts=ts, n=n)
    return urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()})


async def post_slack(client: Client, body: str, **headers: str) -> Any:
    return await client.post(
        "/slack/events", data=body.encode(), headers={**slack_headers(body), **headers}
    )


async def test_a_hot_lead_gives_one_alert_with_breakdown_and_buttons(
    client: Client, slack: FakeSlack
) -> None:
    started = time.monotonic()
    await hot_lead(client)
    await eventually(lambda: len(slack.calls_to("chat.postMessage")) == 1)
    assert time.monotonic() - started < 1.0
    [post] = slack.calls_to("chat.postMessage")
    assert post.body["channel"] == "#sales-alerts"
    blocks = post.body["blocks"]
    blocks = orjson.loads(blocks) if isinstance(blocks, str) else blocks
    flat = orjson.dumps(blocks).decode()
    assert "Requested a demo" in flat
    assert "Sales leader" in flat
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons[:4] == ["lead_claim", "lead_qualify", "lead_disqualify", "lead_snooze"]
    assert "Dana Reyes" in post.body["text"]
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("chat.postMessage")) == 1  # exactly one


async def test_lead_score_answers_with_the_score(client: Client, slack: FakeSlack) -> None:
    await hot_lead(client)
    started = time.monotonic()
    resp = await post_slack(client, command_body(slack, "score dana@acmesoft.com"))
    assert resp.status == 200
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    assert time.monotonic() - started < 3.0
    [answer] = slack.calls_to("response_url")
    assert answer.body["response_type"] == "ephemeral"
    assert "Dana Reyes" in orjson.dumps(answer.body).decode()


async def test_lead_feedback_is_stored_once_even_when_slack_resends_it(
    client: Client, slack: FakeSlack
) -> None:
    await hot_lead(client)
    body = command_body(slack, "feedback dana@acmesoft.com won signed the annual plan")
    assert (await post_slack(client, body)).status == 200
    assert (await post_slack(client, body, **{"X-Slack-Retry-Num": "1"})).status == 200
    await eventually(lambda: len(slack.calls_to("response_url")) >= 1)
    await asyncio.sleep(0.2)
    assert await count(client, Feedback) == 1
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()
    assert (row["outcome"], row["by"]) == ("won", "slack:U0REP1")
    assert row["features"]["rules"]["demo"] > 0.9
    assert "won" in orjson.dumps(slack.calls_to("response_url")[0].body).decode()


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: slack_headers(body, secret="not-the-secret"),
        lambda body: slack_headers(body, at=time.time() - 600),
        lambda body: {"Content-Type": "application/x-www-form-urlencoded"},
    ],
    ids=["forged", "replayed", "unsigned"],
)
async def test_forged_or_replayed_requests_get_401_and_change_nothing(
    client: Client,
    slack: FakeSlack,
    headers: Callable[[str], dict],  # type: ignore[type-arg]
) -> None:
    await hot_lead(client)
    body = command_body(slack, "feedback dana@acmesoft.com lost")
    resp = await client.post("/slack/events", data=body.encode(), headers=headers(body))
    assert resp.status == 401
    await asyncio.sleep(0.1)
    assert await count(client, Feedback) == 0
    assert slack.calls_to("response_url") == []


async def test_claim_updates_the_alert_and_a_second_claim_is_told_it_is_taken(
    client: Client, slack: FakeSlack
) -> None:
    await hot_lead(client)
    await eventually(lambda: len(slack.calls_to("chat.postMessage")) == 1)
    channel, ts = await recorded_alert(client, slack)
    first = action_body(slack, "claim", "u1", user="U0ALICE", ts=ts, n=1)
    assert (await post_slack(client, first)).status == 200
    await eventually(lambda: len(slack.calls_to("chat.update")) == 1)
    updated = orjson.dumps(slack.messages[(channel, ts)]["blocks"]).decode()
    assert "U0ALICE" in updated
    second = action_body(slack, "claim", "u1", user="U0BOB", ts=ts, n=2)
    assert (await post_slack(client, second)).status == 200
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    notice = slack.calls_to("response_url")[0].body
    assert notice["response_type"] == "ephemeral"
    assert "claimed" in orjson.dumps(notice).decode().lower()
    async with client.app[ENGINE].connect() as conn:
        claimed_by = (await conn.execute(select(Lead.claimed_by))).scalar_one()  # type: ignore[call-overload]
    assert claimed_by == "slack:U0ALICE"
    assert len(slack.calls_to("chat.update")) == 1


async def test_qualified_click_stores_feedback_and_disqualify_asks_the_reason(
    client: Client, slack: FakeSlack
) -> None:
    await hot_lead(client)
    _channel, ts = await recorded_alert(client, slack)
    qualify = action_body(slack, "qualify", "u1", user="U0ALICE", ts=ts, n=3)
    assert (await post_slack(client, qualify)).status == 200
    await eventually(lambda: len(slack.calls_to("chat.update")) == 1)
    assert await count(client, Feedback) == 1
    disqualify = action_body(slack, "disqualify", "u1", user="U0ALICE", ts=ts, n=4)
    assert (await post_slack(client, disqualify)).status == 200
    await eventually(lambda: len(slack.calls_to("views.open")) == 1)
    view = slack.calls_to("views.open")[0].body["view"]
    view = orjson.loads(view) if isinstance(view, str) else view
    assert "bad fit" in orjson.dumps(view).decode()


async def test_the_disqualify_form_stores_the_reason_and_updates_the_alert(
    client: Client, slack: FakeSlack
) -> None:
    await hot_lead(client)
    channel, ts = await recorded_alert(client, slack)
    assert (await post_slack(client, action_body(slack, "disqualify", "u1", user="U0ALICE",
                                                 ts=ts, n=5))).status == 200  # fmt: skip
    await eventually(lambda: len(slack.calls_to("views.open")) == 1)
    opened = slack.calls_to("views.open")[0].body["view"]
    opened = orjson.loads(opened) if isinstance(opened, str) else opened
    submission = {
        "type": "view_submission", "team": {"id": "T0TEAM"}, "api_app_id": "A0APP",
        "user": {"id": "U0ALICE", "name": "alice"}, "trigger_id": "trig.view.1",
        "view": {
            "id": "V1", "type": "modal", "callback_id": opened["callback_id"],
            "private_metadata": opened["private_metadata"],
            "state": {"values": {
                "reason": {"reason": {"type": "radio_buttons",
                                      "selected_option": {"value": "no budget"}}},
                "note": {"note": {"type": "plain_text_input", "value": "frozen until Q3"}},
            }},
        },
    }  # fmt: skip
    body = urllib.parse.urlencode({"payload": orjson.dumps(submission).decode()})
    assert (await post_slack(client, body)).status == 200
    await eventually(lambda: len(slack.calls_to("chat.update")) == 1)
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()
    assert row["outcome"] == "disqualified"
    assert row["reason"].startswith("no budget")
    assert "frozen until Q3" in row["reason"]
    assert "Disqualified" in orjson.dumps(slack.messages[(channel, ts)]["blocks"]).decode()


def test_links_slack_made_of_what_a_rep_typed_are_unwrapped() -> None:
    from bot.slack.app import unwrap_links

    assert unwrap_links("score <mailto:Dana@Acme.com|Dana@Acme.com> public") == (
        "score Dana@Acme.com public"
    )
    assert unwrap_links("feedback <https://acme.example/x|acme> won") == (
        "feedback https://acme.example/x won"
    )
    assert unwrap_links("score dana reyes") == "score dana reyes"


async def test_a_click_on_an_unknown_lead_gets_a_private_explanation(
    client: Client, slack: FakeSlack
) -> None:
    body = action_body(slack, "claim", "nobody-here", user="U0ALICE", ts="1.000001", n=9)
    assert (await post_slack(client, body)).status == 200
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    answer = slack.calls_to("response_url")[0].body
    assert answer["response_type"] == "ephemeral"
    assert "nobody-here" in answer["text"]
    assert "Nothing was changed" in answer["text"]


async def test_a_command_while_the_database_is_down_tells_the_rep_to_try_again(
    postgres_url: str, config: LeadbotConfig, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stops taking connections: `/lead score` answers the rep privately that the
    database is unreachable, and the log has a warning, not a traceback."""
    settings = slack_settings(postgres_url, slack)
    caplog.set_level(logging.INFO, logger="bot.slack.app")
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        await hot_lead(client)
        await cut_postgres(postgres_url, allow=False)
        try:
            resp = await post_slack(client, command_body(slack, "score dana@acmesoft.com"))
            assert resp.status == 200
            await eventually(lambda: len(slack.calls_to("response_url")) == 1, seconds=10)
        finally:
            await cut_postgres(postgres_url, allow=True)
    [answer] = slack.calls_to("response_url")
    assert answer.body["response_type"] == "ephemeral"
    assert answer.body["text"] == OUTAGE_REPLY
    warned_once(caplog, "Slack request failed")
