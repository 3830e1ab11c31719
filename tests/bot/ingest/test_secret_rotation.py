"""Which secrets ``serve`` starts with: several webhook secrets at once (rotation), only SDK
write keys (then /webhooks/events refuses every call), or nothing (it refuses to start)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import StartupError, build_app, make_verifier
from bot.ingest.signatures import generate_secret, sign
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from storage.ingest import EVENTS, LEADS
from tests.bot.conftest import IDEAL, identify

OLD, NEW, UNKNOWN = generate_secret(), generate_secret(), generate_secret()
WRITE_KEY = "sdk-write-key-for-tests"
Client = TestClient[web.Request, web.Application]


async def _serve(db_url: str, config: LeadbotConfig, **env: str) -> AsyncIterator[Client]:
    settings = load_settings({"DATABASE_URL": db_url, "LEADBOT_INGEST": "thread", **env})
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        yield client


async def _post(client: Client, user: str, secret: str | None) -> ClientResponse:
    body = orjson.dumps(identify(user, time.time(), **IDEAL))
    headers = {} if secret is None else sign(secret, body, msg_id=user, timestamp=int(time.time()))
    return await client.post("/webhooks/events", data=body, headers=headers)


async def _count(client: Client, table: object) -> int:
    async with client.app[ENGINE].connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
async def rotating(db_url: str, config: LeadbotConfig) -> AsyncIterator[Client]:
    async for client in _serve(db_url, config, LEADBOT_WEBHOOK_SECRET=f"{NEW} {OLD}"):
        yield client


async def test_both_rotation_secrets_verify_and_an_unknown_one_stores_nothing(
    rotating: Client,
) -> None:
    assert (await _post(rotating, "signed-new", NEW)).status == 202
    assert (await _post(rotating, "signed-old", OLD)).status == 202
    events = await _count(rotating, EVENTS)
    leads = await _count(rotating, LEADS)
    assert events == 2
    refused = await _post(rotating, "signed-unknown", UNKNOWN)
    assert refused.status == 401
    assert (await refused.json())["error"] == "no matching signature"
    assert await _count(rotating, EVENTS) == events
    assert await _count(rotating, LEADS) == leads


async def test_with_only_write_keys_webhooks_are_refused_naming_the_variable(
    db_url: str, config: LeadbotConfig
) -> None:
    async for client in _serve(db_url, config, LEADBOT_WRITE_KEYS=WRITE_KEY):
        for secret in (None, UNKNOWN):  # unsigned, and signed with a secret of its own
            refused = await _post(client, "anyone", secret)
            assert refused.status == 401
            assert "set LEADBOT_WEBHOOK_SECRET" in (await refused.json())["error"]
        assert await _count(client, EVENTS) == 0
        assert await _count(client, LEADS) == 0


def test_with_nothing_set_serve_refuses_naming_every_way_in() -> None:
    with pytest.raises(StartupError) as refused:
        make_verifier(load_settings({}), insecure=False)
    message = str(refused.value)
    for way in ("LEADBOT_WEBHOOK_SECRET", "LEADBOT_WRITE_KEYS", "leadbot write-key", "--insecure"):
        assert way in message


def test_only_insecure_with_no_secret_runs_open() -> None:
    keys_only = load_settings({"LEADBOT_WRITE_KEYS": WRITE_KEY})
    assert make_verifier(keys_only, insecure=True) is None
    verifier = make_verifier(keys_only, insecure=False)
    assert verifier is not None
    assert not verifier.enabled
    signed = load_settings({"LEADBOT_WEBHOOK_SECRET": OLD})
    with_secret = make_verifier(signed, insecure=True)  # --insecure never drops a secret
    assert with_secret is not None
    assert with_secret.enabled
    segment = make_verifier(load_settings({"LEADBOT_SEGMENT_SECRET": "seg"}), insecure=False)
    assert segment is not None
    assert segment.enabled
