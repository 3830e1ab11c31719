"""What the Slack and Teams customer tests share: a shop's order history sent through the
signed webhook, 150 days apart, so that its star customer slips from Champions."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.customer_alerts import recompute_and_alert
from bot.chat.routing import Router
from bot.ingest.signatures import sign
from config.loader import LeadbotConfig
from tests.bot.conftest import DAY, identify
from tests.bot.jobs.test_rfm import bought, shop_history
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client

NOW = time.time()
BEFORE = NOW - 150 * DAY  # the star's heyday


async def send(client: Client, calls: list[dict[str, Any]], msg_id: str) -> None:
    body = orjson.dumps({"batch": calls})
    headers = sign(WEBHOOK_SECRET, body, msg_id=msg_id, timestamp=int(time.time()))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202


async def slipping_star(
    client: Client, engine: AsyncEngine, config: LeadbotConfig, router: Router
) -> None:
    """Star (``star@shop.example``, Dana Star <b>) buys every ten days until 150 days ago,
    when a recompute makes it a Champion; the others keep buying, it does not; the
    recompute now moves it to At risk or Can't lose them and queues its alert."""
    who = identify("star", BEFORE - 200 * DAY, email="star@shop.example", name="Dana <b>Star</b>")
    await send(client, [who, *shop_history(BEFORE)], "m-history")
    await recompute_and_alert(engine, config.rfm, router=router, now=BEFORE)
    fresh = [bought(f"c{i}", f"c{i}-new", NOW - (1 + i) * DAY, 40.0) for i in range(9)]
    await send(client, fresh, "m-fresh")
    await recompute_and_alert(engine, config.rfm, router=router, now=NOW)
