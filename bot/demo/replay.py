"""``leadbot demo``: replay the sample stream through the real pipeline, on a simulated
clock, into a fresh SQLite database, and print the alerts it sends and the top leads."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.leads import lead_summary
from bot.chat.plain import render_top
from bot.demo.sample import sample_stream
from bot.ingest.inbound import parse_body
from bot.ingest.pipeline import Pipeline
from bot.outbox.dispatcher import ConsoleTransport, Dispatcher
from config.loader import LeadbotConfig, load_config
from storage.engine import create_engine, session_factory
from storage.leads import stats, top_leads
from storage.migrate import upgrade


class SimulatedClock:
    """The demo's time: the timestamp of the call being replayed."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def run_demo(
    *,
    seed: int = 7,
    leads: int = 200,
    db_path: str | None = None,
    config: LeadbotConfig | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    config = config or load_config(None)
    calls = sample_stream(seed=seed, leads=leads)
    with tempfile.TemporaryDirectory(prefix="leadbot-demo-") as tmp:
        path = Path(db_path) if db_path else Path(tmp) / "demo.db"
        if path.exists():
            path.unlink()
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
            started = time.perf_counter()
            alerts = await _replay(engine, config, calls, out)
            elapsed = time.perf_counter() - started
            async with session_factory(engine)() as session:
                counts = await stats(session)
                top = [lead_summary(lead) for lead in await top_leads(session, limit=10)]
        finally:
            await engine.dispose()
    bands = counts["bands"]
    out.write(
        f"Replayed {len(calls)} calls ({counts['leads']} leads, "
        f"{counts['anonymous']} still anonymous) in {elapsed:.1f} s: {alerts} alerts. "
        f"Now hot {bands['hot']}, warm {bands['warm']}, cold {bands['cold']}.\n\n"
        f"Top leads:\n{render_top(top)}\n"
    )
    if db_path:
        out.write(f"\nThe demo database is at {path}: try "
                  f"`DATABASE_URL=sqlite:///{path} leadbot lead {top[0]['id']}`\n")  # fmt: skip
    return 0


async def _replay(
    engine: AsyncEngine, config: LeadbotConfig, calls: list[dict[str, Any]], out: TextIO
) -> int:
    """Each call goes through the real parser and pipeline at its own time; the outbox is
    drained after every call so alerts print in the order they happen."""
    clock = SimulatedClock(0.0)
    dispatcher = Dispatcher(engine, ConsoleTransport(out), clock=clock)
    alerts = 0
    async with Pipeline(engine, config) as pipeline:
        for call in calls:
            events = parse_body(orjson.dumps(call), now=clock.now)
            clock.now = max(clock.now, events[0].timestamp)
            await pipeline.ingest(events, now=clock.now)
            alerts += await dispatcher.run_once()
    return alerts
