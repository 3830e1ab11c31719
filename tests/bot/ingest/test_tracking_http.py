"""Segment's tracking API (``/v1/*``) over HTTP, as an SDK calls it: write keys, partial
acceptance, the answer's shape, gzip, and the errors SDKs read (``code``, ``message``)."""

from __future__ import annotations

import base64
import gzip
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

from bot.app import build_app
from bot.metrics import REGISTRY
from bot.outbox.dispatcher import ConsoleTransport
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from storage.ingest import EVENTS, LEADS
from tests.bot.conftest import IDEAL, identify, page, track

KEY, OLD_KEY = "wk_live_0123456789abcdef", "wk_old_abcdefgh"
NOW = time.time()

Client = TestClient[web.Request, web.Application]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def app_for(db_url: str, config: LeadbotConfig, **env: str) -> web.Application:
    settings = load_settings({
        "DATABASE_URL": db_url, "LEADBOT_INGEST": "thread", "LEADBOT_MAX_BODY_BYTES": "65536",
        "LEADBOT_MAX_EVENT_BYTES": "4096", **env,
    })  # fmt: skip
    return build_app(settings=settings, config=config, transport=ConsoleTransport(io.StringIO()))


@pytest.fixture
async def client(db_url: str, config: LeadbotConfig) -> AsyncIterator[Client]:
    app = app_for(db_url, config, LEADBOT_WRITE_KEYS=f"{KEY}, {OLD_KEY}")
    async with TestClient(TestServer(app)) as client:
        yield client


