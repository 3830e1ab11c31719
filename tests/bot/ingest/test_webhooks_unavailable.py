"""When storing fails for real (PostgreSQL refuses every connection), the webhook answers
503 with Retry-After, counts each refusal, logs the outage once rather than per request,
and takes events again by itself once the database is back. Bad input is never a 503:
the fuzz tests (tests/fuzz/) hold that side."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.app import build_app
from bot.ingest.signatures import sign
from bot.metrics import REGISTRY
from bot.web.answers import RETRY_AFTER_SECONDS
from config.loader import LeadbotConfig
from config.settings import load_settings
from storage.engine import create_engine
from tests.bot.conftest import IDEAL, identify, track
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client


async def _allow_connections(url: str, allow: bool) -> None:
    """Let no one (or everyone again) connect to the test database, and end the sessions
    already open: the outage is the server's, not a mock's."""
    name = make_url(url).database
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}'))
            if not allow:
                await conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))  # fmt: skip
    finally:
        await engine.dispose()


@pytest.fixture
async def client(postgres_url: str, config: LeadbotConfig) -> AsyncIterator[Client]:
    settings = load_settings({"DATABASE_URL": postgres_url, "LEADBOT_INGEST": "thread",
                              "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET})  # fmt: skip
    try:
        async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
            yield client
    finally:
        await _allow_connections(postgres_url, True)  # so the fixture can drop it


async def _post(client: Client, call: dict[str, object]) -> tuple[int, dict[str, str], object]:
    body = orjson.dumps(call)
    headers = sign(WEBHOOK_SECRET, body, msg_id=str(call["messageId"]), timestamp=int(time.time()))
    response = await client.post("/webhooks/events", data=body, headers=headers)
    return response.status, dict(response.headers), await response.json()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_an_outage_gives_503_with_retry_after_counted_and_logged_once(
    client: Client, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    assert (await _post(client, identify("u1", now, **IDEAL)))[0] == 202
    refused = _sample("leadbot_requests_rejected_total", endpoint="webhooks", reason="unavailable")
    accepted = _sample("leadbot_events_accepted_total")
    timed = _sample("leadbot_ingest_seconds_count")

    await _allow_connections(postgres_url, False)
    caplog.set_level(logging.INFO, logger="bot.ingest.webhooks")
    answers = [await _post(client, track("u1", "Demo Requested", now)) for _ in range(10)]
    for status, headers, body in answers:
        assert status == 503
        assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert isinstance(body, dict)
        assert "retry" in body["error"]
    assert _sample("leadbot_requests_rejected_total", endpoint="webhooks",
                   reason="unavailable") == refused + 10  # fmt: skip
    lines = [r for r in caplog.records if r.name == "bot.ingest.webhooks"]
    assert len(lines) <= 1, [r.getMessage() for r in lines]  # not one per request

    await _allow_connections(postgres_url, True)
    for _ in range(100):  # ingest comes back by itself; the pool reconnects
        status, _, body = await _post(client, track("u1", "Demo Requested", now))
        if status == 202:
            break
        await asyncio.sleep(0.05)
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
    assert _sample("leadbot_events_accepted_total") == accepted + 1
    assert _sample("leadbot_ingest_seconds_count") == timed + 1
    back = [r.getMessage() for r in caplog.records if r.name == "bot.ingest.webhooks"]
    assert any("storing events again" in line for line in back), back
