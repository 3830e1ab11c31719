"""How long does ``leadbot model import FILE --activate`` take over 200,000 leads, next to a
raw sqlite3 floor on a copy of the same database, and how much memory does it need?

Run on demand: ``python -m tests.bench.bench_rescore [--leads N] [--runs R] [--base DB]``.

1. **Real leads**: ``leadbot serve`` takes ~60,000 signed webhook events (the ingest bench's
   workload, 100-event batches) from 5,000 userIds; the database it wrote is the base
   (``--base DB`` keeps it there and reuses it on the next run).
2. **Cloned in SQL** to ``--leads`` rows (``INSERT … SELECT`` with a suffixed id).
3. Per run, on two fresh copies of that database:
   - **floor**: plain ``sqlite3`` in one transaction: ``SELECT id, state``, decode every state
     with orjson, ``UPDATE leads SET score = ? WHERE id = ?`` once per lead, commit;
   - **leadbot**: ``leadbot model import FILE --activate`` as a subprocess (FILE: the active
     model with every rule's points + ``--shift``, default 5, and, with ``--refit``, one fit
     rule's condition changed so fit sets change and those states are rewritten), its wall
     time and peak RSS (``os.wait4``'s ``ru_maxrss``, read by a small launcher process: see
     ``LAUNCHER``).
4. Prints each run and the medians: leadbot's time as a ratio to the floor's.

With ``--postgres URL`` (a role that may create databases, e.g. the tests'
``LEADBOT_TEST_POSTGRES_URL``), the same leads are copied into a fresh PostgreSQL database and
measured the same way (the floor with asyncpg), each run on a copy made from it as template.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bot.ingest.signatures import generate_secret
from config.loader import load_config
from config.writer import model_yaml
from scoring.model import Condition, Op
from tests.bench.servers import leadbot_command, start_leadbot
from tests.bench.workload import Workload

REAL_LEADS = 5_000
EVENTS = 60_000
BATCH = 100


async def _post_all(url: str, workload: Workload, batches: int) -> None:
    """Sign and post ``batches`` bodies of ``BATCH`` events, 8 at a time."""
    from bot.ingest.signatures import sign

    bodies = list(workload.bodies(batches, batch=BATCH))
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i, body = queue.get_nowait()
            headers = sign(workload.secret, body, msg_id=f"rb-{i}", timestamp=int(time.time()))
            async with session.post(url, data=body, headers=headers) as answer:
                if answer.status >= 300:
                    raise RuntimeError(f"batch {i}: HTTP {answer.status}: {await answer.text()}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(8)))


def build_base(path: Path, workdir: Path) -> None:
    """5,000 leads the real way: signed webhooks into ``leadbot serve``."""
    secret = generate_secret()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    with start_leadbot(secret, tmp, workdir) as server:
        asyncio.run(_post_all(server.url, Workload(secret, users=REAL_LEADS), EVENTS // BATCH))
        time.sleep(1.0)  # the writer's last group commits
    shutil.move(tmp, path)


def clone(base: Path, target: Path, leads: int) -> int:
    """Copy ``base`` and clone its known leads in SQL up to ``leads`` rows; the count."""
    shutil.copy(base, target)
    db = sqlite3.connect(target, isolation_level=None)
    columns = [r[1] for r in db.execute("PRAGMA table_info(leads)")]
    real = db.execute("SELECT count(*) FROM leads WHERE NOT anonymous").fetchone()[0]
    copies = -(-leads // real) - 1
    rest = ", ".join(c for c in columns if c != "id")
    db.execute("BEGIN")
    for k in range(1, copies + 1):
        db.execute(
            f"INSERT INTO leads (id, {rest}) SELECT id || '~{k}', {rest} FROM leads "
            f"WHERE NOT anonymous AND id NOT LIKE '%~%' LIMIT ?",
            (min(real, leads - real * k),),
        )
    db.execute("COMMIT")
    count = db.execute("SELECT count(*) FROM leads WHERE NOT anonymous").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return int(count)


def floor(path: Path) -> float:
    """Read ``id, state``, decode, write one score each, in one transaction."""
    start = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    rows = db.execute("SELECT id, state FROM leads WHERE NOT anonymous").fetchall()
    scores = [(_score(orjson.loads(state)), lead_id) for lead_id, state in rows]
    db.executemany("UPDATE leads SET score = ? WHERE id = ?", scores)
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - start


def _score(state: dict[str, Any]) -> float:
    """A score as varied as a real one (so the score indexes see real updates)."""
    return 10.0 * len(state["fit"]) + sum(v[0] for v in state["intent"].values())


def model_file(workdir: Path, *, shift: float, refit: bool) -> Path:
    model = load_config().model
    rules = [replace(r, points=r.points + shift) for r in model.rules]
    if refit:  # one fit rule that now matches other leads: every fit set is looked at again
        i = next(i for i, r in enumerate(rules) if r.kind.value == "fit" and r.conditions)
        c = rules[i].conditions[0]
        rules[i] = replace(rules[i], conditions=(Condition(c.path, Op.EXISTS, True),))
    path = workdir / "model.yaml"
    path.write_text(model_yaml(replace(model, rules=tuple(rules))))
    return path


# Linux charges a child's ``ru_maxrss`` with the peak of the process it was forked from (the
# larger of the two is kept across exec): started from this bench, which has just held the
# floor's rows (~700 MB at a million leads), leadbot would be charged for them. So a small
# launcher starts it, times it and reads its peak.
LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(f'\\nlaunched {time.perf_counter() - start} {usage.ru_maxrss} {status}', flush=True)\n"
)


def leadbot(database: Path | str, model: Path) -> tuple[float, float, str]:
    """``leadbot model import FILE --activate`` on a SQLite file or a database URL:
    (seconds, peak RSS MB, its last line of output)."""
    url = database if isinstance(database, str) else f"sqlite+aiosqlite:///{database}"
    env = os.environ | {"DATABASE_URL": url}
    command = [*leadbot_command(), "model", "import", str(model), "--activate"]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True,
    )  # fmt: skip
    *said, last = [line for line in done.stdout.decode().splitlines() if line.strip()]
    _, took, peak_kb, status = last.split()
    if status != "0":
        raise RuntimeError(f"leadbot model import failed ({status}):\n" + "\n".join(said))
    return float(took), int(peak_kb) / 1024, said[-1]


def _pg(url: str, database: str | None = None) -> str:
    """An asyncpg DSN from a SQLAlchemy URL, on ``database`` when given."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg(url))
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


