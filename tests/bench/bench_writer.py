"""How much does the ingest writer cost per event, next to the least a SQLite writer of the same
rows must do, in the same run? The server's HTTP side is ``bench_ingest``'s; this is the other
process, alone: where the profile says the time goes, without a load generator's noise.

Run on demand: ``python -m tests.bench.bench_writer [--events N] [--group G] [--runs R]``.

1. The ingest bench's workload (``tests/bench/workload.py``: ~5 % identify, track and page
   calls from 5,000 userIds), parsed by the real parser once, before anything is timed.
2. **leadbot**: ``Pipeline.ingest_many`` inline (as the writer process runs it) on a fresh
   SQLite file, in groups of ``--group`` events (32: what 32 connections of single events
   make), after a warm-up of 5,000 events.
3. **floor**: plain ``sqlite3`` on another fresh file with the same pragmas, one transaction
   per group: the group's event rows (message id, lead, type, name, times, payload) with
   ``INSERT … ON CONFLICT DO NOTHING``, and one upsert per distinct lead of the group with a
   state blob as large as leadbot's. No identity resolution, no scoring, no history, no alerts.
4. Prints events/s (wall) and CPU µs per event of each, and the ratio; medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from bot.ingest.inbound import InboundEvent, parse_body
from bot.ingest.pipeline import Pipeline
from config.loader import load_config
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bench.workload import Workload

WARMUP = 5_000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the workload signs nothing here


def warmup(group: int) -> int:
    """Events ingested before timing starts: whole groups, about WARMUP."""
    return WARMUP // group * group


def workload(count: int, now: float) -> list[InboundEvent]:
    calls = Workload(SECRET, seed=7)
    return [parse_body(orjson.dumps(calls.call(now)), now=now)[0] for _ in range(count)]


async def leadbot(
    events: list[InboundEvent], group: int, now: float, db: Path
) -> tuple[float, float]:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    try:
        async with Pipeline(engine, load_config(None), inline=True) as pipeline:
            for i in range(0, warmup(group), group):
                await pipeline.ingest_many([[e] for e in events[i : i + group]], now=now)
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(warmup(group), len(events), group):
                await pipeline.ingest_many([[e] for e in events[i : i + group]], now=now)
            return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await engine.dispose()


def floor(
    events: list[InboundEvent], group: int, now: float, db: Path, state: bytes
) -> tuple[float, float]:
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE events (message_id TEXT PRIMARY KEY, lead_id TEXT, type TEXT, "
                 "name TEXT, timestamp REAL, received_at REAL, payload TEXT)")  # fmt: skip
    conn.execute("CREATE TABLE leads (id TEXT PRIMARY KEY, state TEXT, score REAL)")
    wall, cpu = 0.0, 0.0
    for i in range(0, len(events), group):
        if i == warmup(group):
            wall, cpu = time.perf_counter(), time.process_time()
        chunk = events[i : i + group]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(e.message_id, e.user_id, e.type, e.name, e.timestamp, now,
              e.raw) for e in chunk],
        )  # fmt: skip
        leads = sorted({e.user_id for e in chunk if e.user_id})
        conn.executemany(
            "INSERT INTO leads VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "state = excluded.state, score = excluded.score",
            [(lead, state.decode(), 1.0) for lead in leads],
        )
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - wall, time.process_time() - cpu


def typical_state(db: Path) -> bytes:
    """The longest-but-typical stored state of leadbot's run: the median by size."""
    conn = sqlite3.connect(db)
    states = sorted((row[0] for row in conn.execute("SELECT state FROM leads")), key=len)
    conn.close()
    return states[len(states) // 2].encode() if states else b"{}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    now = time.time()
    events = workload(args.events, now)
    measured = args.events - warmup(args.group)
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="leadbot-writer-") as tmp:
            ours = asyncio.run(leadbot(events, args.group, now, Path(tmp) / "leadbot.db"))
            state = typical_state(Path(tmp) / "leadbot.db")
            base = floor(events, args.group, now, Path(tmp) / "floor.db", state)
        rows.append((ours, base))
        print(f"run {run + 1}: leadbot {measured / ours[0]:,.0f} events/s "
              f"({1e6 * ours[1] / measured:.0f} µs CPU/event), floor {measured / base[0]:,.0f}"
              f" events/s ({1e6 * base[1] / measured:.0f} µs CPU/event)")  # fmt: skip
    ours_rate = statistics.median(measured / r[0][0] for r in rows)
    floor_rate = statistics.median(measured / r[1][0] for r in rows)
    ours_cpu = statistics.median(1e6 * r[0][1] / measured for r in rows)
    floor_cpu = statistics.median(1e6 * r[1][1] / measured for r in rows)
    print(f"\nwriter, groups of {args.group} events, {measured:,} events measured, median of "
          f"{args.runs}:\n  leadbot {ours_rate:,.0f} events/s, {ours_cpu:.0f} µs CPU/event\n"
          f"  floor   {floor_rate:,.0f} events/s, {floor_cpu:.0f} µs CPU/event\n"
          f"  ratio   {ours_rate / floor_rate:.2f} (events/s), {ours_cpu / floor_cpu:.1f}× the "
          "floor's CPU per event")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
