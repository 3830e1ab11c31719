"""Look-ups, rankings, counts and digests on a large database, beside driver-level floors.

Run on demand: ``python -m tests.bench.bench_scale [--leads N] [--events M] [--postgres URL]``
(defaults: 1,000,000 leads, 10,000,000 events, SQLite in a temp dir). See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.leads import show_lead, show_stats, show_top
from bot.chat.commands import run_command
from bot.chat.messages import Actor
from bot.digest.content import build_digest
from bot.digest.data import Period, Scope
from bot.jobs.decay import decay_sweep
from bot.jobs.retention import count_events
from config.loader import LeadbotConfig, load_config
from config.settings import load_settings
from storage import offloop
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bench.scale_data import email_of, lead_id, populate

ACTOR = Actor("slack", "U0BENCH", "bench")
TARGETS = {"leadbot lead": 0.1, "/lead score": 0.1, "leadbot top": 0.5, "leadbot stats": 0.5,
           "/lead top": 0.5, "weekly digest": 5.0}  # fmt: skip
FLOORS = {
    "pk": "SELECT * FROM leads WHERE id = :id",
    "top": "SELECT id, score FROM leads WHERE anonymous = false ORDER BY score DESC LIMIT 10",
    "bands": "SELECT band, COUNT(*) FROM leads GROUP BY band",
}


def _q(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            await call()
        times.append(time.perf_counter() - start)
    return times


def _keys(rng: random.Random, leads: int, n: int) -> list[str]:
    """Half ids, half e-mails, of random leads (anonymous ones included, as reps ask)."""
    picks = [rng.randrange(leads) for _ in range(n)]
    return [lead_id(i) if k % 2 else email_of(i) for k, i in enumerate(picks)]


async def _floors(engine: AsyncEngine, keys: list[str], repeat: int) -> dict[str, list[float]]:
    async with engine.connect() as conn:

        async def pk() -> None:
            (await conn.execute(text(FLOORS["pk"]), {"id": keys.pop()})).all()

        async def run(name: str) -> None:
            (await conn.execute(text(FLOORS[name]))).all()

        return {
            "pk": await _timed(pk, len(keys)),
            "top": await _timed(lambda: run("top"), repeat),
            "bands": await _timed(lambda: run("bands"), repeat),
        }


async def measure(
    engine: AsyncEngine, url: str, config: LeadbotConfig, leads: int, *, lookups: int, repeat: int
) -> dict[str, list[float]]:
    settings = load_settings().model_copy(update={"database_url": url})
    now, rng = time.time(), random.Random(3)
    out = {
        f"floor {k}": v
        for k, v in (await _floors(engine, _keys(rng, leads, lookups), repeat)).items()
    }
    keys = _keys(rng, leads, lookups)
    model = config.model

    async def chat(words: str) -> None:
        await run_command(words, actor=ACTOR, engine=engine, model=model, now=now, config=config)

    async def lead() -> None:
        assert await show_lead(settings, config, keys.pop(), as_json=True, now=now) == 0

    out["leadbot lead"] = await _timed(lead, lookups)
    keys = _keys(rng, leads, lookups)
    out["/lead score"] = await _timed(lambda: chat(f"score {keys.pop()}"), lookups)
    top = lambda: show_top(settings, config, 10, band=None, as_json=True, now=now)  # noqa: E731
    out["leadbot top"] = await _timed(top, repeat)
    out["leadbot stats"] = await _timed(
        lambda: show_stats(settings, config, as_json=True, now=now), repeat
    )
    out["/lead top"] = await _timed(lambda: chat("top 10"), repeat)
    week = Period.last("week", now)

    async def digest() -> None:
        await build_digest(engine, config=config, period=week, scope=Scope.everyone(), now=now)

    out["weekly digest"] = await _timed(digest, max(1, repeat // 2))
    return out


async def db_size(engine: AsyncEngine, path: Path | None) -> int:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    async with engine.connect() as conn:
        return int(
            (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
        )


@contextlib.asynccontextmanager
async def database(
    postgres: str | None, keep: Path | None = None
) -> AsyncIterator[tuple[str, Path | None]]:
    """A fresh SQLite file in a temp dir (or ``keep``), or a fresh database on the PostgreSQL
    server."""
    if keep is not None:
        yield f"sqlite+aiosqlite:///{keep}", keep  # resolved by main()
        return
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scale.db"
            yield f"sqlite+aiosqlite:///{path}", path
        return
    name = "leadbot_bench_scale"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield postgres.rsplit("/", 1)[0] + f"/{name}", None
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.dispose()


def _rss_mb() -> tuple[float, float]:
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(
    figures: dict[str, list[float]], *, leads: int, events: int, size: int, kind: str
) -> str:
    pk, top, bands = (statistics.median(figures[f"floor {k}"]) for k in ("pk", "top", "bands"))
    floor_of = {"leadbot lead": pk, "/lead score": pk, "leadbot top": top, "/lead top": top,
                "leadbot stats": bands, "weekly digest": bands}  # fmt: skip
    head = f"{'':16}{'p50 ms':>10}{'p99 ms':>10}{'floor p50':>14}{'ratio':>9}   target"
    lines = [f"leadbot scale bench — {kind}, {leads:,} leads, {events:,} events", head]
    for name in ("floor pk", "floor top", "floor bands"):
        t = figures[name]
        lines.append(f"{name:16}{_q(t, 0.5) * 1e3:10.2f}{_q(t, 0.99) * 1e3:10.2f}")
    for name, target in TARGETS.items():
        t = figures[name]
        p50, p99 = _q(t, 0.5), _q(t, 0.99)
        verdict = "ok" if p99 < target else "ABOVE"
        lines.append(
            f"{name:16}{p50 * 1e3:10.1f}{p99 * 1e3:10.1f}{floor_of[name] * 1e3:14.2f}"
            f"{p50 / floor_of[name]:9.0f}x  p99 < {target * 1e3:,.0f} ms: {verdict}"
        )  # fmt: skip
    current, peak = _rss_mb()
    per_event = f", {size / events:,.0f} bytes per event (leads included)" if events else ""
    lines.append(
        f"RSS {current:,.0f} MB now, {peak:,.0f} MB peak (this process, data generation included)"
    )
    lines.append(f"database {size / 2**20:,.0f} MB{per_event}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    config = load_config()
    reuse = args.db is not None and args.db.exists()
    async with database(args.postgres, args.db) as (url, path):
        engine = create_engine(url)
        try:
            await upgrade(engine)
            start = time.perf_counter()
            if not reuse:
                now = time.time()
                await populate(
                    engine, leads=args.leads, events=args.events, model=config.model, now=now
                )
            built = time.perf_counter() - start
            if path is None:  # PostgreSQL: what autovacuum would have done by then (since
                # version 13 it vacuums tables that only grow too): statistics, and the
                # visibility map that lets counts read an index alone
                async with engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.execute(text("VACUUM ANALYZE"))
            start = time.perf_counter()  # serve sweeps every few minutes; stats reads its work
            swept = await decay_sweep(engine, config=config, model=config.model, now=time.time())
            sweep = time.perf_counter() - start
            start = time.perf_counter()  # the hourly retention job moves the events tally
            async with offloop.Worker(engine) as worker:
                tallied = await count_events(worker)
            tally = time.perf_counter() - start
            figures = await measure(
                engine, url, config, args.leads, lookups=args.lookups, repeat=args.repeat
            )
            size = await db_size(engine, path)
        finally:
            await engine.dispose()
    kind = "SQLite" if path is not None else "PostgreSQL"
    sys.stdout.write(
        f"built in {built:.0f} s; decay sweep {sweep:.1f} s ({swept.checked:,} leads); "
        f"events tally {tally:.1f} s ({tallied:,} events)\n"
    )
    sys.stdout.write(
        report(figures, leads=args.leads, events=args.events, size=size, kind=kind) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_scale")
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--postgres", metavar="URL", help="a PostgreSQL server URL (a database is created)"
    )
    parser.add_argument(
        "--db", type=lambda name: Path(name).resolve(), metavar="FILE",
        help="SQLite: build the database there and keep it; an existing one is reused as is",
    )  # fmt: skip
    parser.add_argument("--lookups", type=int, default=200, help="look-ups timed per kind")
    parser.add_argument("--repeat", type=int, default=5, help="runs of top, stats, digest")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