async def seed_postgres(url: str, seeded: Path, name: str) -> None:
    """A migrated PostgreSQL database ``name`` holding the SQLite file's leads."""
    import asyncpg

    from storage.engine import create_engine
    from storage.migrate import upgrade

    await _admin(url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    engine = create_engine(_pg(url, name).replace("postgresql:", "postgresql+asyncpg:", 1))
    await upgrade(engine)
    await engine.dispose()
    db = sqlite3.connect(seeded)
    cursor = db.execute("SELECT * FROM leads")
    columns = [d[0] for d in cursor.description]
    times = {c for c in columns if c.endswith("_at") or c.endswith("_until")}

    def cell(column: str, value: Any) -> Any:
        if value is None or column not in times:
            return bool(value) if column == "anonymous" else value
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    conn = await asyncpg.connect(_pg(url, name))
    try:
        while rows := cursor.fetchmany(20_000):
            records = [tuple(cell(c, v) for c, v in zip(columns, r, strict=True)) for r in rows]
            await conn.copy_records_to_table("leads", records=records, columns=columns)
        await conn.execute("ANALYZE leads")
    finally:
        await conn.close()
    db.close()


async def floor_postgres(dsn: str) -> float:
    """The floor on PostgreSQL: read ``id, state``, decode, one score each, one transaction."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        async with conn.transaction():
            rows = await conn.fetch("SELECT id, state::text FROM leads WHERE NOT anonymous")
            scores = [(_score(orjson.loads(r[1])), r[0]) for r in rows]
            await conn.executemany("UPDATE leads SET score = $1 WHERE id = $2", scores)
        return time.perf_counter() - start
    finally:
        await conn.close()


def bench_postgres(url: str, seeded: Path, model: Path, runs: int) -> None:
    template = f"leadbot_bench_rescore_{os.getpid()}"
    asyncio.run(seed_postgres(url, seeded, template))
    floors, times, rss = [], [], []
    try:
        for run in range(runs):
            for copy in ("floor", "run"):
                name = f"{template}_{copy}"
                asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}"',
                                   f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))  # fmt: skip
            floors.append(asyncio.run(floor_postgres(_pg(url, f"{template}_floor"))))
            target = _pg(url, f"{template}_run").replace("postgresql:", "postgresql+asyncpg:", 1)
            took, peak, said = leadbot(target, model)
            times.append(took)
            rss.append(peak)
            sys.stdout.write(f"postgres run {run + 1}: floor {floors[-1]:.2f} s, leadbot "
                             f"{took:.2f} s ({took / floors[-1]:.2f}x), peak RSS {peak:.0f} MB"
                             f" — {said}\n")  # fmt: skip
    finally:
        drops = [f'DROP DATABASE IF EXISTS "{template}{s}"' for s in ("", "_floor", "_run")]
        asyncio.run(_admin(url, *drops))
    f, t = statistics.median(floors), statistics.median(times)
    sys.stdout.write(f"PostgreSQL: floor {f:.2f} s, leadbot {t:.2f} s = {t / f:.2f}x the floor; "
                     f"peak RSS {max(rss):.0f} MB\n")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", type=Path, help="the 5,000-lead database (built if absent)")
    parser.add_argument("--shift", type=float, default=5.0, help="points added to every rule")
    parser.add_argument("--refit", action="store_true", help="change a fit rule too")
    parser.add_argument("--postgres", metavar="URL", help="measure on PostgreSQL as well")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = args.base or work / "base.db"
        if not base.exists():
            build_base(base, work)
        seeded = work / "seeded.db"
        n = clone(base, seeded, args.leads)
        model = model_file(work, shift=args.shift, refit=args.refit)
        floors, times, rss = [], [], []
        for run in range(args.runs):
            shutil.copy(seeded, work / "floor.db")
            floors.append(floor(work / "floor.db"))
            shutil.copy(seeded, work / "run.db")
            took, peak, said = leadbot(work / "run.db", model)
            times.append(took)
            rss.append(peak)
            sys.stdout.write(
                f"run {run + 1}: floor {floors[-1]:.2f} s, leadbot {took:.2f} s "
                f"({took / floors[-1]:.2f}x), peak RSS {peak:.0f} MB — {said}\n"
            )
        f, t = statistics.median(floors), statistics.median(times)
        sys.stdout.write(
            f"{n:,} leads: floor {f:.2f} s, leadbot model import --activate {t:.2f} s "
            f"= {t / f:.2f}x the floor, {n / t:,.0f} leads/s; peak RSS {max(rss):.0f} MB\n"
        )
        if args.postgres:
            bench_postgres(args.postgres, seeded, model, args.runs)


if __name__ == "__main__":
    main()
