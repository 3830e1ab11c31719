"""Feedback into weights through the running bot: signed `/lead feedback` commands until
the learner refits, the proposal in a manager's DM at the fake Slack, signed Approve /
Reject clicks, the rescore, and the ingest scoring with the new version right after."""

from __future__ import annotations

import time
import urllib.parse
from functools import partial
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlmodel import col

from bot.app import build_app
from bot.ingest.signatures import sign
from bot.slack.approvals import REFUSAL
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig, load_config
from storage.tables import Lead, ModelVersion, ScoreChange
from tests.bot.conftest import SMALL_MODEL, identify, track
from tests.bot.slack.test_slack_app import command_body, post_slack
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client, eventually, slack_settings
from tests.fakes.slack_api import FakeSlack

BOSS = "U0BOSS"
LEARNING = """
managers: [{managers}]
learning:
  retrain_every: 20
  auto_apply: {auto}
  guardrails: {{min_labels: 10, max_change_points: 15, test_fraction: 0.25}}
"""
LEADS = 24  # 20 labelled, then more


def learning_config(*, managers: str = BOSS, auto: bool = False) -> LeadbotConfig:
    text = SMALL_MODEL + LEARNING.format(managers=managers, auto=str(auto).lower())
    return load_config(text=text, name="learning.yaml")


def running(db_url: str, config: LeadbotConfig, slack: FakeSlack) -> Client:
    """The bot with Slack at the fake; ``async with`` starts and stops it."""
    settings = slack_settings(db_url, slack)
    return TestClient(TestServer(build_app(settings=settings, config=config)))


def lead(i: int) -> dict[str, Any]:
    """Even leads are software companies, odd ones are not; every third is a VP."""
    industry = "Software" if i % 2 == 0 else "Retail"
    title = "VP Sales" if i % 3 == 0 else "Analyst"
    return {"email": f"lead{i}@corp{i}.com", "title": title, "company": {"industry": industry}}


async def send(client: Client, calls: list[dict[str, Any]], msg_id: str) -> None:
    body = orjson.dumps({"batch": calls})
    headers = sign(WEBHOOK_SECRET, body, msg_id=msg_id, timestamp=int(time.time()))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202


async def label_leads(client: Client, slack: FakeSlack, count: int) -> None:
    """Leads 0..LEADS-1, then `count` signed feedback commands: software won, others lost
    (the model gives software 10 points, the truth is stronger)."""
    now = time.time()
    await send(client, [identify(f"l{i}", now, **lead(i)) for i in range(LEADS)], "m-leads")
    for i in range(count):
        outcome = "won" if i % 2 == 0 else "lost"
        body = command_body(slack, f"feedback lead{i}@corp{i}.com {outcome}", n=100 + i)
        assert (await post_slack(client, body)).status == 200
        await eventually(partial(_answered, slack, i + 1))


def posted_to(slack: FakeSlack, channel: str) -> list[Any]:
    """Posts to a channel (``#name``) or to a user's DM (``@U…``), by the fake's ids."""
    target = slack.channel_id(channel)
    posts = slack.calls_to("chat.postMessage", ok_only=True)
    return [c for c in posts if slack.channel_id(str(c.body["channel"])) == target]


def blocks_of(call: Any) -> list[dict[str, Any]]:
    blocks = call.body["blocks"]
    return orjson.loads(blocks) if isinstance(blocks, str) else blocks


def decision_click(slack: FakeSlack, post: Any, action: str, *, user: str, n: int) -> str:
    """A signed-ready ``block_actions`` body for a proposal's button, as Slack sends it."""
    blocks = blocks_of(post)
    [version] = {e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
    channel = slack.channel_id(post.body["channel"])
    ts = next(ts for (ch, ts) in slack.messages if ch == channel)
    payload = {
        "type": "block_actions", "team": {"id": "T0TEAM"}, "api_app_id": "A0APP",
        "user": {"id": user, "name": user.lower()}, "trigger_id": f"trig.model.{n}",
        "channel": {"id": channel}, "container": {"type": "message", "message_ts": ts},
        "message": {"ts": ts, "blocks": blocks}, "response_url": slack.response_url(f"m{n}"),
        "actions": [{"action_id": f"model_{action}", "block_id": f"model_v{version}",
                     "value": version, "type": "button", "action_ts": str(time.time())}],
    }  # fmt: skip
    return urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()})


async def versions(client: Client) -> dict[int, str]:
    async with client.app[ENGINE].connect() as conn:
        rows = await conn.execute(select(ModelVersion.id, ModelVersion.status))  # type: ignore[call-overload]
        return {int(i): s for i, s in rows}


async def proposal_in_dm(client: Client, slack: FakeSlack, dm: str) -> Any:
    await label_leads(client, slack, 20)
    await eventually(lambda: len(posted_to(slack, dm)) == 1, seconds=10)
    return posted_to(slack, dm)[0]


