"""Teams end to end: activities posted to /api/messages as Teams posts them, the fake Bot
Connector at the wire as their serviceUrl, a real database. Nothing of leadbot's own is
patched. Anonymous mode (the Agents Playground's) unless a test turns credentials on."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlmodel import col

from bot.admin.privacy import forget_command
from bot.app import build_app
from bot.cli import chat_erasers
from bot.digest.codec import digest_from_json, digest_to_json
from bot.digest.content import build_digest
from bot.digest.data import Period, Scope
from bot.digest.plain import render_text
from bot.jobs.sla import sla_sweep
from bot.models.versions import ensure_active
from bot.teams.digest_card import digest_card
from bot.web.keys import DISPATCHER, ENGINE, SCHEDULER
from config.loader import LeadbotConfig, load_config
from config.settings import load_settings
from config.writer import model_yaml
from storage import models as repo
from storage.engine import session_factory
from storage.posts import PostedAlert, find_post
from storage.tables import Feedback, Lead
from storage.teams import find_conversation
from tests.bot.conftest import SMALL_MODEL
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client, count, eventually, hot_lead
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector
from tests.logs import warned_once
from tests.outage import OUTAGE_REPLY, cut_postgres

# pytest's "error" filter outranks bot.teams.runtime's narrow ignore of this warning, which
# the SDK's JWT check raises (it stores the claims under a plain string request key).
pytestmark = pytest.mark.filterwarnings(
    "ignore:It is recommended to use web.RequestKey:aiohttp.web_exceptions.NotAppKeyWarning"
)

SDK = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
CHANNEL = "19:sales@thread.tacv2"
BOT = "28:leadbot-app"
REP = "aaaaaaaa-0000-0000-0000-000000000001"
MANAGER = "bbbbbbbb-0000-0000-0000-000000000002"
CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
_ids = itertools.count(1)


class Clock:
    """Real time plus an offset the test moves (retries are due by this clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def settings(db_url: str, **extra: str) -> Any:
    return load_settings({
        "DATABASE_URL": db_url, "LEADBOT_INGEST": "thread",
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET, **extra,
    })  # fmt: skip


ANONYMOUS = {f"{SDK}ANONYMOUS_ALLOWED": "true"}


def activity(fake: FakeConnector, kind: str, *, user: str = REP, **fields: Any) -> dict[str, Any]:
    """An activity as Teams posts it from the sales channel of a team."""
    body = {
        "type": kind, "id": f"act-{next(_ids)}", "channelId": "msteams", "serviceUrl": fake.url,
        "timestamp": "2026-03-02T09:00:00Z",
        "from": {"id": f"29:{user}", "name": "Riley Rep", "aadObjectId": user},
        "recipient": {"id": BOT, "name": "leadbot"},
        "conversation": {"id": CHANNEL, "conversationType": "channel", "tenantId": "tenant-1",
                         "isGroup": True},
        "channelData": {"tenant": {"id": "tenant-1"}, "team": {"id": CHANNEL, "name": "Sales"},
                        "channel": {"id": CHANNEL}},
    }  # fmt: skip
    return {**body, **fields}


def mention(fake: FakeConnector, text: str, **fields: Any) -> dict[str, Any]:
    """``@leadbot <text>`` in the channel, with the mention entity Teams adds."""
    entity = {"type": "mention", "text": "<at>leadbot</at>",
              "mentioned": {"id": BOT, "name": "leadbot"}}  # fmt: skip
    return activity(fake, "message", text=f"<at>leadbot</at> {text}", entities=[entity], **fields)


async def post(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return await client.post("/api/messages", json=body, headers=headers)


async def install(client: Client, fake: FakeConnector) -> None:
    body = activity(fake, "installationUpdate", action="add")
    assert (await post(client, body)).status in (200, 202)


async def alert_card(client: Client, fake: FakeConnector) -> tuple[str, dict[str, Any]]:
    """A hot lead's alert as posted in the channel: (activity id, card)."""
    await install(client, fake)
    await hot_lead(client)
    await eventually(lambda: len(fake.calls_to("send", ok_only=True)) == 1)
    [(activity_id, posted)] = fake.activities[CHANNEL].items()
    # A click comes after the post is recorded, in its own transaction right after Teams
    # answers: a click before it finds no alert (seen in CI on a loaded machine).
    await recorded_post(client, activity_id)
    return activity_id, posted["attachments"][0]["content"]


async def recorded_post(client: Client, card_id: str) -> PostedAlert:
    for _ in range(150):
        async with session_factory(client.app[ENGINE])() as session:
            posted = await find_post(session, platform="teams", channel=CHANNEL, ts=card_id)
        if posted is not None:
            return posted
        await asyncio.sleep(0.02)
    raise AssertionError(f"no post recorded for {card_id} within 3 s")


def flat(value: Any) -> str:
    return orjson.dumps(value).decode()


def execute(fake: FakeConnector, card_id: str, verb: str, **data: Any) -> dict[str, Any]:
    """An ``adaptiveCard/action`` invoke from a click on the card ``card_id``."""
    value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
    return activity(fake, "invoke", name="adaptiveCard/action", value=value, replyToId=card_id)


async def test_an_installation_stores_the_channel_reference(
    client: Client, fake: FakeConnector
) -> None:
    await install(client, fake)
    async with client.app[ENGINE].connect() as conn:
        stored = await find_conversation(conn, conversation_id=CHANNEL)
    assert stored is not None
    assert (stored.kind, stored.service_url, stored.bot_id) == ("channel", fake.url, BOT)
    assert (stored.tenant_id, stored.team_id) == ("tenant-1", CHANNEL)
    assert fake.calls == []  # installing says nothing


async def test_a_personal_chat_is_remembered_for_the_user(
    client: Client, fake: FakeConnector
) -> None:
    chat = {"id": "a:1personal", "conversationType": "personal", "tenantId": "tenant-1"}
    body = activity(fake, "conversationUpdate", conversation=chat, channelData={},
                    membersAdded=[{"id": BOT}])  # fmt: skip
    await post(client, body)
    async with client.app[ENGINE].connect() as conn:
        stored = await find_conversation(conn, conversation_id="a:1personal")
    assert stored is not None
    assert (stored.kind, stored.user_aad_id) == ("personal", REP)


async def test_a_hot_lead_gives_one_card_with_breakdown_and_actions(
    client: Client, fake: FakeConnector
) -> None:
    _, card = await alert_card(client, fake)
    assert card["type"] == "AdaptiveCard"
    text = flat(card["body"])
    assert "Dana Reyes" in text
    assert "AcmeSoft" in text
    assert "Requested a demo" in text
    assert "Sales leader" in text
    verbs = [a.get("verb") or a["card"]["actions"][0]["verb"] for a in card["actions"]]
    assert verbs == ["lead_claim", "lead_qualify", "lead_disqualify", "lead_snooze"]
    await asyncio.sleep(0.3)
    assert len(fake.calls_to("send")) == 1  # exactly one
    [call] = fake.calls_to("send")
    assert call.body["attachments"][0]["contentType"] == CARD
    assert "Authorization" not in call.headers  # anonymous mode: no token


async def test_lead_score_is_answered_with_a_card(client: Client, fake: FakeConnector) -> None:
    await install(client, fake)
    await hot_lead(client)
    await eventually(lambda: len(fake.calls_to("send", ok_only=True)) == 1)
    message = mention(fake, "lead score dana@acmesoft.com")
    assert (await post(client, message)).status in (200, 202)
    [reply] = fake.calls_to("reply")
    assert reply.activity_id == message["id"]
    [attachment] = reply.body["attachments"]
    assert attachment["contentType"] == CARD
    assert "Dana Reyes" in flat(attachment["content"])
    assert "Requested a demo" in flat(attachment["content"])


async def test_a_message_outside_the_grammar_gets_the_help(
    client: Client, fake: FakeConnector
) -> None:
    await post(client, mention(fake, "hello there"))
    [reply] = fake.calls_to("reply")
    text = flat(reply.body["attachments"][0]["content"])
    assert "lead score" in text
    assert "lead feedback" in text
    assert "lead digest" in text
    assert "Unknown" not in text


async def test_lead_feedback_from_teams_records_the_rep(
    client: Client, fake: FakeConnector
) -> None:
    await alert_card(client, fake)
    await post(client, mention(fake, "lead feedback dana@acmesoft.com won signed"))
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()
    assert (row["by"], row["outcome"]) == (f"teams:{REP}", "won")


async def test_execute_stores_feedback_with_the_snapshot_and_answers_the_updated_card(
    client: Client, fake: FakeConnector
) -> None:
    card_id, _ = await alert_card(client, fake)
    click = execute(fake, card_id, "lead_qualify", leadbot="lead_action", action="qualify",
                    lead_id="u1")  # fmt: skip
    resp = await post(client, click)
    assert resp.status == 200
    answer = await resp.json()
    assert (answer["statusCode"], answer["type"]) == (200, CARD)
    assert "Qualified" in flat(answer["value"]["body"])
    assert "Riley Rep" in flat(answer["value"])
    assert answer["value"]["actions"] == []  # decided: no buttons left
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()
    assert (row["outcome"], row["by"]) == ("qualified", f"teams:{REP}")
    snapshot = row["features"]
    assert snapshot["band"] == "hot"
    assert snapshot["rules"]["demo"] > 0.9
    # ... and the posted card is updated for everyone.
    [update] = fake.calls_to("update")
    assert update.activity_id == card_id
    assert fake.activities[CHANNEL][card_id]["attachments"][0]["content"] == answer["value"]


async def test_disqualify_from_the_inline_form_keeps_the_reason(
    client: Client, fake: FakeConnector
) -> None:
    card_id, _ = await alert_card(client, fake)
    data = {"leadbot": "lead_action", "action": "disqualify", "lead_id": "u1",
            "reason": "no budget", "note": "next year"}  # fmt: skip
    click = execute(fake, card_id, "lead_disqualify", **data)
    assert (await post(client, click)).status == 200
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(Feedback))).mappings().one()
    assert (row["outcome"], row["reason"]) == ("disqualified", "no budget: next year")


