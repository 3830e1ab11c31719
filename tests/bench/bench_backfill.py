"""How long does activating a version with a new intent rule spend recounting past events?

Run on demand: ``python -m tests.bench.bench_backfill [--leads 200000] [--events 1000000]
[--postgres URL]``.

Leads and events are written by ``scale_data.populate`` (SQLite in a temporary directory, or
a fresh PostgreSQL database); then ``bot.models.backfill.recount`` runs, in one transaction
as the activation does, for one new rule ("did Pricing Viewed", a track name the default
model does not count; a sixth of the track events) and prints its wall time, the events it
read and the states it rewrote.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bot.models.backfill import recount
from config.loader import load_config
from scoring.model import Rule, RuleKind
from storage import offloop
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bench.scale_data import populate

NOW = 1_780_000_000.0
RULE = Rule("did_pricing_viewed", "did Pricing Viewed", RuleKind.INTENT, 5.0, (), "track",
            "Pricing Viewed", 30.0, 5.0)  # fmt: skip


async def run(url: str, leads: int, events: int) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        await populate(engine, leads=leads, events=events, model=load_config().model, now=NOW)
        count = text("SELECT count(*) FROM events WHERE name = :n")
        async with engine.connect() as conn:
            matching = (await conn.execute(count, {"n": RULE.event_name})).scalar_one()
        started = time.perf_counter()
        rewritten = await offloop.write(engine, lambda conn: recount(conn, [RULE]))
        took = time.perf_counter() - started
        print(f"{leads:,} leads, {events:,} events ({matching:,} matching): recount "
              f"{took:.2f} s, {rewritten:,} states rewritten")  # fmt: skip
    finally:
        await engine.dispose()


async def _postgres(admin_url: str, leads: int, events: int) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"leadbot_backfill_{int(time.time())}"
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        await run(admin_url.rsplit("/", 1)[0] + f"/{name}", leads, events)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE {name}"))
        await admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    if args.postgres:
        asyncio.run(_postgres(args.postgres, args.leads, args.events))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'backfill.db'}"
        asyncio.run(run(url, args.leads, args.events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
