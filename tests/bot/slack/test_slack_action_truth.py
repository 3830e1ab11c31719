"""A click tells the truth (issue 12 point 5): once the action is committed, a failed
refresh of the alert says what was stored, never "nothing was changed". Signed requests to
the real app, the fake Slack Web API answering ``chat.update`` with ``message_not_found``,
a real database."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.slack.views import DISQUALIFY_CALLBACK
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from storage.tables import Feedback, Lead
from tests.bot.slack.test_slack_app import action_body, post_slack
from tests.bot.slack_helpers import Client, eventually, hot_lead, recorded_alert, slack_settings
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
async def client(db_url: str, config: LeadbotConfig, slack: FakeSlack) -> AsyncIterator[Client]:
    settings = slack_settings(db_url, slack)
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        yield client


async def alert_ts(client: Client, slack: FakeSlack) -> str:
    await hot_lead(client)
    _channel, ts = await recorded_alert(client, slack)
    return ts


@pytest.mark.parametrize(
    ("action", "said"),
    [("claim", "Claimed"), ("qualify", "Qualified"), ("snooze", "Snoozed")],
)
async def test_a_stored_click_whose_alert_cannot_be_refreshed_says_what_was_stored(
    client: Client, slack: FakeSlack, action: str, said: str
) -> None:
    ts = await alert_ts(client, slack)
    slack.error_next("chat.update", "message_not_found")  # deleted meanwhile, say
    assert (await post_slack(client, action_body(slack, action, "u1", user="U0ALICE",
                                                 ts=ts, n=1))).status == 200  # fmt: skip
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    [told] = slack.calls_to("response_url")
    assert told.body["response_type"] == "ephemeral"
    assert told.body["text"] == f"{said} — I couldn't refresh the alert."
    assert [c.ok for c in slack.calls_to("chat.update")] == [False]
    async with client.app[ENGINE].connect() as conn:
        lead = (await conn.execute(select(Lead))).mappings().one()  # type: ignore[call-overload]
        feedback = (await conn.execute(select(Feedback))).mappings().all()  # type: ignore[call-overload]
    stored = {
        "claim": lead["claimed_by"] == "slack:U0ALICE",
        "qualify": [f["outcome"] for f in feedback] == ["qualified"],
        "snooze": lead["snoozed_until"] is not None,
    }
    assert stored[action]


async def test_the_disqualify_form_says_what_was_stored_when_the_alert_is_gone(
    client: Client, slack: FakeSlack
) -> None:
    """A form has no response_url: the clicker is told in the alert's channel, privately."""
    ts = await alert_ts(client, slack)
    ((channel, _),) = slack.messages
    meta = orjson.dumps({"lead": "u1", "channel": channel, "ts": ts}).decode()
    submission = {
        "type": "view_submission", "team": {"id": "T0TEAM"}, "api_app_id": "A0APP",
        "user": {"id": "U0ALICE", "name": "alice"}, "trigger_id": "trig.view.9",
        "view": {
            "id": "V9", "type": "modal", "callback_id": DISQUALIFY_CALLBACK,
            "private_metadata": meta,
            "state": {"values": {"reason": {"reason": {
                "type": "radio_buttons", "selected_option": {"value": "no budget"}}}}},
        },
    }  # fmt: skip
    slack.error_next("chat.update", "message_not_found")
    body = urllib.parse.urlencode({"payload": orjson.dumps(submission).decode()})
    assert (await post_slack(client, body)).status == 200
    await eventually(lambda: len(slack.calls_to("chat.postEphemeral")) == 1)
    [told] = slack.calls_to("chat.postEphemeral")
    assert (told.body["channel"], told.body["user"]) == (channel, "U0ALICE")
    assert told.body["text"] == "Disqualified — I couldn't refresh the alert."
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()  # type: ignore[call-overload]
    assert row["outcome"] == "disqualified"


async def test_a_click_that_fails_before_the_commit_still_says_nothing_was_changed(
    client: Client, slack: FakeSlack
) -> None:
    ts = await alert_ts(client, slack)
    body = action_body(slack, "claim", "someone-else", user="U0ALICE", ts=ts, n=2)
    assert (await post_slack(client, body)).status == 200
    await eventually(lambda: len(slack.calls_to("response_url")) == 1)
    [told] = slack.calls_to("response_url")
    assert "Nothing was changed" in told.body["text"]
    assert slack.calls_to("chat.update") == []
    async with client.app[ENGINE].connect() as conn:
        assert (await conn.execute(select(Lead.claimed_by))).scalar_one() is None  # type: ignore[call-overload]
