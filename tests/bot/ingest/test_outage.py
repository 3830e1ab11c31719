"""A database outage only delays: every request gets a 503 with Retry-After (never a hang,
never a traceback per request), /readyz says why, and ingest returns by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.ingest.signatures import generate_secret
from storage.engine import create_engine
from storage.ingest import EVENTS
from tests.live_server import LiveServer, signed_request
from tests.outage import cut_postgres

SECRET = generate_secret()


@pytest.fixture
async def server(postgres_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    env = {"DATABASE_URL": postgres_url, "LEADBOT_WEBHOOK_SECRET": SECRET}
    live = await asyncio.to_thread(LiveServer(tmp_path, env).start)
    try:
        yield live
    finally:
        await cut_postgres(postgres_url, allow=True)  # the fixture drops the database afterwards
        await asyncio.to_thread(live.stop)


async def _send(
    session: aiohttp.ClientSession, server: LiveServer, calls: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    answers = []
    for call in calls:
        body, headers = signed_request(SECRET, call, f"h-{call['messageId']}")
        async with session.post(server.base + "/webhooks/events", data=body, headers=headers) as r:
            await r.read()
            answers.append((r.status, r.headers.get("Retry-After")))
    return answers


def _calls(prefix: str, n: int) -> list[dict[str, Any]]:
    now = time.time()
    return [{"type": "page", "userId": f"u{i % 7}", "messageId": f"{prefix}-{i}",
             "properties": {"path": "/pricing"}, "timestamp": now} for i in range(n)]  # fmt: skip


async def test_a_database_outage_gives_503_with_retry_after_and_ingest_returns(
    server: LiveServer, postgres_url: str
) -> None:
    before, during = _calls("before", 5), _calls("during", 150)
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        assert {s for s, _ in await _send(session, server, before)} == {202}
        log_lines = server.log().count("\n")
        await cut_postgres(postgres_url, allow=False)
        answers = await asyncio.gather(*(_send(session, server, [c]) for c in during))
        statuses = [a[0] for batch in answers for a in batch]
        assert set(statuses) == {503}
        assert all(retry == "5" for batch in answers for _, retry in batch)
        status, body = await asyncio.to_thread(server.get, "/readyz")
        assert status == 503
        assert b'"database":{"ok":false' in body
        assert (await asyncio.to_thread(server.get, "/healthz"))[0] == 200
        # One line per period with a count, not a traceback (116 lines) per request.
        logged = server.log().splitlines()[log_lines:]  # shown if it fails: what was so chatty
        assert server.log().count("\n") - log_lines < 40, "\n".join(logged)
        await cut_postgres(postgres_url, allow=True)
        deadline = time.monotonic() + 15
        while {s for s, _ in await _send(session, server, during[:1])} != {202}:
            assert time.monotonic() < deadline, "ingest did not come back"
            await asyncio.sleep(0.2)
        assert {s for s, _ in await _send(session, server, during)} == {202}
    engine = create_engine(postgres_url)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(EVENTS))).scalar_one()
    await engine.dispose()
    assert stored == len(before) + len(during)