async def test_a_repeated_click_tells_only_the_clicker(client: Client, fake: FakeConnector) -> None:
    card_id, _ = await alert_card(client, fake)
    data = {"leadbot": "lead_action", "action": "claim", "lead_id": "u1"}
    assert (await post(client, execute(fake, card_id, "lead_claim", **data))).status == 200
    again = await (await post(client, execute(fake, card_id, "lead_claim", **data))).json()
    assert again["type"] == "application/vnd.microsoft.activity.message"
    assert "already claimed" in again["value"]
    assert len(fake.calls_to("update")) == 1


async def test_an_unknown_lead_is_a_bad_request_naming_it(
    client: Client, fake: FakeConnector
) -> None:
    click = execute(fake, "nope", "lead_claim", leadbot="lead_action", action="claim",
                    lead_id="ghost")  # fmt: skip
    answer = await (await post(client, click)).json()
    assert answer["statusCode"] == 400
    assert "ghost" in answer["value"]["message"]


async def test_the_submit_fallback_acts_and_updates_the_card(
    client: Client, fake: FakeConnector
) -> None:
    card_id, _ = await alert_card(client, fake)
    data = {"leadbot": "lead_action", "action": "claim", "lead_id": "u1"}
    submit = activity(fake, "message", replyToId=card_id, value=data)
    assert (await post(client, submit)).status in (200, 202)
    async with client.app[ENGINE].connect() as conn:
        lead = (await conn.execute(select(col(Lead.claimed_by)))).scalar_one()
    assert lead == f"teams:{REP}"
    [update] = fake.calls_to("update")
    assert update.activity_id == card_id
    assert "Claimed by" in flat(update.body["attachments"][0]["content"])
    assert fake.calls_to("reply") == []  # nothing to tell: the card says it