async def count(client: Client, table: Any) -> int:
    async with client.app[ENGINE].connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def post(client: Client, path: str, doc: Any, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return await client.post(
        path, data=orjson.dumps(doc), headers=basic(KEY) if headers is None else headers
    )


USER = "u-ideal"


def journey(anon: str = "anon-1", user: str = USER) -> list[dict[str, Any]]:
    """An anonymous pricing page, the identify naming the visitor, a track, a later page."""
    first = page(None, "/pricing", NOW - 300, anonymousId=anon, messageId=f"{anon}-p1")
    named = identify(user, NOW - 200, **IDEAL)
    named |= {"anonymousId": anon, "messageId": f"{anon}-i"}
    demo = track(user, "Demo Requested", NOW - 100) | {"messageId": f"{anon}-t"}
    later = page(None, "/pricing/enterprise", NOW - 50, anonymousId=anon, messageId=f"{anon}-p2")
    return [first, named, demo, later]


async def test_a_batch_is_stored_and_answered_as_segment_does(client: Client) -> None:
    answer = await post(client, "/v1/batch", {"batch": journey(), "sentAt": NOW})
    assert answer.status == 200
    assert await answer.json() == {"success": True, "accepted": 4, "duplicates": 0, "rejected": []}
    assert await count(client, EVENTS) == 4
    async with client.app[ENGINE].connect() as conn:
        leads = (await conn.execute(text("SELECT id, anonymous FROM leads"))).all()
        sql = text("SELECT lead_id FROM identities WHERE key = 'anon:anon-1'")
        anon = (await conn.execute(sql)).scalar_one()
    assert [(lead_id, bool(anonymous)) for lead_id, anonymous in leads] == [(USER, False)]
    assert anon == USER  # the visitor's later pages count for the person
    again = await post(client, "/v1/import", {"batch": journey()})
    assert await again.json() == {"success": True, "accepted": 0, "duplicates": 4, "rejected": []}


@pytest.mark.parametrize("call_type", ["identify", "track", "page", "screen", "group", "alias"])
async def test_one_call_routes_take_their_type_from_the_path(
    client: Client, call_type: str
) -> None:
    call = {"userId": "u-1", "event": "Demo Requested", "previousId": "anon-9",
            "traits": {"employees": 250}, "groupId": "g-1", "name": "Pricing",
            "writeKey": KEY}  # fmt: skip
    answer = await post(client, f"/v1/{call_type}", call, headers={})  # the key in the body
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["accepted"] == 1
    async with client.app[ENGINE].connect() as conn:
        kind, payload = (await conn.execute(text("SELECT type, payload FROM events"))).one()
    payload = payload if isinstance(payload, dict) else orjson.loads(payload)
    assert kind == {"screen": "page", "group": "identify"}.get(call_type, call_type)
    assert payload["type"] == call_type
    assert "writeKey" not in payload  # a credential is never stored


async def test_bad_calls_are_dropped_and_the_rest_kept(client: Client) -> None:
    calls = journey()
    calls.insert(1, track(None, "Form Filled", NOW, properties={"email": "n/a"}))
    calls.append({"type": "track", "userId": "u-2"})  # no event name
    before = REGISTRY.get_sample_value("leadbot_events_dropped_total", {"endpoint": "tracking"})
    answer = await post(client, "/v1/batch", {"batch": calls})
    assert answer.status == 200
    body = await answer.json()
    assert body["accepted"] == 4
    assert body["rejected"] == [
        {"index": 1, "field": "batch[1].properties.email", "error": "not an email address: 'n/a'"},
        {"index": 5, "field": "batch[5].event", "error": "track needs a non-empty event name"},
    ]
    assert await count(client, EVENTS) == 4
    after = REGISTRY.get_sample_value("leadbot_events_dropped_total", {"endpoint": "tracking"})
    assert (after or 0) - (before or 0) == 2


@pytest.mark.parametrize(
    ("headers", "body_key", "error"),
    [
        ({}, None, "missing write key"),
        (basic("wk_wrong_key_123"), None, "unknown write key"),
        ({}, "wk_wrong_key_123", "unknown write key"),
        ({"Authorization": "Bearer " + KEY}, KEY, "malformed Authorization header"),
        ({"Authorization": "Basic !!!"}, None, "malformed Authorization header"),
    ],
)
async def test_a_wrong_or_missing_key_stores_nothing(
    client: Client, headers: dict[str, str], body_key: str | None, error: str
) -> None:
    doc: dict[str, Any] = {"batch": journey()}
    if body_key is not None:
        doc["writeKey"] = body_key
    answer = await post(client, "/v1/batch", doc, headers=headers)
    assert answer.status == 401
    body = await answer.json()
    assert (body["code"], body["field"]) == ("unauthorized", "writeKey")
    assert body["message"].startswith(error)
    assert body["error"] == body["message"]
    assert KEY not in await answer.text()
    assert await count(client, EVENTS) == 0


async def test_every_configured_key_works_for_rotation(client: Client) -> None:
    for i, key in enumerate((KEY, OLD_KEY)):
        batch = [track(f"u-{i}", "Demo Requested", NOW)]
        answer = await post(client, "/v1/batch", {"batch": batch}, headers=basic(key))
        assert answer.status == 200
    assert await count(client, LEADS) == 2


async def test_without_a_key_a_malformed_body_is_still_unauthorized(client: Client) -> None:
    answer = await client.post("/v1/batch", data=b"{not json")
    assert answer.status == 401
    with_key = await client.post("/v1/batch", data=b"{not json", headers=basic(KEY))
    assert with_key.status == 400
    body = await with_key.json()
    assert body["code"] == "invalid_request"
    assert body["message"].startswith("invalid JSON at line 1")


async def test_a_body_that_is_no_batch_is_refused_whole(client: Client) -> None:
    for doc, field in (({"batch": "x"}, "batch"), ([journey()[0]], "")):
        answer = await post(client, "/v1/batch" if field else "/v1/track", doc)
        assert answer.status == 400
        assert (await answer.json())["field"] == field
    assert await count(client, EVENTS) == 0


async def test_gzip_bodies_and_the_decompressed_cap(client: Client) -> None:
    body = gzip.compress(orjson.dumps({"batch": journey()}))
    headers = basic(KEY) | {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    answer = await client.post("/v1/batch", data=body, headers=headers)
    assert (await answer.json())["accepted"] == 4
    # 4 MB of spaces compress to 4 kB: the cap (64 kB here) is on what they inflate to.
    bomb = gzip.compress(b'{"batch": [' + b" " * 4_000_000 + b"]}")
    assert len(bomb) < 65536
    answer = await client.post("/v1/batch", data=bomb, headers=headers)
    assert answer.status == 413
    assert (await answer.json())["code"] == "payload_too_large"
    assert await count(client, EVENTS) == 4


async def test_an_oversize_call_is_dropped_not_the_batch(client: Client) -> None:
    big = track("u-big", "Demo Requested", NOW, properties={"pad": "x" * 5000})
    answer = await post(client, "/v1/batch", {"batch": [big, *journey()]})
    body = await answer.json()
    assert (answer.status, body["accepted"]) == (200, 4)
    assert body["rejected"][0]["index"] == 0
    assert "over the limit of 4096" in body["rejected"][0]["error"]


async def test_no_key_configured_refuses_sdks_and_says_what_to_set(
    db_url: str, config: LeadbotConfig
) -> None:
    from bot.ingest.signatures import generate_secret

    app = app_for(db_url, config, LEADBOT_WEBHOOK_SECRET=generate_secret())
    async with TestClient(TestServer(app)) as client:
        answer = await post(client, "/v1/batch", {"batch": journey()})
        assert answer.status == 401
        assert "LEADBOT_WRITE_KEYS" in (await answer.json())["message"]
        assert await count(client, EVENTS) == 0


async def test_webhook_errors_carry_code_and_message_too(
    db_url: str, config: LeadbotConfig
) -> None:
    from bot.ingest.signatures import generate_secret

    app = app_for(db_url, config, LEADBOT_WEBHOOK_SECRET=generate_secret())
    async with TestClient(TestServer(app)) as client:
        answer = await client.post("/webhooks/events", data=b"{}")
        body = await answer.json()
        assert (answer.status, body["code"]) == (401, "unauthorized")
        assert body["message"] == body["error"]
