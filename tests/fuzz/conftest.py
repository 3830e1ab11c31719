"""The real app over HTTP for the fuzz tests, and the rule every answer must keep.

The rule (``check_answer``): never a 5xx; a 4xx has a JSON body with ``error``; and a 4xx
changed nothing: the row count of every table is the same before and after.

The webhook part runs on SQLite and PostgreSQL (``db_url``); Slack and Teams, whose
refusals happen before any query, on SQLite.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (every table, for the row counts)
from bot.app import build_app
from bot.ingest.signatures import sign
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig, load_config
from config.settings import load_settings
from tests.bot.conftest import IDEAL, SMALL_MODEL, identify
from tests.bot.slack_helpers import (
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    Client,
    click_payload,
    slack_settings,
)
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector
from tests.fuzz.corpus import Case

TEAMS_SDK = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
OTHER_SECRET = "whsec_" + "b3RoZXItc2VjcmV0LW5vdC10aGUtYm90cw=="
# The SDK's JWT check stores the claims under a plain string request key (see
# tests/bot/teams/test_teams_app.py, which filters the same warning).
TEAMS_WARNING = (
    "ignore:It is recommended to use web.RequestKey:aiohttp.web_exceptions.NotAppKeyWarning"
)


@pytest.fixture
def config() -> LeadbotConfig:
    # No periodic job: the checks compare rows before and after each refused request, and a
    # job the clock fires meanwhile (rfm at :04, :19 …) would write rows no request made.
    return load_config(text=SMALL_MODEL + "\nschedules: []\n", name="small.yaml")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test") as fake:
        yield fake


async def row_counts(client: Client) -> dict[str, int]:
    """Rows in every table, in one query."""
    tables = SQLModel.metadata.sorted_tables
    counts = [select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables]
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(*counts))).mappings().one()
    return dict(row)


async def check_answer(
    client: Client,
    response: ClientResponse,
    before: dict[str, int],
    what: str,
    *,
    plain: bool = False,
) -> list[str]:
    """What is wrong with the answer to one request (nothing, if it keeps the rule).
    ``plain``: aiohttp itself answered (a text body), as a corpus line may say."""
    status = response.status
    text = await response.text()
    if status >= 500:
        return [f"{what}: {status} {text[:300]}"]
    if status < 400:
        return []
    problems = []
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    after = await row_counts(client)
    if invoke_answer(body):  # Teams shows it; the conversation seen is remembered first
        after["teams_conversations"] = before["teams_conversations"]
    elif plain:
        pass
    elif not (isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]):
        problems.append(f"{what}: {status} without a JSON error: {text[:300]}")
    if after != before:
        changed = {k: (before[k], after[k]) for k in after if after[k] != before.get(k)}
        problems.append(f"{what}: {status}, yet rows changed: {changed}")
    return problems


def expectation_problems(case: Case, status: int, answer: Any) -> list[str]:
    """Where a corpus case's answer differs from what its line expects."""
    problems = []
    if not case.matches(status):
        problems.append(f"{case.name}: expected {case.expect}, got {status}: {answer!r:.300}")
    elif case.field is not None:
        field = answer.get("field") if isinstance(answer, dict) else None
        if not isinstance(field, str) or not field.startswith(case.field):
            problems.append(f"{case.name}: expected field {case.field!r}, got {answer!r:.300}")
    return problems


# --- webhooks --------------------------------------------------------------------------


@pytest.fixture
async def webhooks(db_url: str, config: LeadbotConfig) -> AsyncIterator[Client]:
    settings = load_settings({
        "DATABASE_URL": db_url, "LEADBOT_INGEST": "thread",
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
    })  # fmt: skip
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        # one lead already there, so a refusal that touched it would show
        body = orjson.dumps(identify("seed", time.time(), **IDEAL))
        headers = sign(WEBHOOK_SECRET, body, msg_id="seed", timestamp=int(time.time()))
        assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202
        yield client


def webhook_headers(body: bytes, how: str) -> dict[str, str]:
    """Standard Webhooks headers for ``body``: ``ok``, ``none``, ``bad`` or ``stale``."""
    if how == "none":
        return {}
    secret = OTHER_SECRET if how == "bad" else WEBHOOK_SECRET
    at = time.time() - (600 if how == "stale" else 0)
    try:
        return sign(secret, body, msg_id="fuzz", timestamp=int(at))
    except UnicodeDecodeError:  # the spec signs text: a non-UTF-8 body cannot be signed
        return {"webhook-id": "fuzz", "webhook-timestamp": str(int(at)),
                "webhook-signature": "v1,bm90LXV0Zi04"}  # fmt: skip


# --- Slack -----------------------------------------------------------------------------


@pytest.fixture
async def slack_app(
    tmp_path: Path, config: LeadbotConfig, slack: FakeSlack
) -> AsyncIterator[Client]:
    settings = slack_settings(f"sqlite+aiosqlite:///{tmp_path}/leadbot.db", slack)
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        yield client


