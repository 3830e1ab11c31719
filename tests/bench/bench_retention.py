"""What pruning raw event payloads saves, and what it costs: database size per million
events before and after, the prune's time next to a one-statement floor, and the longest
write lock it holds.

Run on demand: ``python -m tests.bench.bench_retention [--events N] [--runs R]
[--postgres URL]``.

1. **Events**: ``--events`` (1,000,000 by default) realistic Segment calls (the ingest
   bench's workload: identify with B2B traits, track, page, each with its context) inserted
   through ``storage.ingest.insert_new_events`` into a migrated SQLite file, oldest first:
   99 % received evenly between 400 and 184 days ago, 1 % a day ago. So a 180-day prune
   empties 99 % of the payloads, and the size after is nearly that of pruned rows alone.
2. **Size before**: the file after ``VACUUM``, in bytes per event and MB per million.
3. Per run, on a fresh copy of that file:
   - **floor**: raw sqlite3, ``UPDATE events SET payload = '{}' WHERE received_at < ?`` in one
     transaction (the least a prune must write; it holds the write lock throughout);
   - **leadbot**: the retention job's own loop (``bot.jobs.retention.prune_payloads``: a
     bisection, then 5,000 events per transaction), its wall time and its longest batch,
     then a second run with nothing to do;
   - beside each, a probe writer (a one-row write transaction every 10 ms, as the ingest
     writer would) records its longest wait: what the prune costs ingest.
4. **Size after**: the pruned copy after ``VACUUM``.
5. With ``--postgres URL`` (an admin URL such as LEADBOT_TEST_POSTGRES_URL), the same once on
   a fresh database: ``pg_total_relation_size('events')`` before, after the prune and after
   ``VACUUM FULL``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.retention import prune_payloads
from storage import offloop
from storage.engine import create_engine
from storage.ingest import insert_new_events
from storage.migrate import upgrade
from storage.retention import PAYLOAD_BATCH
from tests.bench.workload import Workload

DAY = 86_400.0
CHUNK = 5_000
KEEP_DAYS = 180.0


def _rows(count: int, now: float, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """``count`` event rows in chunks, oldest first (ids follow arrival, as in production)."""
    workload = Workload("bench", seed=seed)
    recent = count // 100
    span = (216 * DAY) / max(1, count - recent)
    chunk: list[tuple[Any, ...]] = []
    for i in range(count):
        got = now - 400 * DAY + i * span if i < count - recent else now - DAY
        call = workload.call(got)
        name = call.get("event") or call.get("name")
        chunk.append((call["messageId"], call["userId"], call["type"], name, got, got, call))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _fill(engine: AsyncEngine, count: int, now: float, seed: int) -> float:
    await upgrade(engine)
    started = time.perf_counter()
    async with offloop.Worker(engine) as worker:
        for chunk in _rows(count, now, seed):
            await worker.write(lambda c, rows=chunk: insert_new_events(c, rows=rows))
    return time.perf_counter() - started


def _vacuumed_size(path: Path) -> int:
    """The file's size after VACUUM (in WAL mode the rewrite lands in the file only once
    the WAL is checkpointed)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path.stat().st_size


def _floor(path: Path, before: datetime) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "UPDATE events SET payload = '{}' WHERE received_at < ?",
        (before.strftime("%Y-%m-%d %H:%M:%S.%f"),),
    )
    db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


class _Probe:
    """A writer beside the prune, as the ingest writer would be: a one-row write
    transaction every 10 ms on its own connection; how long the longest one waited."""

    def __init__(self, path: Path) -> None:
        self.path, self.waits, self._stop = path, [0.0], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=600)
        n = 0
        while not self._stop.is_set():
            started = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO handled_requests (key, at) VALUES (?, '2026-01-01 00:00:00')",
                       (f"probe-{n}",))  # fmt: skip
            db.execute("COMMIT")
            self.waits.append(time.perf_counter() - started)
            n += 1
            time.sleep(0.01)
        db.close()

    @property
    def longest_ms(self) -> float:
        return max(self.waits) * 1000


