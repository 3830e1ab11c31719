"""The ingest writer's WAL is checkpointed by a thread of its own: the log is copied back
and reused while the writer keeps committing, and nothing committed is lost. A commit never
cuts the log file (a truncation of hundreds of MB stalled every request behind it); the
thread cuts it once the writer is idle."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from bot.ingest.inbound import parse_body
from bot.ingest.pipeline import Pipeline
from config.loader import load_config
from storage.checkpoints import WAL_SIZE_LIMIT, WalCheckpointer
from storage.engine import WRITER_CACHE_KB, create_engine, sqlite_writer_engine
from storage.migrate import upgrade
from tests.bot.conftest import track


def writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # as the ingest writer's connection
    conn.execute("PRAGMA journal_size_limit=-1")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def commit_rows(conn: sqlite3.Connection, start: int, n: int) -> None:
    for i in range(start, start + n, 50):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(j, "x" * 2000) for j in range(i, i + 50)])
        conn.execute("COMMIT")


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_log_is_reused_while_the_writer_commits(tmp_path: Path) -> None:
    alone, checked = tmp_path / "alone.db", tmp_path / "checked.db"
    unchecked = writer(alone)  # kept open: closing the last connection checkpoints
    commit_rows(unchecked, 0, 20_000)  # nobody checkpoints: the log only grows
    conn = writer(checked)
    checkpoints = WalCheckpointer(str(checked), every=0.02).start()
    try:
        for start in range(0, 20_000, 2_000):
            commit_rows(conn, start, 2_000)
            time.sleep(0.1)  # a checkpoint runs between bursts, as between groups
    finally:
        checkpoints.stop()
    assert checkpoints.rounds > 0
    assert wal_bytes(checked) < wal_bytes(alone) / 4
    conn.close()
    unchecked.close()
    # Every committed row is there, read by a fresh connection.
    assert sqlite3.connect(checked).execute("SELECT count(*) FROM t").fetchone() == (20_000,)


def test_a_missing_directory_only_logs(tmp_path: Path) -> None:
    checkpoints = WalCheckpointer(str(tmp_path / "no" / "such.db"), every=0.01).start()
    checkpoints.stop()
    assert checkpoints.rounds == 0


def test_failing_rounds_are_one_line_a_minute_and_the_recovery_one_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """200 rounds on a connection that cannot checkpoint (closed: as a disk gone away
    leaves it) log one warning, and the first round that works says so."""
    path = tmp_path / "db.sqlite"
    good = writer(path)
    gone = sqlite3.connect(path)
    gone.close()
    checkpoints = WalCheckpointer(str(path))
    with caplog.at_level(logging.WARNING, logger="storage.checkpoints"):
        for _ in range(200):
            checkpoints.checkpoint(gone)
        assert checkpoints.failures == 200
        checkpoints.checkpoint(good)
    assert checkpoints.failures == 0
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2
    assert said[0].startswith("WAL checkpoint failed (Cannot operate on a closed database.)")
    assert said[1] == "WAL checkpoints work again (after 200 failed round(s))"
    good.close()


def test_an_idle_writers_log_is_cut_back_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    conn = writer(path)
    checkpoints = WalCheckpointer(str(path), every=0.02, limit=1_000_000).start()
    try:
        commit_rows(conn, 0, 2_000)  # ~4 MB of log, over the 1 MB limit
        deadline = time.monotonic() + 10
        while checkpoints.cuts == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert checkpoints.cuts >= 1
        assert wal_bytes(path) == 0
        commit_rows(conn, 2_000, 100)  # the writer goes on after the cut
    finally:
        checkpoints.stop()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (2_100,)
    conn.close()


def test_a_log_under_the_limit_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    conn = writer(path)
    commit_rows(conn, 0, 500)
    checkpoints = WalCheckpointer(str(path), every=0.02).start()  # 64 MB
    try:
        time.sleep(0.3)  # many idle rounds
    finally:
        checkpoints.stop()
    assert checkpoints.cuts == 0
    assert wal_bytes(path) > 0
    conn.close()


async def test_the_writers_commit_after_a_restart_writes_over_the_log_never_cuts_it(
    tmp_path: Path,
) -> None:
    """Past ``WAL_SIZE_LIMIT`` of log, fully copied back: the next commit restarts the log
    from its start and the file keeps its size (SQLite's ``journal_size_limit`` would cut
    it right there, in the commit)."""
    path = tmp_path / "writer.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sync = sqlite_writer_engine(engine, own_checkpoints=True)
    assert sync is not None
    try:
        with sync.connect() as conn:
            with conn.begin():
                conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
            for i in range(0, 36_000, 2_000):  # ~75 MB of log
                with conn.begin():
                    rows = [{"id": j, "v": b"x" * 2000} for j in range(i, i + 2_000)]
                    conn.execute(text("INSERT INTO t VALUES (:id, :v)"), rows)
            grown = wal_bytes(path)
            assert grown > WAL_SIZE_LIMIT
            other = sqlite3.connect(path)
            busy, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert (busy, frames) == (0, copied)
            other.close()
            with conn.begin():
                conn.execute(text("INSERT INTO t VALUES (-1, x'00')"))
            assert wal_bytes(path) == grown
    finally:
        sync.dispose()
        await engine.dispose()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (36_001,)


def test_a_log_over_the_hard_limit_is_copied_back_and_starts_over(tmp_path: Path) -> None:
    """A writer that never pauses leaves no checkpoint round the moment to copy all of the
    log, so it only grew (8.7 GB over a backfill). A round measures the log in use; once
    that is over the hard limit, ``bound`` on the writer's connection copies it back and the
    next commit writes the log from its start: the file stops growing, every row kept."""
    sizes = {}
    for bounded in (False, True):
        path = tmp_path / f"bounded-{bounded}.db"
        conn = writer(path)
        commit_rows(conn, 0, 4_000)  # ~8 MB of log, nothing copied back yet
        checkpoints = WalCheckpointer(str(path), hard_limit=4_000_000)  # no thread: by hand
        before = wal_bytes(path)
        checkpoints.in_log = before  # what the thread's round would have measured
        if bounded:
            assert checkpoints.bound(conn)
            assert checkpoints.restarts == 1
        commit_rows(conn, 4_000, 1_000)  # the writer goes on
        sizes[bounded] = wal_bytes(path) - before
        conn.close()
        assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (5_000,)
    assert sizes[False] > 1_000_000  # the log went on growing
    assert sizes[True] == 0  # written over from its start


def test_a_round_measures_the_log_in_use(tmp_path: Path) -> None:
    path = tmp_path / "measured.db"
    conn = writer(path)
    commit_rows(conn, 0, 1_000)
    checkpoints = WalCheckpointer(str(path), hard_limit=1)
    other = sqlite3.connect(path)
    checkpoints.checkpoint(other)  # one round, as the thread runs them
    assert checkpoints.in_log == wal_bytes(path) - 32  # every frame, less the log's header
    assert checkpoints.bound(conn)  # over a 1-byte limit
    commit_rows(conn, 1_000, 10)
    checkpoints.checkpoint(other)  # the log started over: a few frames in use
    assert 0 < checkpoints.in_log < wal_bytes(path) / 10
    other.close()
    conn.close()


def test_a_reader_in_the_log_holds_the_writers_restart_back_briefly(tmp_path: Path) -> None:
    """A reader on an old snapshot (a digest, ``top`` over many leads) keeps the log from
    restarting. The writer must not wait for it on its 10 s busy timeout, every request
    behind it: it gives up within ``RESTART_WAIT_MS``, keeps its timeout, and restarts the
    log after a later commit, once the reader has gone."""
    path = tmp_path / "read.db"
    conn = writer(path)
    conn.execute("PRAGMA busy_timeout = 10000")
    commit_rows(conn, 0, 500)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot in the log
    commit_rows(conn, 500, 500)
    checkpoints = WalCheckpointer(str(path), hard_limit=1)
    checkpoints.in_log = wal_bytes(path)
    started = time.monotonic()
    assert not checkpoints.bound(conn)
    assert time.monotonic() - started < 2.0  # not the 10 s busy timeout
    assert checkpoints.restarts == 0
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)
    reader.execute("COMMIT")
    assert checkpoints.bound(conn)  # the reader gone: the log starts over
    assert checkpoints.restarts == 1
    reader.close()
    conn.close()


async def test_the_ingest_pipeline_bounds_its_log(tmp_path: Path) -> None:
    """The pipeline's writer calls ``bound`` after its commits (the cap here: any log in
    use), so the log restarts once a checkpoint round has measured it; every event stored."""
    path = tmp_path / "ingest.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    now = time.time()
    calls = [track(f"u{i}", "Pricing Viewed", now - 60, properties={"plan": "x" * 300})
             for i in range(4_000)]  # fmt: skip
    events = [parse_body(orjson.dumps(c), now=now)[0] for c in calls]
    try:
        async with Pipeline(engine, load_config(None), wal_hard_limit=1) as pipeline:
            for i in range(0, len(events), 500):
                await pipeline.ingest(events[i : i + 500], now=now)
                await asyncio.sleep(0.25)  # a checkpoint round (every 0.2 s) measures the log
            assert pipeline._checkpoints is not None
            assert pipeline._checkpoints.restarts >= 1
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one()
    finally:
        await engine.dispose()
    assert stored == len(events)


async def test_the_writer_keeps_statement_journals_and_more_pages_in_memory(tmp_path: Path) -> None:
    """A statement journal past 64 KB went to a new file in /var/tmp, made and unlinked every
    few groups under load; the writer's connection keeps temporary storage in memory. A
    statement rewriting pages its transaction already changed (what spills) still works."""
    path = tmp_path / "writer.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sync = sqlite_writer_engine(engine, own_checkpoints=True)
    assert sync is not None
    try:
        with sync.connect() as conn, conn.begin():
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY
            # and a page cache for the random pages of its indexes (negative: in KiB)
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -WRITER_CACHE_KB
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB UNIQUE)"))
            rows = [{"id": j, "v": b"%d" % j * 300} for j in range(2_000)]
            conn.execute(text("INSERT INTO t VALUES (:id, :v)"), rows)
            conn.execute(text("UPDATE t SET v = v || x'00'"))  # ~1 MB of changed pages
    finally:
        sync.dispose()
        await engine.dispose()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (2_000,)
    # The server's readers keep SQLite's defaults: a large sort may spill to disk.
    assert sqlite3.connect(path).execute("PRAGMA temp_store").fetchone() == (0,)
    assert sqlite3.connect(path).execute("PRAGMA cache_size").fetchone() == (-2000,)
