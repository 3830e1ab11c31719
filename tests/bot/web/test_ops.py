"""/healthz, /readyz, /metrics and the read timeout, on the real app over HTTP."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.app import build_app
from bot.ingest.signatures import generate_secret, sign
from bot.outbox.dispatcher import ConsoleTransport
from bot.serve import listen_address
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from tests.bot.conftest import IDEAL, identify, track

SECRET = generate_secret()
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(db_url: str, config: LeadbotConfig) -> AsyncIterator[Client]:
    env = {"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET, "LEADBOT_INGEST": "thread",
           "LEADBOT_READ_TIMEOUT": "0.5"}  # fmt: skip
    settings = load_settings(env)
    app = build_app(settings=settings, config=config, transport=ConsoleTransport(io.StringIO()))
    async with TestClient(TestServer(app)) as client:
        yield client


async def _post(client: Client, body: dict[str, Any], msg: str) -> int:
    raw = orjson.dumps(body)
    headers = sign(SECRET, raw, msg_id=msg, timestamp=int(time.time()))
    answer = await client.post("/webhooks/events", data=raw, headers=headers)
    return answer.status


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


async def test_readyz_says_ready_with_each_check(client: Client) -> None:
    answer = await client.get("/readyz")
    body = await answer.json()
    assert answer.status == 200
    assert body["status"] == "ready"
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database", "writer", "migrations"
    }  # fmt: skip
    assert (await client.get("/healthz")).status == 200


async def test_readyz_refuses_a_database_at_another_schema_version(client: Client) -> None:
    engine = client.app[ENGINE]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    answer = await client.get("/readyz")
    body = await answer.json()
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert body["checks"]["migrations"]["ok"] is False
    assert "0001" in body["checks"]["migrations"]["error"]
    assert body["checks"]["database"]["ok"] is True
    assert (await client.get("/healthz")).status == 200  # alive, just not ready


async def test_metrics_count_events_and_show_the_outbox(client: Client) -> None:
    before = _samples(await (await client.get("/metrics")).text())
    accepted = ("leadbot_events_accepted_total", ())
    duplicate = ("leadbot_events_duplicate_total", ())
    now = time.time()
    assert await _post(client, identify("u1", now, **IDEAL), "m1") == 202
    call = track("u1", "Demo Requested", now)
    assert await _post(client, call, "m2") == 202
    assert await _post(client, call, "m3") == 202  # the same messageId again
    answer = await client.get("/metrics")
    assert answer.headers["Content-Type"].startswith("text/plain")
    after = _samples(await answer.text())
    assert after[accepted] - before.get(accepted, 0) == 2
    assert after[duplicate] - before.get(duplicate, 0) == 1
    # The demo request made the lead hot: one alert for the console, queued or sent.
    outbox = {k: v for k, v in after.items() if k[0] == "leadbot_outbox_messages"}
    assert sum(v for (_, labels), v in outbox.items() if ("transport", "console") in labels) == 1


async def test_a_body_shorter_than_announced_gets_408_and_the_connection_closes(
    client: Client,
) -> None:
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(
        b"POST /webhooks/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"type":'
    )
    await writer.drain()
    started = time.monotonic()
    async with asyncio.timeout(5):
        answer = await reader.read()  # until the server closes the connection
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"not received within 0.5 s" in answer
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("env", "insecure", "flag", "address"),
    [
        ({}, True, None, "127.0.0.1"),  # running open: only this machine
        ({}, False, None, "0.0.0.0"),
        ({"LEADBOT_HOST": "0.0.0.0"}, True, None, "0.0.0.0"),  # said explicitly
        ({}, True, "10.0.0.5", "10.0.0.5"),
    ],
)
def test_serve_listens_on_this_machine_only_when_open_unless_told(
    env: dict[str, str], insecure: bool, flag: str | None, address: str
) -> None:
    assert listen_address(load_settings(env), insecure=insecure, host=flag) == address