async def test_the_posted_alert_is_recorded_for_later_clicks(
    client: Client, fake: FakeConnector
) -> None:
    card_id, _ = await alert_card(client, fake)
    posted = await recorded_post(client, card_id)
    assert posted.lead_id == "u1"


async def test_a_connector_outage_delays_the_alert_and_never_loses_it(
    client: Client, fake: FakeConnector, clock: Clock
) -> None:
    await install(client, fake)
    fake.fail_next("send", status=500)
    await hot_lead(client)
    await eventually(lambda: len(fake.calls_to("send")) == 1)
    assert fake.calls_to("send", ok_only=True) == []
    clock.offset += 5  # past the first retry's backoff
    client.app[DISPATCHER].wake()
    await eventually(lambda: len(fake.calls_to("send", ok_only=True)) == 1)
    await asyncio.sleep(0.3)
    assert [c.status for c in fake.calls_to("send")] == [500, 201]
    assert len(fake.posted(CHANNEL)) == 1  # exactly one card in the end


MANAGED = (
    SMALL_MODEL
    + f"""
managers: ["teams:{MANAGER}"]
"""
)


async def test_credentials_on_a_request_without_a_token_is_refused(
    db_url: str, config: LeadbotConfig, fake: FakeConnector
) -> None:
    credentials = {f"{SDK}CLIENTID": "00000000-0000-0000-0000-0000000000aa",
                   f"{SDK}CLIENTSECRET": "secret", f"{SDK}TENANTID": "tenant-1"}  # fmt: skip
    app = build_app(settings=settings(db_url, **credentials), config=config)
    async with TestClient(TestServer(app)) as client:
        resp = await post(client, mention(fake, "lead help"))
        assert resp.status == 401
        forged = await post(client, mention(fake, "lead help"), Authorization="Bearer x y")
        assert forged.status == 401
        assert (await client.get("/healthz")).status == 200  # other routes untouched
        assert await count(client, Lead) == 0
    assert fake.calls == []