class _Timed(offloop.Worker):
    """The job's worker, timing each write transaction (a batch: the write lock held)."""

    longest = 0.0
    batches = 0

    async def write(self, body: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().write(body, *args)
        finally:
            self.longest = max(self.longest, time.perf_counter() - started)
            self.batches += 1


async def _leadbot(
    url: str, before: datetime, batch: int = PAYLOAD_BATCH
) -> tuple[float, float, int, int, float]:
    """(seconds, longest batch, batches, pruned, seconds of a second run) of the job's loop."""
    engine = create_engine(url)
    try:
        async with _Timed(engine) as worker:
            started = time.perf_counter()
            pruned = await prune_payloads(worker, before, batch=batch)
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            again = await prune_payloads(worker, before)
            idle = time.perf_counter() - started
            assert again == 0, f"a second run pruned {again}"
            return elapsed, worker.longest, worker.batches, pruned, idle
    finally:
        await engine.dispose()


def _mb_per_million(size: int, events: int) -> str:
    return f"{size / events:.0f} B/event ({size / events:.0f} MB per million events)"


async def _sqlite(args: argparse.Namespace, work: Path) -> None:
    now = time.time()
    before = datetime.fromtimestamp(now - KEEP_DAYS * DAY, UTC)
    base = work / "base.db"
    engine = create_engine(f"sqlite+aiosqlite:///{base}")
    try:
        filled = await _fill(engine, args.events, now, args.seed)
    finally:
        await engine.dispose()
    size_before = _vacuumed_size(base)
    print(f"inserted {args.events:,} events in {filled:.1f} s ({args.events / filled:,.0f}/s)")
    print(f"SQLite size before: {_mb_per_million(size_before, args.events)}")
    floors, runs, longest, stalls = [], [], [], []
    size_after = 0
    for run in range(args.runs):
        floor_db, job_db = work / f"floor{run}.db", work / f"job{run}.db"
        shutil.copy(base, floor_db)
        shutil.copy(base, job_db)
        with _Probe(floor_db) as floor_probe:
            floors.append(_floor(floor_db, before))
        with _Probe(job_db) as probe:
            elapsed, worst, batches, pruned, idle = await _leadbot(
                f"sqlite+aiosqlite:///{job_db}", before, args.batch
            )
        stalls.append(probe.longest_ms)
        runs.append(elapsed)
        longest.append(worst)
        print(
            f"run {run + 1}: floor {floors[-1]:.2f} s; leadbot {elapsed:.2f} s "
            f"({elapsed / floors[-1]:.2f}x) for {pruned:,} payloads in {batches} batches, "
            f"longest batch {worst * 1000:.0f} ms; second run {idle * 1000:.0f} ms; a writer "
            f"beside it waited at most {floor_probe.longest_ms:.0f} ms (floor), "
            f"{probe.longest_ms:.0f} ms (leadbot)"
        )
        size_after = _vacuumed_size(job_db)
        floor_db.unlink()
        job_db.unlink()
    floor, job = statistics.median(floors), statistics.median(runs)
    print(f"median: floor {floor:.2f} s, leadbot {job:.2f} s = {job / floor:.2f}x the floor; "
          f"longest batch {statistics.median(longest) * 1000:.0f} ms, longest wait of a writer "
          f"beside it {statistics.median(stalls):.0f} ms")  # fmt: skip
    print(f"SQLite size after:  {_mb_per_million(size_after, args.events)} "
          f"({size_after / size_before:.0%} of before)")  # fmt: skip


async def _postgres(args: argparse.Namespace) -> None:
    admin_url = args.postgres
    name = f"bench_retention_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    now = time.time()
    before = datetime.fromtimestamp(now - KEEP_DAYS * DAY, UTC)

    def size(conn: Connection) -> int:
        return int(conn.execute(text("SELECT pg_total_relation_size('events')")).scalar_one())

    try:
        filled = await _fill(engine, args.events, now, args.seed)
        full = await offloop.read(engine, size)
        print(f"PostgreSQL: inserted in {filled:.1f} s; events table (with TOAST and indexes) "
              f"{_mb_per_million(full, args.events)}")  # fmt: skip
        elapsed, worst, batches, pruned, _ = await _leadbot(url, before, args.batch)
        print(f"PostgreSQL prune: {elapsed:.2f} s for {pruned:,} payloads in {batches} "
              f"batches, longest batch {worst * 1000:.0f} ms")  # fmt: skip
        dead = await offloop.read(engine, size)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM FULL events"))
        after = await offloop.read(engine, size)
        print(f"PostgreSQL after prune {_mb_per_million(dead, args.events)} (before VACUUM); "
              f"after VACUUM FULL {_mb_per_million(after, args.events)} "
              f"({after / full:.0%} of before)")  # fmt: skip
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=PAYLOAD_BATCH, help="events per commit")
    parser.add_argument("--postgres", help="an admin PostgreSQL URL: measure there once too")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        if not args.skip_sqlite:
            asyncio.run(_sqlite(args, Path(tmp)))
    if args.postgres:
        asyncio.run(_postgres(args))


if __name__ == "__main__":
    main()