async def test_twenty_labels_bring_a_proposal_to_the_managers_dm(
    db_url: str, slack: FakeSlack
) -> None:
    async with running(db_url, learning_config(), slack) as client:
        post = await proposal_in_dm(client, slack, f"@{BOSS}")
        flat = orjson.dumps(blocks_of(post)).decode()
        assert "Model v2 proposed" in flat
        assert "20 labels" in flat
        assert "Software company: 10 → " in flat  # the rule the labels say matters more
        assert "ROC AUC" in flat
        assert "hot conversion" in flat
        buttons = [
            e["action_id"] for b in blocks_of(post) if b["type"] == "actions" for e in b["elements"]
        ]
        assert buttons == ["model_approve", "model_reject"]
        assert await versions(client) == {1: "active", 2: "proposed"}


async def test_a_managers_approval_rescores_and_the_ingest_follows(
    db_url: str, slack: FakeSlack
) -> None:
    async with running(db_url, learning_config(), slack) as client:
        post = await proposal_in_dm(client, slack, f"@{BOSS}")
        assert (
            await post_slack(client, decision_click(slack, post, "approve", user=BOSS, n=1))
        ).status == 200
        await eventually(lambda: bool(slack.calls_to("chat.update")), seconds=10)
        [update] = slack.calls_to("chat.update")
        after = update.body["blocks"]
        after = orjson.loads(after) if isinstance(after, str) else after
        assert not [b for b in after if b["type"] == "actions"]
        assert f"approved by <@{BOSS}>" in orjson.dumps(after).decode()
        assert await versions(client) == {1: "retired", 2: "active"}
        engine = client.app[ENGINE]
        async with engine.connect() as conn:
            causes = (await conn.execute(select(col(ScoreChange.cause)))).scalars().all()
            query = select(col(ModelVersion.yaml)).where(col(ModelVersion.id) == 2)
            [points] = (await conn.execute(query)).scalars().all()
        assert "model v2" in causes
        software = load_config(text=points, name="v2").model.rule("software").points
        assert software > 10
        # A new event is scored with v2 at once: a software analyst requests a demo.
        await send(client, [track("l2", "Demo Requested", time.time())], "m-demo")
        async with engine.connect() as conn:
            score = (await conn.execute(select(Lead.fit).where(Lead.id == "l2"))).scalar_one()  # type: ignore[call-overload]
        assert score == software


async def test_reject_keeps_the_active_model(db_url: str, slack: FakeSlack) -> None:
    async with running(db_url, learning_config(), slack) as client:
        post = await proposal_in_dm(client, slack, f"@{BOSS}")
        assert (
            await post_slack(client, decision_click(slack, post, "reject", user=BOSS, n=2))
        ).status == 200
        await eventually(lambda: bool(slack.calls_to("chat.update")), seconds=10)
        assert (
            f"rejected by <@{BOSS}>" in orjson.dumps(slack.calls_to("chat.update")[0].body).decode()
        )
        assert await versions(client) == {1: "active", 2: "rejected"}


async def test_someone_not_a_manager_is_refused_and_nothing_changes(
    db_url: str, slack: FakeSlack
) -> None:
    async with running(db_url, learning_config(), slack) as client:
        post = await proposal_in_dm(client, slack, f"@{BOSS}")
        body = decision_click(slack, post, "approve", user="U0REP1", n=3)
        assert (await post_slack(client, body)).status == 200
        await eventually(
            lambda: any(c.path.endswith("/m3") for c in slack.calls_to("response_url"))
        )
        [refusal] = [c for c in slack.calls_to("response_url") if c.path.endswith("/m3")]
        assert refusal.body["text"] == REFUSAL
        assert refusal.body["response_type"] == "ephemeral"
        assert not slack.calls_to("chat.update")
        assert await versions(client) == {1: "active", 2: "proposed"}


async def test_a_member_of_a_manager_user_group_may_approve(db_url: str, slack: FakeSlack) -> None:
    slack.usergroups["S0MGRS"] = ["U0LEAD"]
    async with running(db_url, learning_config(managers="S0MGRS"), slack) as client:
        # No manager can be messaged directly: the proposal goes to the default channel.
        post = await proposal_in_dm(client, slack, "#sales-alerts")
        body = decision_click(slack, post, "approve", user="U0LEAD", n=4)
        assert (await post_slack(client, body)).status == 200
        await eventually(lambda: bool(slack.calls_to("chat.update")), seconds=10)
        assert await versions(client) == {1: "retired", 2: "active"}
        assert slack.calls_to("usergroups.users.list")[0].body["usergroup"] == "S0MGRS"


async def test_auto_apply_activates_an_improving_refit_and_says_so(
    db_url: str, slack: FakeSlack
) -> None:
    async with running(db_url, learning_config(auto=True), slack) as client:
        post = await proposal_in_dm(client, slack, f"@{BOSS}")
        flat = orjson.dumps(blocks_of(post)).decode()
        assert "Model v2 applied" in flat
        assert "applied automatically" in flat
        assert not [b for b in blocks_of(post) if b["type"] == "actions"]
        assert await versions(client) == {1: "retired", 2: "active"}


def _answered(slack: FakeSlack, n: int) -> bool:
    return len(slack.calls_to("response_url")) >= n