async def test_half_configured_credentials_refuse_to_start(
    db_url: str, config: LeadbotConfig
) -> None:
    from bot.app import StartupError

    with pytest.raises(StartupError, match=f"{SDK}TENANTID"):
        build_app(settings=settings(db_url, **{f"{SDK}CLIENTID": "x", f"{SDK}CLIENTSECRET": "s"}),
                  config=config)  # fmt: skip


async def test_a_manager_approves_a_proposal_from_its_card(
    db_url: str, fake: FakeConnector
) -> None:
    config = load_config(text=MANAGED, name="managed.yaml")
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config)
    async with TestClient(TestServer(app)) as client:
        refused = execute(fake, "card-1", "model_approve", leadbot="model", version=99,
                          action="approve")  # fmt: skip
        answer = await (await post(client, refused)).json()
        assert "Only managers" in answer["value"]
        as_manager = execute(fake, "card-1", "model_approve", leadbot="model", version=99,
                             action="approve")  # fmt: skip
        as_manager["from"]["aadObjectId"] = MANAGER
        unknown = await (await post(client, as_manager)).json()
        assert unknown["statusCode"] == 400
        assert "99" in unknown["value"]["message"]


@pytest.mark.parametrize("update_fails", [False, True])
async def test_a_managers_click_approves_a_proposal_and_a_second_click_is_told(
    db_url: str, fake: FakeConnector, update_fails: bool
) -> None:
    config = load_config(text=MANAGED, name="managed.yaml")
    bumped = replace(
        config.model,
        rules=tuple(replace(r, points=r.points + 5) if r.id == "software" else r
                    for r in config.model.rules),
    )  # fmt: skip
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config)
    async with TestClient(TestServer(app)) as client:

        def propose(conn: Any) -> int:
            ensure_active(conn, config_model=config.model, now=time.time())
            return repo.add_version(
                conn, yaml=model_yaml(bumped), status=repo.Status.PROPOSED, created_by="t",
                created_at=datetime.now(UTC), parent_id=1,
            )  # fmt: skip

        async with client.app[ENGINE].begin() as conn:
            version = await conn.run_sync(propose)
        await install(client, fake)
        fake.activities[CHANNEL]["card-1"] = {"type": "message", "id": "card-1"}  # the proposal
        if update_fails:
            fake.fail_next("update", status=500)
        click = execute(fake, "card-1", "model_approve", leadbot="model", version=version,
                        action="approve")  # fmt: skip
        click["from"]["aadObjectId"] = MANAGER
        answer = await (await post(client, click)).json()
        assert answer["statusCode"] == 200
        if update_fails:  # decided and stored: the manager is told, never "nothing changed"
            assert answer["type"] == "application/vnd.microsoft.activity.message"
            assert "approved by" in answer["value"]
            assert answer["value"].endswith("(I couldn't refresh the proposal message.)")
        else:
            assert answer["type"] == CARD
            card = flat(answer["value"])
            assert f"Model v{version}" in card
            assert "approved by" in card
            assert "model_approve" not in card  # the buttons gave way to the decision
        async with client.app[ENGINE].connect() as conn:
            active = await conn.run_sync(repo.active_version)
        assert active is not None
        assert active.id == version
        assert active.approved_by == f"teams:{MANAGER}"
        again = await (await post(client, {**click, "id": "act-again"})).json()
        assert "already decided" in flat(again["value"])