def slack_bases(slack: FakeSlack) -> dict[str, Any]:
    """Well-formed requests by kind: a slash command (form fields), a click on an alert's
    button and the disqualify form (interaction payloads)."""
    command = {
        "token": "legacy", "team_id": "T0TEAM", "channel_id": "C0SALES", "user_id": "U0REP1",
        "user_name": "rep", "command": "/lead", "text": "help", "trigger_id": "trig.1",
        "response_url": slack.response_url("cmd"), "api_app_id": "A0APP",
    }  # fmt: skip
    click = click_payload(slack, "claim", "u1", user="U0REP1", ts="1700000000.000100", n=1)
    meta = {"lead": "u1", "channel": "C00000001", "ts": "1700000000.000100"}
    view = {
        "type": "view_submission", "team": {"id": "T0TEAM"}, "user": {"id": "U0REP1"},
        "api_app_id": "A0APP", "trigger_id": "trig.view",
        "view": {"id": "V1", "type": "modal", "callback_id": "lead_disqualify_modal",
                 "private_metadata": orjson.dumps(meta).decode(),
                 "state": {"values": {"reason": {"reason": {"type": "static_select",
                           "selected_option": {"value": "no_budget"}}},
                           "note": {"note": {"type": "plain_text_input", "value": "later"}}}}},
    }  # fmt: skip
    return {"command": command, "block_actions": click, "view_submission": view}


def slack_body(
    value: Any, kind: str | None, encode: Callable[[Any], bytes] = orjson.dumps
) -> tuple[bytes, str]:
    """(bytes, Content-Type) as Slack sends them: a command as a form, an interaction as a
    form with its JSON (written by ``encode``) in ``payload``; anything else as JSON."""
    if kind == "command" and isinstance(value, dict):
        form = urllib.parse.urlencode({k: _form_value(v) for k, v in value.items()})
        return form.encode(), "application/x-www-form-urlencoded"
    if kind in ("block_actions", "view_submission"):
        form = urllib.parse.urlencode({"payload": encode(value).decode()})
        return form.encode(), "application/x-www-form-urlencoded"
    return encode(value), "application/json"


def _form_value(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def slack_signed(body: bytes, how: str = "ok") -> dict[str, str]:
    """Slack's signature headers over the raw bytes: ``ok``, ``none``, ``bad``, ``stale``."""
    if how == "none":
        return {}
    stamp = str(int(time.time() - (600 if how == "stale" else 0)))
    secret = "not-the-signing-secret" if how == "bad" else SIGNING_SECRET
    try:
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    except UnicodeDecodeError:  # Slack signs the bytes it sends; the SDK only text
        digest = hmac.new(secret.encode(), b"v0:%s:%s" % (stamp.encode(), body), hashlib.sha256)
        signature = "v0=" + digest.hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": str(signature)}


# --- Teams -----------------------------------------------------------------------------


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest.fixture
async def teams_app(
    tmp_path: Path, config: LeadbotConfig, connector: FakeConnector
) -> AsyncIterator[Client]:
    settings = load_settings({
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/leadbot.db", "LEADBOT_INGEST": "thread",
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET, f"{TEAMS_SDK}ANONYMOUS_ALLOWED": "true",
    })  # fmt: skip
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        # the channel is known first: a refused activity must not be what stores it
        install = teams_bases(connector)["installationUpdate"]
        assert (await client.post("/api/messages", json=install)).status in (200, 202)
        yield client


CHANNEL = "19:sales@thread.tacv2"
BOT = "28:leadbot-app"
REP = "aaaaaaaa-0000-0000-0000-000000000001"


def teams_bases(fake: FakeConnector) -> dict[str, Any]:
    """Well-formed activities by type, as Teams posts them from a team's channel."""
    common = {
        "channelId": "msteams", "serviceUrl": fake.url, "timestamp": "2026-03-02T09:00:00Z",
        "from": {"id": f"29:{REP}", "name": "Riley Rep", "aadObjectId": REP},
        "recipient": {"id": BOT, "name": "leadbot"},
        "conversation": {"id": CHANNEL, "conversationType": "channel", "tenantId": "tenant-1",
                         "isGroup": True},
        "channelData": {"tenant": {"id": "tenant-1"}, "team": {"id": CHANNEL, "name": "Sales"},
                        "channel": {"id": CHANNEL}},
    }  # fmt: skip
    mention = {
        "type": "mention",
        "text": "<at>leadbot</at>",
        "mentioned": {"id": BOT, "name": "leadbot"},
    }
    value = {"action": {"type": "Action.Execute", "verb": "lead_claim", "data": {"lead_id": "u1"}},
             "trigger": "manual"}  # fmt: skip
    return {
        "message": {**common, "type": "message", "id": "act-1",
                    "text": "<at>leadbot</at> lead help", "entities": [mention]},
        "invoke": {**common, "type": "invoke", "id": "act-2", "name": "adaptiveCard/action",
                   "value": value, "replyToId": "card-1"},
        "conversationUpdate": {**common, "type": "conversationUpdate", "id": "act-3",
                               "membersAdded": [{"id": BOT}]},
        "installationUpdate": {**common, "type": "installationUpdate", "id": "act-4",
                               "action": "add"},
    }  # fmt: skip


def invoke_answer(body: Any) -> bool:
    """An Adaptive Card invoke's own 4xx (``factory.bad_request``: an unknown lead, a bad
    click): the protocol's answer for Teams to show, not a refused request."""
    return isinstance(body, dict) and body.get("type") == "application/vnd.microsoft.error"
