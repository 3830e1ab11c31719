"""The fake Slack Web API answers slack_sdk's real client as Slack does, and records it."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.clock import Clock
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlack


async def test_posts_are_recorded_with_increasing_ts_and_can_be_updated() -> None:
    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
        first = await client.chat_postMessage(channel="#alerts", text="one", blocks=blocks)
        second = await client.chat_postMessage(channel="#alerts", text="two")
        assert first["channel"] == second["channel"] == fake.channel_id("#alerts")
        assert float(first["ts"]) < float(second["ts"])
        updated = await client.chat_update(channel=first["channel"], ts=first["ts"], text="1!")
        assert updated["message"]["text"] == "1!"
        [call, _] = fake.calls_to("chat.postMessage")
        assert call.body["blocks"] == blocks
        assert call.headers["Authorization"] == "Bearer xoxb-test"


async def test_auth_dm_modal_ephemeral_and_user_lookups() -> None:
    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        auth = await client.auth_test()
        assert (auth["user_id"], auth["team_id"]) == (BOT_USER_ID, TEAM_ID)
        dm = await client.conversations_open(users="U123")
        assert dm["channel"]["id"].startswith("D")
        again = await client.conversations_open(users="U123")
        assert again["channel"]["id"] == dm["channel"]["id"]
        view = {"type": "modal", "title": {"type": "plain_text", "text": "Why?"}, "blocks": []}
        opened = await client.views_open(trigger_id="t1", view=view)
        assert opened["view"]["title"]["text"] == "Why?"
        await client.chat_postEphemeral(channel="C1", user="U123", text="taken")
        info = await client.users_info(user="U123")
        assert info["user"]["id"] == "U123"
        assert [c.method for c in fake.calls] == [
            "auth.test", "conversations.open", "conversations.open", "views.open",
            "chat.postEphemeral", "users.info",
        ]  # fmt: skip


async def test_a_wrong_token_is_invalid_auth() -> None:
    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-wrong", base_url=fake.url)
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x")
        assert raised.value.response["error"] == "invalid_auth"
        assert fake.calls_to("chat.postMessage", ok_only=True) == []


async def test_injected_failures_are_answered_once_each() -> None:
    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        fake.fail_next("chat.postMessage", status=503)
        fake.rate_limit_next("chat.postMessage", retry_after=7)
        fake.error_next("chat.postMessage", "not_in_channel")
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x")
        assert raised.value.response.status_code == 503
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x")
        assert raised.value.response.status_code == 429
        assert raised.value.response.headers["Retry-After"] == "7"
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x")
        assert raised.value.response["error"] == "not_in_channel"
        await client.chat_postMessage(channel="C1", text="x")
        assert [c.status for c in fake.calls] == [503, 429, 200, 200]
        assert [c.ok for c in fake.calls] == [False, False, False, True]


async def test_fail_for_lasts_as_long_as_the_clock_says_and_cycles_statuses() -> None:
    clock = Clock(1000.0)
    async with FakeSlack(token="xoxb-test", clock=clock) as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        fake.fail_for(60, status=(500, 429), retry_after=3)
        for _ in range(3):
            with pytest.raises(SlackApiError):
                await client.chat_postMessage(channel="C1", text="x")
        clock.now += 60
        await client.chat_postMessage(channel="C1", text="x")
        assert [c.status for c in fake.calls] == [500, 429, 500, 200]
        assert [c.at for c in fake.calls] == [1000.0, 1000.0, 1000.0, 1060.0]


async def test_response_url_posts_are_recorded() -> None:
    async with FakeSlack(token="xoxb-test") as fake:
        webhook = AsyncWebhookClient(fake.response_url("cmd-1"))
        response = await webhook.send(text="score 87", response_type="ephemeral")
        assert (response.status_code, response.body) == (200, "ok")
        [call] = fake.calls_to("response_url")
        assert call.path.endswith("/cmd-1")
        assert call.body == {"text": "score 87", "response_type": "ephemeral"}
