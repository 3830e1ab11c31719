"""How long does activating a model version take with 100,000 leads on SQLite?

Run on demand: ``python -m tests.bench.bench_rescore [leads]``. Lead rows with realistic
states (traits, a few intent counts, activity times) are written directly, then
``bot.models.versions.activate`` rescores them all in one transaction. The floor beside it is the
same number of rows merely read back (``SELECT id, state``) in the same run.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.models.versions import activate, ensure_active
from config.loader import load_config
from config.writer import model_yaml
from storage import models as repo
from storage.engine import create_engine
from storage.ingest import upsert_leads
from storage.migrate import upgrade
from tests.bot.models.test_versions import NOW, _row, _state

MODEL = load_config().model


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade(engine)
        rng = random.Random(1)
        rows = [_row(f"lead-{i}", _state(rng, MODEL), MODEL) for i in range(n)]
        bumped = replace(MODEL, rules=tuple(replace(r, points=r.points + 5) for r in MODEL.rules))

        def seed(conn: Connection) -> int:
            upsert_leads(conn, rows=rows)
            ensure_active(conn, config_model=MODEL, now=NOW)
            return repo.add_version(
                conn, yaml=model_yaml(bumped), status=repo.Status.PROPOSED,
                created_by="bench", created_at=datetime.fromtimestamp(NOW, UTC),
            )  # fmt: skip

        async with engine.begin() as conn:
            vid = await conn.run_sync(seed)
        start = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execute(text("SELECT id, state FROM leads"))
        floor = time.perf_counter() - start
        start = time.perf_counter()
        done = await activate(engine=engine, version_id=vid, by="bench", now=NOW)
        took = time.perf_counter() - start
        await engine.dispose()
    sys.stdout.write(
        f"rescore {done.leads:,} leads on SQLite: {took:.2f} s, {done.leads / took:,.0f} leads/s "
        f"({done.history:,} history rows); floor (read id, state): {floor:.2f} s\n"
    )


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
