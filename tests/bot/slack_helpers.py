"""What the Slack tests (HTTP and Socket Mode) share: waiting, counting, a hot lead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.signatures import generate_secret, sign
from bot.state import ENGINE
from tests.bot.conftest import IDEAL, identify, track

WEBHOOK_SECRET = generate_secret()

Client = TestClient[web.Request, web.Application]


async def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time allowed")


async def count(client: Client, model: Any) -> int:
    async with client.app[ENGINE].connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def hot_lead(client: Client) -> None:
    """Dana Reyes (lead ``u1``), hot, through a signed webhook."""
    now = time.time()
    body = orjson.dumps(
        {"batch": [identify("u1", now, **IDEAL), track("u1", "Demo Requested", now)]}
    )
    headers = sign(WEBHOOK_SECRET, body, msg_id="m-hot", timestamp=int(now))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202
