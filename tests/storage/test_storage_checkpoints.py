"""The ingest writer's WAL is checkpointed by a thread of its own: the log is copied back
and reused while the writer keeps committing, and nothing committed is lost."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from storage.checkpoints import WalCheckpointer
from storage.engine import WAL_SIZE_LIMIT


def writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # as the ingest writer's connection
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
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
