"""The RFM recompute at scale, next to the least it must read: a bare GROUP BY.

Run on demand: ``python -m tests.bench.bench_rfm [--customers N] [--orders M]
[--postgres URL]``.

1. A migrated database (a SQLite file; with ``--postgres`` an admin URL such as
   LEADBOT_TEST_POSTGRES_URL, a fresh database on that server) gets ``--orders`` orders
   (1,000,000 by default) for ``--customers`` customers (100,000): order counts skewed
   (most buy once or twice, a few hundred times), amounts 5–2,000 EUR log-uniform, times
   over the last 500 days, 3 % cancelled or refunded, 2 % in a currency without a rate. The
   customers' rows are built by one INSERT … SELECT GROUP BY (what the ingest's re-sums
   would have left).
2. **floor**: ``SELECT lead_id, currency, count(*), sum(amount - refunded) FROM orders WHERE
   counted AND at >= start GROUP BY lead_id, currency``, every row fetched: the scan the
   recompute cannot avoid (it is ``storage.customers.window_sums``).
3. **leadbot**: ``bot.jobs.rfm.recompute_rfm`` — the first run (every customer scored and
   written, a history row each), the steady run 15 minutes later (what the scheduled job
   usually does), and a run 30 days later (orders aged out, many customers move).
4. **ingest**: what orders cost the hot path, on that database: ``--ingest`` (20,000)
   ``Order Completed`` calls for existing customers through ``Pipeline.ingest_many`` in
   groups of 200, next to as many plain track calls (``Product Viewed``) for the same leads.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.rfm import recompute_rfm
from config.rfm import Rfm
from scoring.rfm import DAY, window_start
from storage import offloop
from storage.customers import ORDERS, window_sums
from storage.engine import create_engine
from storage.migrate import upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
CHUNK = 20_000


def _orders_for(customers: int, total: int, seed: int) -> list[int]:
    """Orders per customer, skewed (a Pareto tail), summing to ``total``."""
    rnd = random.Random(seed)
    weights = [rnd.paretovariate(1.3) for _ in range(customers)]
    scale = (total - customers) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    counts[0] += total - sum(counts)
    return counts


def _rows(customers: int, total: int, seed: int) -> Any:
    rnd = random.Random(seed + 1)
    at = datetime.fromtimestamp
    for c, n in enumerate(_orders_for(customers, total, seed)):
        lead = f"cust-{c:07d}"
        for k in range(max(n, 1)):
            amount = round(math.exp(rnd.uniform(math.log(5), math.log(2000))), 2)
            fate = rnd.random()
            cancelled, refunded = fate < 0.01, amount if fate < 0.03 else 0.0
            currency = "JPY" if rnd.random() < 0.02 else "EUR"
            counted = not cancelled and refunded < amount
            yield {
                "order_id": f"{lead}-{k}", "lead_id": lead,
                "status": "cancelled" if cancelled else "completed", "completed": True,
                "cancelled": cancelled, "amount": amount, "currency": currency,
                "refunded": refunded, "refunds": {}, "counted": counted,
                "net_base": None if currency == "JPY" else amount - refunded,
                "at": at(NOW - rnd.uniform(0, 500) * DAY, UTC), "updated_at": at(NOW, UTC),
            }  # fmt: skip


def _load(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(ORDERS), rows)


CUSTOMERS_FROM_ORDERS = """
INSERT INTO customers (lead_id, first_order_at, last_order_at, orders, revenue, unconverted,
    orders_total, as_of, updated_at)
SELECT lead_id, min(at), max(at), count(*), sum(amount - refunded), '{}', count(*), :now, :now
FROM orders WHERE counted GROUP BY lead_id
"""


def _customers(conn: Connection) -> None:
    sql = CUSTOMERS_FROM_ORDERS
    if conn.dialect.name == "postgresql":
        sql = sql.replace("'{}'", "'{}'::jsonb")
    conn.execute(text(sql), {"now": datetime.fromtimestamp(NOW, UTC)})


async def fill(engine: AsyncEngine, customers: int, orders: int, seed: int) -> float:
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    async with offloop.Worker(engine) as worker:
        for row in _rows(customers, orders, seed):
            batch.append(row)
            if len(batch) == CHUNK:
                await worker.write(_load, batch)
                batch = []
        if batch:
            await worker.write(_load, batch)
        await worker.write(_customers)
    return time.perf_counter() - started


async def floor(engine: AsyncEngine, now: float) -> tuple[float, int]:
    async with offloop.Worker(engine) as worker:
        started = time.perf_counter()
        sums = await worker.read(lambda c: window_sums(c, start=window_start(now, 365)))
        return time.perf_counter() - started, len(sums)


async def ingest_cost(engine: AsyncEngine, customers: int, n: int, seed: int) -> None:
    from bot.ingest.inbound import parse_body
    from bot.ingest.pipeline import Pipeline
    from config.loader import load_config

    rnd = random.Random(seed + 2)
    config = load_config()
    stamp = datetime.fromtimestamp(NOW, UTC).isoformat()
    for label, event in (("plain track", "Product Viewed"), ("Order Completed", "Order Completed")):
        calls = [
            {
                "type": "track", "event": event, "userId": f"cust-{rnd.randrange(customers):07d}",
                "timestamp": stamp, "messageId": f"{event}-{i}",
                "properties": {"order_id": f"new-{i}", "revenue": 42.0, "currency": "EUR"},
            }
            for i in range(n)
        ]  # fmt: skip
        groups = [
            parse_body(orjson.dumps({"batch": calls[i : i + 200]}), now=NOW)
            for i in range(0, n, 200)
        ]
        async with Pipeline(engine, config) as pipeline:
            started = time.perf_counter()
            for group in groups:
                await pipeline.ingest_many([group], now=NOW)
            seconds = time.perf_counter() - started
        print(f"ingest, {label}: {n / seconds:,.0f} events/s ({n:,} in groups of 200)")


async def measure(url: str, customers: int, orders: int, seed: int, ingest: int) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        seconds = await fill(engine, customers, orders, seed)
        print(f"fill: {orders:,} orders, {customers:,} customers in {seconds:.1f} s")
        rfm = Rfm()
        seconds, n = await floor(engine, NOW)
        print(f"floor (GROUP BY, {n:,} rows fetched): {seconds:.2f} s")
        for label, now in (("first", NOW), ("steady +15 min", NOW + 900),
                           ("30 days on", NOW + 30 * DAY)):  # fmt: skip
            result = await recompute_rfm(engine, rfm, now=now)
            print(f"recompute, {label}: {result.seconds:.2f} s — {result.summary()}")
        seconds, _ = await floor(engine, NOW + 30 * DAY)
        print(f"floor again: {seconds:.2f} s")
        await ingest_cost(engine, customers, ingest, seed)
    finally:
        await engine.dispose()


async def _admin(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--ingest", type=int, default=20_000, help="calls of the ingest phase")
    parser.add_argument("--postgres", metavar="URL", help="an admin URL: bench PostgreSQL too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("== SQLite")
        await measure(f"sqlite+aiosqlite:///{Path(tmp) / 'rfm.db'}", args.customers, args.orders,
                      args.seed, args.ingest)  # fmt: skip
    if args.postgres:
        from sqlalchemy.engine import make_url

        name = f"leadbot_bench_{uuid.uuid4().hex[:8]}"
        await _admin(args.postgres, f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            print("== PostgreSQL")
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            await measure(url, args.customers, args.orders, args.seed, args.ingest)
        finally:
            await _admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