async def test_slack_and_teams_side_by_side_each_get_the_alert(
    db_url: str, config: LeadbotConfig, fake: FakeConnector, slack: FakeSlack
) -> None:
    both = settings(db_url, **ANONYMOUS, SLACK_BOT_TOKEN="xoxb-test",
                    SLACK_SIGNING_SECRET="s3cret", SLACK_API_URL=slack.url)  # fmt: skip
    async with TestClient(TestServer(build_app(settings=both, config=config))) as client:
        await install(client, fake)
        await hot_lead(client)
        await eventually(lambda: len(fake.calls_to("send", ok_only=True)) == 1)
        await eventually(lambda: len(slack.calls_to("chat.postMessage")) == 1)
        [post_] = slack.calls_to("chat.postMessage")
        assert post_.body["channel"] == "#sales-alerts"
        assert (await client.post("/slack/events", data=b"")).status == 401  # Slack's own check


async def test_lead_digest_for_a_teams_manager_and_not_for_a_rep(
    db_url: str, fake: FakeConnector
) -> None:
    config = load_config(text=MANAGED, name="managed.yaml")
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config)
    async with TestClient(TestServer(app)) as client:
        await post(client, mention(fake, "lead digest"))
        as_manager = mention(fake, "lead digest week")
        as_manager["from"]["aadObjectId"] = MANAGER
        await post(client, as_manager)
        refused, digest = (flat(c.body["attachments"][0]) for c in fake.calls_to("reply"))
    assert "digests are for sales managers" in refused
    assert "digests are for sales managers" not in digest
    assert "leads" in digest.lower()


async def test_an_unclaimed_teams_alert_gets_its_sla_reminder_in_its_channel(
    client: Client, fake: FakeConnector, clock: Clock, config: LeadbotConfig
) -> None:
    await alert_card(client, fake)
    clock.offset += 4 * 3600 + 60
    queued = await sla_sweep(client.app[ENGINE], config=config, now=clock())
    assert queued == 1
    client.app[DISPATCHER].wake()
    await eventually(lambda: len(fake.posted(CHANNEL)) == 2)
    reminder = fake.posted(CHANNEL)[-1]
    card = flat(reminder["attachments"][0]["content"])
    assert "Dana Reyes" in card
    assert "waiting" in card


async def test_a_scheduled_digest_reaches_a_teams_managers_chat_with_its_chart(
    db_url: str, fake: FakeConnector
) -> None:
    text = MANAGED + 'schedules:\n  - {job: digest, cron: "0 8 * * 1", period: week}\n'
    config = load_config(text=text, name="digest.yaml")
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config)
    async with TestClient(TestServer(app)) as client:
        chat = {"id": "a:1manager", "conversationType": "personal", "tenantId": "tenant-1"}
        hello = activity(fake, "conversationUpdate", user=MANAGER, conversation=chat,
                         channelData={}, membersAdded=[{"id": BOT}])  # fmt: skip
        await post(client, hello)  # the manager's 1:1 chat is known from now on
        await hot_lead(client)
        run = await client.app[SCHEDULER].fire("digest-week", time.time())
        assert run.ran
        client.app[DISPATCHER].wake()
        await eventually(lambda: len(fake.posted("a:1manager")) == 1, seconds=10)
    [message] = fake.posted("a:1manager")
    card = message["attachments"][0]["content"]
    body = flat(card)
    assert "Weekly digest" in body
    assert "Dana Reyes" in body  # the new hot lead of the week
    images = [e for e in card["body"] if e.get("type") == "Image"]
    assert images
    assert images[0]["url"].startswith("data:image/png;base64,")


async def test_forget_deletes_the_persons_alert_card_in_teams(
    client: Client, fake: FakeConnector, db_url: str
) -> None:
    activity_id, _ = await alert_card(client, fake)
    out, err = io.StringIO(), io.StringIO()
    forgot = await forget_command(
        settings(db_url, **ANONYMOUS), "dana@acmesoft.com", yes=True, erasers=chat_erasers(),
        out=out, err=err,
    )  # fmt: skip
    assert forgot == 0, err.getvalue()
    [call] = fake.calls_to("delete", ok_only=True)
    assert (call.method, call.conversation_id, call.activity_id) == (
        "DELETE", CHANNEL, activity_id
    )  # fmt: skip
    assert activity_id not in fake.activities[CHANNEL]
    assert "dana@acmesoft.com" not in str(fake.activities)


