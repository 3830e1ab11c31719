"""The outbox dispatcher delivering to Teams through TeamsTransport, against the fake Bot
Connector at the wire and a real SQLite outbox: once, as an Adaptive Card, retried, never
lost, and waiting while a destination has no conversation reference."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from microsoft_agents.activity import Activity, load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.core import (
    AccessTokenProviderBase,
    AgentAuthConfiguration,
    OutboundHostValidator,
)
from microsoft_agents.hosting.core.authorization import ClaimsIdentity, Connections
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.outbox.dispatcher import DeliveryError, Dispatcher
from bot.outbox.messages import AlertMessage, Message
from bot.teams.cards import summary_text
from bot.teams.references import NotAReference, conversation_reference, remember, stored_reference
from bot.teams.transport import CARD_TYPE, TeamsTransport, post_recorder
from storage.engine import session_factory
from storage.ingest import OUTBOX, enqueue
from storage.posts import find_post
from storage.teams import StoredReference, find_conversation, save_reference
from tests.bot.conftest import T0
from tests.bot.outbox.samples import sample_alert
from tests.fakes.clock import Clock
from tests.fakes.teams_connector import FakeConnector

ANONYMOUS = {"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ANONYMOUS_ALLOWED": "true"}
CHANNEL = "19:sales@thread.tacv2"
BOT = "28:leadbot"


def render(message: Message) -> dict[str, Any]:
    """A stand-in for ``bot.teams.cards.card_for``: one text block naming the lead."""
    assert isinstance(message, AlertMessage)
    lead = message.lead.id
    return {
        "type": "AdaptiveCard", "version": "1.5", "fallbackText": f"Hot lead {lead}",
        "body": [{"type": "TextBlock", "text": f"{message.kind}: {lead}"}],
    }  # fmt: skip


def alert(key: str, destination: str = f"teams:conversation:{CHANNEL}") -> dict[str, Any]:
    return {"kind": "alert", "lead_id": key, "destination": destination, "dedupe_key": key,
            "payload": sample_alert(key).to_payload(), "status": "pending", "attempts": 0,
            "available_at": T0, "created_at": T0}  # fmt: skip


def incoming(
    fake: FakeConnector, conversation: str, kind: str, *, user: str = "aad-rep", **data: Any
) -> Activity:
    """An activity as Teams posts it to /api/messages (the parts a reference keeps)."""
    return Activity.model_validate({
        "type": "message", "id": "1699999999999", "channelId": "msteams",
        "serviceUrl": fake.url, "text": "hi",
        "from": {"id": "29:rep", "name": "Rep", "aadObjectId": user},
        "recipient": {"id": BOT, "name": "leadbot"},
        "conversation": {"id": conversation, "conversationType": kind, "tenantId": "tenant-1"},
        "channelData": {"tenant": {"id": "tenant-1"}, **data},
    })  # fmt: skip


async def install(engine: AsyncEngine, activity: Activity, at: float = T0) -> StoredReference:
    async with engine.begin() as conn:
        return await remember(conn, activity, at=datetime.fromtimestamp(at, UTC))


async def queue(engine: AsyncEngine, *rows: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=list(rows)))


async def outbox_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))
        return [dict(r) for r in result.mappings()]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def transport(engine: AsyncEngine, clock: Clock, **kwargs: Any) -> TeamsTransport:
    kwargs.setdefault(
        "connections", MsalConnectionManager(**load_configuration_from_env(ANONYMOUS))
    )
    kwargs.setdefault("app_id", None)
    kwargs.setdefault("render", render)
    return TeamsTransport(engine=engine, clock=clock, sleep=clock.sleep, **kwargs)


def dispatcher(engine: AsyncEngine, clock: Clock, **kwargs: Any) -> Dispatcher:
    return Dispatcher(engine, transport(engine, clock, **kwargs), clock=clock)


def posted_leads(fake: FakeConnector, conversation: str = CHANNEL) -> list[str]:
    return [a["summary"] for a in fake.posted(conversation)]


async def test_an_alert_reaches_its_channel_once_as_an_adaptive_card(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel", team={"id": CHANNEL}))
    await queue(sqlite_engine, alert("lead-1"))
    on_posted = post_recorder(sqlite_engine, clock=clock)
    outbox = dispatcher(sqlite_engine, clock, on_posted=on_posted)
    assert await outbox.run_once() == 1
    assert await outbox.run_once() == 0
    [call] = fake.calls
    assert (call.kind, call.conversation_id) == ("send", CHANNEL)
    [attachment] = call.body["attachments"]
    assert attachment == {
        "contentType": CARD_TYPE,
        "content": render(sample_alert("lead-1")),
    }
    assert call.body["summary"] == "Hot lead lead-1"
    assert "replyToId" not in call.body  # a new post, not a reply to what the bot last saw
    assert call.body["from"]["id"] == BOT
    assert "Authorization" not in call.headers  # anonymous mode
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    [activity_id] = fake.activities[CHANNEL]
    async with session_factory(sqlite_engine)() as session:
        post = await find_post(session, platform="teams", channel=CHANNEL, ts=activity_id)
    assert post is not None
    assert (post.lead_id, post.outbox_id) == ("lead-1", row["id"])


async def test_a_429_waits_for_retry_after_then_delivers_once(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"))
    fake.rate_limit_next("send", retry_after=30)
    outbox = dispatcher(sqlite_engine, clock)
    assert await outbox.run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["available_at"].timestamp() == pytest.approx(T0 + 30)
    assert "rate limit" in row["last_error"]
    clock.now = T0 + 29
    assert await outbox.run_once() == 0
    clock.now = T0 + 31
    assert await outbox.run_once() == 1
    assert [c.status for c in fake.calls_to("send")] == [429, 201]
    assert posted_leads(fake) == ["Hot lead a"]


async def test_after_a_429_the_conversation_is_left_alone_until_retry_after(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    """A second message to the same conversation does not hit Teams inside the wait."""
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"), alert("b"))
    fake.rate_limit_next("send", retry_after=20)
    outbox = dispatcher(sqlite_engine, clock)
    assert await outbox.run_once() == 0
    assert [c.status for c in fake.calls] == [429]
    rows = await outbox_rows(sqlite_engine)
    assert [r["available_at"].timestamp() for r in rows] == pytest.approx([T0 + 20, T0 + 20])
    clock.now = T0 + 21
    assert await outbox.run_once() == 2
    assert sorted(posted_leads(fake)) == ["Hot lead a", "Hot lead b"]


async def test_a_connector_outage_delays_and_never_doubles(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"))
    for status in (500, 503, 502):
        fake.fail_next("send", status=status)
    outbox = dispatcher(sqlite_engine, clock)
    delivered = 0
    while clock.now < T0 + 120 and not delivered:
        delivered = await outbox.run_once()
        clock.now += 1
    assert delivered == 1
    assert [c.status for c in fake.calls_to("send")] == [500, 503, 502, 201]
    assert posted_leads(fake) == ["Hot lead a"]
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("sent", 4)
    assert clock.now > T0 + 2 + 4 + 8  # the outbox's backoff, not a tight loop


async def test_an_unreachable_connector_is_retried_later(
    sqlite_engine: AsyncEngine, clock: Clock
) -> None:
    async with FakeConnector() as gone:
        reference = await install(sqlite_engine, incoming(gone, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"))
    assert await dispatcher(sqlite_engine, clock).run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert f"Bot Connector at {reference.service_url} unreachable" in row["last_error"]


async def test_no_reference_keeps_the_alert_pending_with_what_to_do(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await queue(
        sqlite_engine, alert("a"), alert("b", "teams:user:aad-new"), alert("c", "teams:default")
    )
    outbox = dispatcher(sqlite_engine, clock)
    assert await outbox.run_once() == 0
    assert fake.calls == []
    rows = await outbox_rows(sqlite_engine)
    assert [r["status"] for r in rows] == ["pending"] * 3
    errors = [r["last_error"] for r in rows]
    assert f"teams:conversation:{CHANNEL}: the bot has not been in" in errors[0]
    assert "install the app in that team" in errors[0]
    assert "user aad-new" in errors[1]
    assert "write to it once" in errors[1]
    assert "install the app in a team" in errors[2]
    # The rep writes to the bot, the app is installed in the team: both go out.
    await install(sqlite_engine, incoming(fake, "a:dm-new", "personal", user="aad-new"))
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    clock.now = T0 + 10
    assert await outbox.run_once() == 3
    assert posted_leads(fake, "a:dm-new") == ["Hot lead b"]
    assert sorted(posted_leads(fake)) == ["Hot lead a", "Hot lead c"]


async def test_a_user_destination_goes_to_that_users_1to1_chat(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, "a:dm-1", "personal", user="aad-1"))
    await install(sqlite_engine, incoming(fake, "a:dm-2", "personal", user="aad-2"))
    await install(sqlite_engine, incoming(fake, "19:group", "groupChat", user="aad-1"))
    await queue(sqlite_engine, alert("a", "teams:user:aad-1"))
    assert await dispatcher(sqlite_engine, clock).run_once() == 1
    [call] = fake.calls
    assert call.conversation_id == "a:dm-1"
    assert call.body["recipient"]["aadObjectId"] == "aad-1"


async def test_the_default_is_the_configured_channel_else_the_first_installed(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, "19:first", "channel"), at=T0 - 60)
    await install(sqlite_engine, incoming(fake, "19:second", "channel"), at=T0 - 30)
    # Seen again later: still the first installed.
    await install(sqlite_engine, incoming(fake, "19:first;messageid=42", "channel"), at=T0)
    await queue(sqlite_engine, alert("a", "teams:default"))
    assert await dispatcher(sqlite_engine, clock).run_once() == 1
    await queue(sqlite_engine, {**alert("b", "teams:default"), "dedupe_key": "b"})
    configured = dispatcher(sqlite_engine, clock, default_conversation="19:second")
    assert await configured.run_once() == 1
    assert [c.conversation_id for c in fake.calls] == ["19:first", "19:second"]


async def test_a_bot_removed_from_the_conversation_waits_with_what_to_do(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"))
    fake.fail_next("send", status=403)
    outbox = dispatcher(sqlite_engine, clock)
    assert await outbox.run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"], row["unsure"]) == ("pending", 1, False)
    assert "HTTP 403" in row["last_error"]
    assert "injected 403" in row["last_error"]
    assert "reinstall the app" in row["last_error"]
    clock.now = row["available_at"].timestamp()  # reinstalled meanwhile
    assert await outbox.run_once() == 1
    assert len(fake.calls_to("send", ok_only=True)) == 1


async def test_a_refused_card_is_permanent_with_the_connectors_error(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"))
    fake.fail_next("send", status=400)
    assert await dispatcher(sqlite_engine, clock).run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert "HTTP 400" in row["last_error"]
    assert "injected 400" in row["last_error"]
    assert len(fake.calls) == 1


async def test_a_bad_destination_or_card_is_dead_at_once(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a", "teams:channel:19:x"), alert("b"))

    def broken(message: Message) -> dict[str, Any]:
        raise ValueError("no card for you")

    assert await dispatcher(sqlite_engine, clock, render=broken).run_once() == 0
    rows = await outbox_rows(sqlite_engine)
    assert [r["status"] for r in rows] == ["dead", "dead"]
    assert (
        "'teams:channel:19:x' is not 'teams:conversation:<conversation id>'"
        in rows[0]["last_error"]
    )
    assert "rendering the alert card failed: ValueError('no card for you')" in rows[1]["last_error"]
    assert fake.calls == []


async def test_posts_to_one_conversation_are_paced(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, *(alert(k) for k in "abc"))
    assert await dispatcher(sqlite_engine, clock, pace_seconds=1.0).run_once() == 3
    assert clock.sleeps == [1.0, 1.0]
    assert len(fake.posted(CHANNEL)) == 3


async def test_update_replaces_the_card_of_a_posted_alert(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    await queue(sqlite_engine, alert("a"))
    teams = transport(sqlite_engine, clock)
    await Dispatcher(sqlite_engine, teams, clock=clock).run_once()
    [activity_id] = fake.activities[CHANNEL]
    claimed = {**render(sample_alert("a")), "fallbackText": "Claimed by Ana"}
    await teams.update(CHANNEL, activity_id, claimed)
    [update] = fake.calls_to("update")
    assert update.activity_id == activity_id
    assert fake.activities[CHANNEL][activity_id]["attachments"][0]["content"] == claimed
    with pytest.raises(DeliveryError, match="HTTP 404") as unknown:
        await teams.update(CHANNEL, "1", claimed)
    assert unknown.value.permanent
    with pytest.raises(DeliveryError, match="install the app") as missing:
        await teams.update("19:nowhere", activity_id, claimed)
    assert not missing.value.permanent


class FixedToken(AccessTokenProviderBase):
    """Stands in for Entra ID (MSAL's client-credentials flow, not reachable in tests)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str]]] = []

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return AgentAuthConfiguration(client_id="app-1", tenant_id="tenant-1")

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        self.asked.append((resource_url, scopes))
        return "token-1"

    # The SDK's provider interface also has flows a bot posting as itself never uses: if
    # the transport ever reached one, the test fails here instead of passing on a guess.
    def get_token_credential(self) -> Any:
        raise NotImplementedError("not a flow of a bot posting as itself")

    async def acquire_token_on_behalf_of(self, scopes: list[str], user_assertion: str) -> str:
        raise NotImplementedError("not a flow of a bot posting as itself")

    async def get_agentic_application_token(self, *args: Any, **kwargs: Any) -> str | None:
        raise NotImplementedError("not a flow of a bot posting as itself")

    async def get_agentic_instance_token(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        raise NotImplementedError("not a flow of a bot posting as itself")

    async def get_agentic_user_token(self, *args: Any, **kwargs: Any) -> str | None:
        raise NotImplementedError("not a flow of a bot posting as itself")


class OneConnection(Connections):
    def __init__(self, provider: AccessTokenProviderBase) -> None:
        self.provider = provider
        self.claims: list[dict[str, Any]] = []

    def get_connection(self, connection_name: str | None) -> AccessTokenProviderBase:
        return self.provider

    def get_default_connection(self) -> AccessTokenProviderBase:
        return self.provider

    def get_token_provider(
        self, claims_identity: ClaimsIdentity, service_url: str
    ) -> AccessTokenProviderBase:
        self.claims.append(dict(claims_identity.claims))
        return self.provider

    def get_token_provider_from_activity(
        self, claims_identity: ClaimsIdentity, activity: Activity
    ) -> AccessTokenProviderBase:
        return self.provider

    def get_default_connection_configuration(self) -> AgentAuthConfiguration:
        return self.provider.configuration


async def test_with_credentials_the_bots_token_is_sent(
    sqlite_engine: AsyncEngine, clock: Clock
) -> None:
    provider = FixedToken()
    connections = OneConnection(provider)
    async with FakeConnector(token="token-1") as fake:
        await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
        await queue(sqlite_engine, alert("a"))
        outbox = dispatcher(
            sqlite_engine, clock, connections=connections, app_id="app-1",
            host_validator=OutboundHostValidator(enabled=False),  # the fake is http on loopback
        )  # fmt: skip
        assert await outbox.run_once() == 1
    [call] = fake.calls
    assert (call.status, call.headers["Authorization"]) == (201, "Bearer token-1")
    assert connections.claims == [{"aud": "app-1", "appid": "app-1"}]
    assert provider.asked == [
        ("https://api.botframework.com", ["https://api.botframework.com/.default"])
    ]


async def test_with_credentials_the_token_goes_only_to_microsoft_hosts(
    sqlite_engine: AsyncEngine, clock: Clock
) -> None:
    provider = FixedToken()
    async with FakeConnector(token="token-1") as fake:
        await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
        await queue(sqlite_engine, alert("a"))
        outbox = dispatcher(sqlite_engine, clock, connections=OneConnection(provider), app_id="a")
        assert await outbox.run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert row["status"] == "dead"
    assert f"the service URL '{fake.url}'" in row["last_error"]
    assert (fake.calls, provider.asked) == ([], [])


async def test_the_default_renderer_is_the_teams_cards(
    sqlite_engine: AsyncEngine, fake: FakeConnector, clock: Clock
) -> None:
    await install(sqlite_engine, incoming(fake, CHANNEL, "channel"))
    note = {**alert("a"), "kind": "note", "payload": {"text": "Jean-Luc is *back*\nline two"}}
    await queue(sqlite_engine, note)
    connections = MsalConnectionManager(**load_configuration_from_env(ANONYMOUS))
    teams = TeamsTransport(
        engine=sqlite_engine, connections=connections, app_id=None, clock=clock, sleep=clock.sleep
    )
    assert await Dispatcher(sqlite_engine, teams, clock=clock).run_once() == 1
    [call] = fake.calls
    content = call.body["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard"
    assert call.body["summary"] == summary_text(content)
    assert call.body["summary"].startswith("Jean-Luc is")


async def test_a_channel_thread_is_remembered_as_its_channel(fake: FakeConnector) -> None:
    activity = incoming(
        fake, f"{CHANNEL};messageid=1699", "channel",
        team={"id": "19:team@thread.tacv2"}, channel={"id": CHANNEL},
    )  # fmt: skip
    stored = stored_reference(activity)
    assert (stored.conversation_id, stored.kind) == (CHANNEL, "channel")
    assert (stored.team_id, stored.channel_id, stored.tenant_id) == (
        "19:team@thread.tacv2", CHANNEL, "tenant-1"
    )  # fmt: skip
    assert stored.user_aad_id is None  # a channel is nobody's 1:1 chat
    assert stored.bot_id == BOT
    reference = conversation_reference(stored)
    assert reference.conversation.id == CHANNEL
    assert reference.activity_id is None
    assert reference.service_url == fake.url
    assert reference.agent is not None
    assert reference.agent.id == BOT


async def test_a_personal_chat_is_remembered_for_its_user(
    session: AsyncSession, fake: FakeConnector
) -> None:
    await remember(session, incoming(fake, "a:dm", "personal", user="aad-7"), at=datetime.now(UTC))
    await session.commit()
    stored = await find_conversation(session, conversation_id="a:dm")
    assert stored is not None
    assert (stored.kind, stored.user_aad_id) == ("personal", "aad-7")
    assert stored.reference["user"]["aadObjectId"] == "aad-7"
    assert "activityId" not in stored.reference


def test_an_activity_without_a_service_url_is_refused_by_field() -> None:
    activity = Activity.model_validate({
        "type": "message", "conversation": {"id": "a:1", "conversationType": "personal"},
        "recipient": {"id": BOT},
    })  # fmt: skip
    with pytest.raises(
        NotAReference, match=r"activity.serviceUrl is missing for conversation 'a:1'"
    ):
        stored_reference(activity)


async def test_save_reference_is_what_remember_uses(
    sqlite_engine: AsyncEngine, fake: FakeConnector
) -> None:
    """A reference saved by hand (as a start-up import would) delivers the same way."""
    stored = stored_reference(incoming(fake, CHANNEL, "channel"))
    async with sqlite_engine.begin() as conn:
        await save_reference(conn, ref=stored, at=datetime.fromtimestamp(T0, UTC))
    async with sqlite_engine.connect() as conn:
        assert await find_conversation(conn, conversation_id=CHANNEL) == stored
