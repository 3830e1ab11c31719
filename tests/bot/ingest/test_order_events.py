"""Order events at the door: a bad one is a 400 naming the field on /webhooks/events and a
rejected entry on /v1/*; a good one is an order and still an ordinary track event."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from storage.customers import CUSTOMERS, ORDERS
from storage.ingest import EVENTS
from tests.bot.rfm_client import Client, order, post, shop

NOW = time.time()
KEY = "wk_live_orders_0123456789"


async def count(client: Client, table: Any) -> int:
    async with client.app[ENGINE].connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def completed(**props: Any) -> dict[str, Any]:
    call = order("Order Completed", "u1", NOW - 60, "o-1")
    merged = {**call["properties"], **props}
    call["properties"] = {k: v for k, v in merged.items() if v is not None}
    return call


@pytest.mark.parametrize(
    ("call", "field", "message"),
    [
        (completed(order_id=None, revenue=10), "batch[1].properties.order_id", "missing order_id"),
        (completed(revenue=-5), "batch[1].properties.revenue", "must be a number ≥ 0"),
        (completed(revenue="12.50"), "batch[1].properties.revenue", "expected a number"),
        (completed(total=True), "batch[1].properties.total", "expected a number"),
        (completed(revenue=5, currency="EURO"), "batch[1].properties.currency", "3-letter"),
        (completed(), "batch[1].properties.revenue", "needs properties.revenue"),
        (completed(order_id={"a": 1}, revenue=1), "batch[1].properties.order_id", "a string"),
        (
            order("Order Refunded", "u1", NOW, "o-1", refund_id=[1]),
            "batch[1].properties.refund_id", "a string or an integer",
        ),
        (order("Order Cancelled", "u1", NOW, ""), "batch[1].properties.order_id", "missing"),
    ],
)  # fmt: skip
async def test_a_bad_order_is_refused_whole_naming_the_field(
    db_url: str, config: LeadbotConfig, call: dict[str, Any], field: str, message: str
) -> None:
    good = completed(revenue=10) | {"messageId": "good"}
    async with shop(db_url, config) as client:
        status, answer = await post(client, [good, call])
        assert status == 400
        assert answer["field"] == field
        assert message in answer["error"]
        assert await count(client, EVENTS) == 0  # nothing refused touches the database
        assert await count(client, ORDERS) == 0


async def test_sdk_routes_drop_the_bad_order_and_keep_the_rest(
    db_url: str, config: LeadbotConfig
) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
    bad = completed(revenue=-1)
    good = completed(revenue=10, currency="gbp") | {"messageId": "ok"}
    async with shop(db_url, config, LEADBOT_WRITE_KEYS=KEY) as client:
        answer = await client.post("/v1/batch", data=orjson.dumps({"batch": [bad, good]}),
                                   headers=auth)  # fmt: skip
        assert answer.status == 200
        body = await answer.json()
        assert body["accepted"] == 1
        assert body["rejected"] == [
            {
                "index": 0,
                "field": "batch[0].properties.revenue",
                "error": "must be a number ≥ 0, got -1",
            }
        ]
        async with client.app[ENGINE].connect() as conn:
            row = (await conn.execute(select(ORDERS))).one()
            customer = (await conn.execute(select(CUSTOMERS))).one()
    assert (row.order_id, row.amount, row.currency, row.net_base) == ("o-1", 10.0, "GBP", None)
    # GBP has no rate in the default config: kept apart, not summed.
    assert (customer.revenue, customer.unconverted, customer.orders) == (0.0, {"GBP": 10.0}, 1)


async def test_an_order_is_also_an_ordinary_track_event(db_url: str, config: LeadbotConfig) -> None:
    viewed = order("Product Viewed", "u1", NOW - 90, "not-an-order")
    viewed["properties"] = {"price": -3}  # other events' properties are not checked
    async with shop(db_url, config) as client:
        status, answer = await post(client, [viewed, completed(revenue=30)])
        assert (status, answer) == (202, {"accepted": 2, "duplicates": 0})
        assert await count(client, EVENTS) == 2
        assert await count(client, ORDERS) == 1
        async with client.app[ENGINE].connect() as conn:
            lead = (await conn.execute(select(CUSTOMERS.c.lead_id))).scalar_one()
    assert lead == "u1"
