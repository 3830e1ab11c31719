"""The RFM recompute on a real database: orders ageing out of the window, segment history,
moves flagged for an alert with the figures that explain them, idempotence, lead merges."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.inbound import to_unix
from bot.ingest.pipeline import Pipeline
from bot.jobs.rfm import recompute_rfm
from config.loader import LeadbotConfig
from scoring.rfm import Order, OrderEvent, fold, summarize
from storage import customers as repo
from storage.customers import CHANGES, CUSTOMERS, ORDERS
from storage.privacy import find_person, forget_person
from tests.bot.conftest import DAY, T0, call, events, track


def bought(user: str, order_id: str, at: float, amount: float) -> dict[str, Any]:
    props = {"order_id": order_id, "revenue": amount, "currency": "EUR"}
    return track(user, "Order Completed", at, properties=props)


async def ingest(engine: AsyncEngine, config: LeadbotConfig, *calls: dict[str, Any],
                 now: float) -> None:  # fmt: skip
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(*calls, now=now), now=now)


async def customer(engine: AsyncEngine, lead: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        found = await conn.run_sync(repo.customer, lead)
    assert found is not None
    return found


def shop_history(now: float) -> list[dict[str, Any]]:
    """Nine ordinary customers (1–3 small orders) and a star: twelve 800 EUR orders over
    the last 120 days, every ten days."""
    calls = []
    for i in range(9):
        for k in range(1 + i % 3):
            calls.append(bought(f"c{i}", f"c{i}-{k}", now - (5 + 11 * i + 40 * k) * DAY, 40.0))
    for k in range(12):
        calls.append(bought("star", f"star-{k}", now - (1 + 10 * k) * DAY, 800.0))
    return calls


async def test_a_champion_drifting_away_is_a_move_to_alert(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await ingest(engine, config, *shop_history(T0), now=T0)
    first = await recompute_rfm(engine, config.rfm, now=T0)
    assert first.customers == 10
    assert first.written == 10
    assert len(first.moves) == 10  # everyone's first segment
    assert not any(m.alert for m in first.moves)
    star = await customer(engine, "star")
    assert (star["segment"], star["cell"], star["orders"], star["revenue"]) == (
        "Champions", "555", 12, 9600.0,
    )  # fmt: skip

    again = await recompute_rfm(engine, config.rfm, now=T0)
    assert (again.written, again.moves) == (0, [])  # nothing changed: nothing written

    # 150 days on, the others keep buying and the star does not.
    later = T0 + 150 * DAY
    fresh = [bought(f"c{i}", f"c{i}-new", later - i * DAY, 40.0) for i in range(9)]
    await ingest(engine, config, *fresh, now=later)
    result = await recompute_rfm(engine, config.rfm, now=later)
    [move] = [m for m in result.moves if m.lead_id == "star"]
    assert move.source == "Champions"
    assert move.to in ("At risk", "Can't lose them")
    assert move.alert
    assert move.recency_days == pytest.approx(151.0)
    assert move.interval_days == pytest.approx(10.0)
    assert move.revenue == 9600.0
    star = await customer(engine, "star")
    assert star["segment"] == move.to
    assert star["segment_since"] == pytest.approx(later)
    async with engine.connect() as conn:
        history = await conn.run_sync(repo.segment_history, "star")
        moves = await conn.run_sync(lambda c: repo.moves_since(c, since=later))
    assert [(h["from"], h["to"]) for h in history] == [(None, "Champions"), ("Champions", move.to)]
    assert history[-1]["recency_days"] == pytest.approx(151.0)
    assert any(m["lead_id"] == "star" for m in moves)


async def test_orders_age_out_of_the_window_but_the_customer_stays(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await ingest(engine, config, *shop_history(T0), now=T0)
    await recompute_rfm(engine, config.rfm, now=T0)
    much_later = T0 + 400 * DAY  # every order is older than the 365-day window
    await recompute_rfm(engine, config.rfm, now=much_later)
    star = await customer(engine, "star")
    assert (star["orders"], star["revenue"], star["f"], star["m"]) == (0, 0.0, 1, 1)
    assert star["orders_total"] == 12
    assert star["segment"] is not None  # still a customer, scored on recency


async def test_a_cancelled_only_customer_leaves_the_table(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await ingest(engine, config, *shop_history(T0), now=T0)
    await recompute_rfm(engine, config.rfm, now=T0)
    gone = [
        track("c0", "Order Cancelled", T0, properties={"order_id": "c0-0"}),
    ]
    await ingest(engine, config, *gone, now=T0 + 60)
    result = await recompute_rfm(engine, config.rfm, now=T0 + 60)
    assert result.customers == 9
    c0 = await customer(engine, "c0")
    assert (c0["segment"], c0["r"], c0["orders"]) == (None, None, 0)


async def test_an_anonymous_buyers_orders_follow_them_when_identified(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    anon = call("track", T0 - 100, event="Order Completed", anonymousId="a-1",
                properties={"order_id": "x-1", "revenue": 50})  # fmt: skip
    await ingest(engine, config, anon, now=T0)
    named = call("identify", T0, userId="dana", anonymousId="a-1", traits={"email": "d@x.io"})
    await ingest(engine, config, named, now=T0 + 1)
    async with engine.connect() as conn:
        owners = (await conn.execute(select(ORDERS.c.lead_id))).scalars().all()
        rows = (await conn.execute(select(CUSTOMERS.c.lead_id, CUSTOMERS.c.revenue))).all()
        changes = (await conn.execute(select(CHANGES))).all()
    assert owners == ["dana"]
    assert [tuple(r) for r in rows] == [("dana", 50.0)]
    assert changes == []


async def test_forgetting_a_person_deletes_their_orders_and_segments(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await ingest(engine, config, *shop_history(T0), now=T0)
    await recompute_rfm(engine, config.rfm, now=T0)
    async with engine.begin() as conn:
        person = await find_person(conn, "star")
        assert person is not None
        done = await forget_person(conn, person)
    assert (done.deleted["orders"], done.deleted["customers"]) == (12, 1)
    assert done.deleted["customer_segments"] == 1
    async with engine.connect() as conn:
        assert await conn.run_sync(repo.customer, "star") is None
        assert await conn.run_sync(repo.customer_orders, "star") == []


async def test_the_ingest_sums_agree_with_the_pure_summary(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    """Orders, refunds and cancellations in any mix and order: the customer row the ingest
    keeps is ``scoring.rfm.summarize`` over the folded orders."""
    rnd = random.Random(7)
    calls: list[dict[str, Any]] = []
    folded: dict[str, Order] = {}
    for i in range(120):
        order_id = f"o{rnd.randrange(40)}"
        at = T0 - rnd.uniform(0, 500) * DAY
        kind = rnd.choice(["Order Completed"] * 3 + ["Order Refunded", "Order Cancelled"])
        props: dict[str, Any] = {"order_id": order_id, "currency": rnd.choice(["EUR", "JPY"])}
        if kind != "Order Cancelled":
            props["revenue"] = round(rnd.uniform(1, 300), 2)
        calls.append(track("buyer", kind, at, properties=props, messageId=f"r{i}"))
    for start in range(0, len(calls), 7):  # several groups, so orders are read back
        await ingest(engine, config, *calls[start : start + 7], now=T0)
    for c in calls:
        p = c["properties"]
        kind = {"Order Completed": "completed", "Order Refunded": "refunded"}.get(
            c["event"], "cancelled"
        )
        event = OrderEvent(kind, p["order_id"], to_unix(c["timestamp"]), p.get("revenue"),
                           p["currency"], f"message:{c['messageId']}")  # fmt: skip
        folded[p["order_id"]] = fold(folded.get(p["order_id"]), event)
    want = summarize(folded.values(), config.rfm.rates, now=T0)
    got = await customer(engine, "buyer")
    assert got["orders"] == want.orders
    assert got["orders_total"] == want.orders_total
    assert got["revenue"] == pytest.approx(want.revenue)
    assert got["unconverted"] == pytest.approx(dict(want.unconverted))
    assert got["last_order_at"] == pytest.approx(want.last_at)
    assert got["first_order_at"] == pytest.approx(want.first_at)
