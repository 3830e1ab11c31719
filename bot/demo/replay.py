"""``leadbot demo``: replay the sample stream through the real pipeline, on a simulated
clock, into a fresh SQLite database, and print the alerts it sends and the top leads.

``--db FILE`` never replaces a file the demo did not make (see :mod:`bot.demo.target`); progress
goes to stderr, the alerts and the summary to stdout."""

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
from bot.demo.target import RefusedTarget, check_target, mark_demo, remove_demo
from bot.ingest.inbound import parse_body, to_unix
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
    force: bool = False,
    err: TextIO | None = None,
) -> int:
    """Exit status 2, with the file untouched, when ``db_path`` may not be replaced."""
    out = out or sys.stdout
    err = err or sys.stderr
    if db_path:
        try:
            replaced = check_target(Path(db_path), force=force)
        except RefusedTarget as refused:
            err.write(f"leadbot: {refused}\n")
            return 2
        if replaced is not None:
            err.write(f"leadbot: replacing the demo database {db_path}: "
                      f"its {replaced.describe()} are lost\n")  # fmt: skip
            remove_demo(Path(db_path))
    config = config or load_config(None)
    calls = sample_stream(seed=seed, leads=leads)
    with tempfile.TemporaryDirectory(prefix="leadbot-demo-") as tmp:
        path = Path(db_path) if db_path else Path(tmp) / "demo.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await mark_demo(engine)
            await upgrade(engine)
            started = time.perf_counter()
            alerts = await _replay(engine, config, calls, out, Progress(err, len(calls)))
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


class Progress:
    """A line on stderr every tenth of the calls: a 2,000-lead demo takes about a minute."""

    def __init__(self, err: TextIO, total: int) -> None:
        self.err = err
        self.total = total
        self.step = max(1, -(-total // 10))
        self.started = time.perf_counter()

    async def report(self, done: int, engine: AsyncEngine, alerts: int) -> None:
        if done % self.step and done != self.total:
            return
        async with session_factory(engine)() as session:
            leads = (await stats(session))["leads"]
        self.err.write(
            f"demo: {done}/{self.total} calls replayed ({100 * done // self.total} %), "
            f"{leads} leads, {alerts} alerts, {time.perf_counter() - self.started:.1f} s\n"
        )
        self.err.flush()


async def _replay(
    engine: AsyncEngine,
    config: LeadbotConfig,
    calls: list[dict[str, Any]],
    out: TextIO,
    progress: Progress,
) -> int:
    """Each call goes through the real parser and pipeline at its own time; the outbox is
    drained after every call so alerts print in the order they happen."""
    clock = SimulatedClock(0.0)
    dispatcher = Dispatcher(engine, ConsoleTransport(out), clock=clock)
    alerts = 0
    async with Pipeline(engine, config) as pipeline:
        for done, call in enumerate(calls, start=1):
            # Received when it happened: the replay's clock runs ahead to each call's time
            # (the parser would clamp a time far after its receipt).
            clock.now = max(clock.now, to_unix(call["timestamp"]))
            events = parse_body(orjson.dumps(call), now=clock.now)
            await pipeline.ingest(events, now=clock.now)
            alerts += await dispatcher.run_once()
            await progress.report(done, engine, alerts)
    return alerts