async def test_a_digest_schedule_to_a_teams_channel_posts_a_card_built_from_its_data(
    db_url: str, fake: FakeConnector
) -> None:
    schedule = f'  - {{job: digest, cron: "0 8 * * 1", to: "teams:conversation:{CHANNEL}"}}\n'
    config = load_config(text=MANAGED + "schedules:\n" + schedule, name="digest.yaml")
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config)
    async with TestClient(TestServer(app)) as client:
        await install(client, fake)
        await hot_lead(client)
        await eventually(lambda: len(fake.posted(CHANNEL)) == 1)  # the alert
        run = await client.app[SCHEDULER].fire("digest-week", time.time())
        assert run.ran
        client.app[DISPATCHER].wake()
        await eventually(lambda: len(fake.posted(CHANNEL)) == 2, seconds=10)
    card = fake.posted(CHANNEL)[-1]["attachments"][0]["content"]
    assert card["fallbackText"].startswith("Weekly digest")
    headings = [flat(part["items"][0]) for part in card["body"] if part["type"] == "Container"]
    for section in ("Funnel", "New hot leads: 1", "Conversion by band", "Conversion by fit grade",
                    "Alert → claim", "Heating up", "Cooling down", "Health"):  # fmt: skip
        assert any(section in h for h in headings), (section, headings)
    assert "Dana Reyes" in flat(card)
    facts = [f for part in card["body"] if part["type"] == "Container" for f in part["items"]
             if f["type"] == "FactSet"]  # fmt: skip
    assert any(fact["title"] == "hot" for fs in facts for fact in fs["facts"])  # by band
    # ``to`` replaces the managers: everything went to the channel.
    assert {c.conversation_id for c in fake.calls_to("send", ok_only=True)} == {CHANNEL}


async def test_help_in_teams_offers_no_public_answers(client: Client, fake: FakeConnector) -> None:
    await install(client, fake)
    assert (await post(client, mention(fake, "lead help"))).status in (200, 201, 202)
    await eventually(lambda: len(fake.calls_to("reply", ok_only=True)) == 1)
    [reply] = fake.calls_to("reply", ok_only=True)
    text = flat(reply.body)
    assert "lead score" in text
    assert "public" not in text  # a Teams channel has no private answers


# --- reps are named by their display name in digests ------------------------------------


async def test_a_rep_who_claimed_in_teams_is_named_in_the_digest(
    client: Client, fake: FakeConnector, config: LeadbotConfig, clock: Clock
) -> None:
    card_id, _ = await alert_card(client, fake)
    data: dict[str, Any] = {"leadbot": "lead_action", "action": "claim", "lead_id": "u1"}
    assert (await post(client, execute(fake, card_id, "lead_claim", **data))).status == 200

    now = clock() + 60
    digest = await build_digest(
        client.app[ENGINE], config=config, period=Period.last("day", now),
        scope=Scope.everyone(), now=now,
    )  # fmt: skip
    assert digest.new_hot[0].claimed_by == f"teams:{REP}"  # the id still matches
    stored = digest_from_json(digest_to_json(digest))  # as the outbox delivers it
    for shown in (render_text(digest), render_text(stored), flat(digest_card(stored))):
        assert "claimed by Riley Rep" in shown
        assert "Riley Rep" in shown.split("Alert → claim", 1)[1]  # the per-rep line
        assert REP not in shown


async def test_a_new_name_replaces_the_old_one(
    client: Client, fake: FakeConnector, config: LeadbotConfig, clock: Clock
) -> None:
    card_id, _ = await alert_card(client, fake)
    click = execute(fake, card_id, "lead_claim", leadbot="lead_action", action="claim",
                    lead_id="u1")  # fmt: skip
    click["from"] = {**click["from"], "name": "Riley Renamed"}
    assert (await post(client, click)).status == 200
    now = clock() + 60
    digest = await build_digest(
        client.app[ENGINE], config=config, period=Period.last("day", now),
        scope=Scope.everyone(), now=now,
    )  # fmt: skip
    assert digest.names == {f"teams:{REP}": "Riley Renamed"}


