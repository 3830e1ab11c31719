"""The fake Bot Connector answers the Agents SDK's real ConnectorClient as Teams does."""

from __future__ import annotations

import aiohttp
import pytest
from microsoft_agents.activity import (
    Activity,
    ConversationAccount,
    ConversationParameters,
)
from microsoft_agents.hosting.core.connector.client import ConnectorClient

from tests.fakes.teams_connector import FakeConnector

CHANNEL = "19:alerts@thread.tacv2"


def message(text: str) -> Activity:
    return Activity(type="message", text=text, conversation=ConversationAccount(id=CHANNEL))


async def test_sends_replies_and_updates_are_recorded_and_held() -> None:
    async with FakeConnector() as fake:
        client = ConnectorClient(fake.url, "")
        try:
            sent = await client.conversations.send_to_conversation(CHANNEL, message("one"))
            reply = await client.conversations.reply_to_activity(CHANNEL, sent.id, message("re"))
            changed = message("one, edited")
            changed.id = sent.id
            updated = await client.conversations.update_activity(CHANNEL, sent.id, changed)
        finally:
            await client.close()
    assert updated.id == sent.id
    assert int(reply.id) > int(sent.id)
    assert [c.kind for c in fake.calls] == ["send", "reply", "update"]
    assert fake.calls[0].path == f"/v3/conversations/{CHANNEL}/activities"
    assert fake.calls[1].activity_id == sent.id
    assert [a["text"] for a in fake.posted(CHANNEL)] == ["one, edited", "re"]
    # Anonymous mode: the client sends no Authorization header at all.
    assert all("Authorization" not in c.headers for c in fake.calls)


async def test_an_unknown_activity_cannot_be_updated() -> None:
    async with FakeConnector() as fake:
        client = ConnectorClient(fake.url, "")
        try:
            with pytest.raises(aiohttp.ClientResponseError) as raised:
                await client.conversations.update_activity(CHANNEL, "404404", message("x"))
        finally:
            await client.close()
    assert raised.value.status == 404
    assert fake.posted(CHANNEL) == []


async def test_a_429_carries_retry_after_and_a_500_its_body_and_neither_stores() -> None:
    async with FakeConnector() as fake:
        fake.rate_limit_next("send", retry_after=7)
        fake.fail_next("send", status=503)
        client = ConnectorClient(fake.url, "")
        try:
            with pytest.raises(aiohttp.ClientResponseError) as limited:
                await client.conversations.send_to_conversation(CHANNEL, message("a"))
            with pytest.raises(aiohttp.ClientResponseError) as failed:
                await client.conversations.send_to_conversation(CHANNEL, message("a"))
            await client.conversations.send_to_conversation(CHANNEL, message("a"))
        finally:
            await client.close()
    assert limited.value.status == 429
    assert limited.value.headers is not None
    assert limited.value.headers["Retry-After"] == "7"
    assert failed.value.status == 503
    assert "injected 503" in failed.value.message
    assert [c.status for c in fake.calls_to("send")] == [429, 503, 201]
    assert len(fake.posted(CHANNEL)) == 1


async def test_a_token_is_required_when_the_fake_has_one() -> None:
    async with FakeConnector(token="good") as fake:
        for token in ("", "bad", "good"):
            client = ConnectorClient(fake.url, token)
            try:
                await client.conversations.send_to_conversation(CHANNEL, message(token))
            except aiohttp.ClientResponseError:
                pass  # the statuses are asserted below, from what the fake recorded
            finally:
                await client.close()
    assert [c.status for c in fake.calls] == [401, 401, 201]
    assert fake.calls[2].headers["Authorization"] == "Bearer good"


async def test_creating_a_conversation_answers_a_new_id() -> None:
    params = ConversationParameters.model_validate({
        "isGroup": False, "bot": {"id": "28:bot"}, "members": [{"id": "29:rep"}],
        "tenantId": "tenant-1",
    })  # fmt: skip
    async with FakeConnector() as fake:
        client = ConnectorClient(fake.url, "")
        try:
            first = await client.conversations.create_conversation(params)
            second = await client.conversations.create_conversation(params)
        finally:
            await client.close()
    assert first.id != second.id
    assert fake.conversations[0]["members"] == [{"id": "29:rep"}]


def test_an_unknown_path_kind_is_refused_by_name() -> None:
    fake = FakeConnector()
    with pytest.raises(ValueError, match="'post' is not one of create, send, reply, update"):
        fake.fail_next("post")  # type: ignore[arg-type]
