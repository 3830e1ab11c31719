"""WAL checkpoints for the SQLite ingest writer, from a thread of their own.

In WAL mode a commit appends pages to the log; a checkpoint copies them back into the
database file and syncs it to disk. SQLite runs one inside whichever commit first finds the
log over 1,000 pages, so the ingest writer — the connection committing most — paid for
nearly all of them: at a few thousand events a second that was a sync every few commits and
a third of the writer's time spent waiting on the disk, with every queued request waiting
behind it. The writer's connection now never checkpoints (``wal_autocheckpoint=0``); this
thread runs a PASSIVE checkpoint a few times a second on its own connection. PASSIVE never
takes the write lock, so commits go on while it syncs; the writer restarts the log once a
checkpoint has copied all of it and writes over the file from its start. The file is cut
back here, never in a commit: once a round finds the whole log copied and nothing written
since the round before (the writer idle), a log file over ``WAL_SIZE_LIMIT`` is truncated
(``wal_checkpoint(TRUNCATE)``, trying once, without waiting for a lock).

Durability is unchanged: with ``synchronous=NORMAL`` a commit is in the log, which survives
a crash of the process at any instant; checkpoints only move it into the main file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger(__name__)

EVERY = 0.2  # seconds between checkpoints
# Past this size the log file is cut back to nothing once the writer is idle; under load it
# keeps its size and is written over from its start.
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes
BUSY_MS = 10_000  # how long a checkpoint waits for a lock (not the truncation: it never waits)


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``every`` seconds until
    ``stop()``; a failure is logged and the next round tries again."""

    def __init__(self, path: str, *, every: float = EVERY, limit: int = WAL_SIZE_LIMIT) -> None:
        self.path = path
        self.every = every
        self.limit = limit  # bytes of log file kept while idle
        self.rounds = 0
        self.cuts = 0  # times the idle log file was truncated
        self._frames = -1  # the log's frames at the last round
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadbot-checkpoints", daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("WAL checkpoints not started (%s): SQLite's own will run", exc)
            return
        try:
            while not self._stop.wait(self.every):
                self.checkpoint(conn)
            self.checkpoint(conn)  # what the last commits left, before the writer closes
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.rounds += 1
            idle = frames == copied == self._frames  # all copied, nothing new since last round
            self._frames = frames
            if idle and frames > 0 and self._log_bytes() > self.limit:
                self._cut(conn)
        except sqlite3.Error as exc:  # a locked or vanished file: try again next round
            log.warning("WAL checkpoint failed (%s); retrying", exc)

    def _log_bytes(self) -> int:
        try:
            return os.path.getsize(f"{self.path}-wal")
        except OSError:
            return 0

    def _cut(self, conn: sqlite3.Connection) -> None:
        """Truncate the log to nothing, if no writer or reader is in the way right now: a
        writer arriving meanwhile waits for the truncation, so it is tried only when idle,
        and never waited for (a busy database: next idle round)."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                self.cuts += 1
                self._frames = 0
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