# --- the Agents Playground's default user can be a manager ------------------------------

PLAYGROUND = "00000000-0000-0000-0000-0000000000020"  # its aadObjectId: not quite a GUID


@pytest.mark.parametrize("near_miss", ["00000000-0000-0000-0000-0000000000021", "not-an-id"])
def test_only_the_playground_id_is_accepted_beside_guids(near_miss: str) -> None:
    config = load_config(text=SMALL_MODEL + f'managers: ["teams:{PLAYGROUND}"]\n', name="p.yaml")
    assert config.managers == (f"teams:{PLAYGROUND}",)
    with pytest.raises(Exception, match=r"managers.*AAD object id"):
        load_config(text=SMALL_MODEL + f'managers: ["teams:{near_miss}"]\n', name="bad.yaml")


async def test_the_playground_user_as_manager_approves_a_proposal(
    db_url: str, fake: FakeConnector
) -> None:
    config = load_config(text=SMALL_MODEL + f'managers: ["teams:{PLAYGROUND}"]\n', name="p.yaml")
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config)
    async with TestClient(TestServer(app)) as client:

        def propose(conn: Any) -> int:
            ensure_active(conn, config_model=config.model, now=time.time())
            return repo.add_version(
                conn, yaml=model_yaml(config.model), status=repo.Status.PROPOSED,
                created_by="t", created_at=datetime.now(UTC), parent_id=1,
            )  # fmt: skip

        async with client.app[ENGINE].begin() as conn:
            version = await conn.run_sync(propose)
        click = execute(fake, "card-1", "model_approve", leadbot="model", version=version,
                        action="approve")  # fmt: skip
        click["from"] = {"id": "user-id-0", "name": "Alex Wilber", "aadObjectId": PLAYGROUND}
        answer = await (await post(client, click)).json()
        assert "Only managers" not in flat(answer)
        async with client.app[ENGINE].connect() as conn:
            active = await conn.run_sync(repo.active_version)
        assert active is not None
        assert (active.id, active.approved_by) == (version, f"teams:{PLAYGROUND}")


async def test_a_message_while_the_database_is_down_tells_the_rep_to_try_again(
    postgres_url: str, config: LeadbotConfig, fake: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stops taking connections: `@leadbot lead score` is answered that the
    database is unreachable, and the log has a warning, not a traceback."""
    app = build_app(settings=settings(postgres_url, **ANONYMOUS), config=config)
    caplog.set_level(logging.INFO, logger="bot.teams.agent")
    async with TestClient(TestServer(app)) as client:
        await install(client, fake)
        await cut_postgres(postgres_url, allow=False)
        try:
            message = mention(fake, "lead score dana@acmesoft.com")
            assert (await post(client, message)).status in (200, 202)
        finally:
            await cut_postgres(postgres_url, allow=True)
    [reply] = fake.calls_to("reply")
    assert reply.body["text"] == OUTAGE_REPLY
    warned_once(caplog, "Teams turn failed")


async def test_a_click_while_the_database_is_down_tells_the_clicker_to_try_again(
    postgres_url: str, config: LeadbotConfig, fake: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stops taking connections after the alert is posted: a Qualify click is
    answered, in Teams' invoke answer, that the database is unreachable; once it is back,
    the same click stores the label."""
    app = build_app(settings=settings(postgres_url, **ANONYMOUS), config=config)
    caplog.set_level(logging.INFO, logger="bot.teams.agent")
    async with TestClient(TestServer(app)) as client:
        card_id, _ = await alert_card(client, fake)
        click = execute(fake, card_id, "lead_qualify", leadbot="lead_action", action="qualify",
                        lead_id="u1")  # fmt: skip
        await cut_postgres(postgres_url, allow=False)
        try:
            resp = await post(client, click)
            assert resp.status == 200
            answer = await resp.json()
        finally:
            await cut_postgres(postgres_url, allow=True)
        assert (answer["statusCode"], answer["type"]) == (200, MESSAGE)
        assert answer["value"] == OUTAGE_REPLY
        again = await post(client, {**click, "id": "again"})
        assert (await again.json())["type"] == CARD
        assert await count(client, Feedback) == 1
    warned_once(caplog, "Teams card action failed")
