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

A writer that never pauses (a backfill, ingest at full load for minutes) never lets a
checkpoint catch up: the log restarts only when a transaction begins with all of it copied,
so it grew without end (8.7 GB for a million imported events over a 0.8 GB database). So the
writer bounds it: once this thread finds more than ``WAL_HARD_LIMIT`` of log in use, the
writer runs a RESTART checkpoint itself after its next commit (``bound``), copying what this
thread has not and waiting for readers to leave the log, and its next transaction writes
the log from its start again.

Durability is unchanged: with ``synchronous=NORMAL`` a commit is in the log, which survives
a crash of the process at any instant; checkpoints only move it into the main file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

log = logging.getLogger(__name__)

EVERY = 0.2  # seconds between checkpoints
# Past this size the log file is cut back to nothing once the writer is idle; under load it
# keeps its size and is written over from its start.
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes
BUSY_MS = 10_000  # how long a checkpoint waits for a lock (not the truncation: it never waits)
# Past this much log in use, the writer copies it back after its next commit so that it
# restarts (``WalCheckpointer.bound``): the disk the log takes is bounded under any load.
WAL_HARD_LIMIT = 256 * 1024 * 1024  # bytes
RESTART_WAIT_MS = 50  # how long the writer's restart waits for readers to leave the log
# A failing round (the disk is full or gone) is logged at most this often: at five rounds a
# second, a line each would write 18,000 lines an hour.
FAILURE_LOG_SECONDS = 60.0


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``every`` seconds until
    ``stop()``; a failure is logged and the next round tries again."""

    def __init__(
        self,
        path: str,
        *,
        every: float = EVERY,
        limit: int = WAL_SIZE_LIMIT,
        hard_limit: int = WAL_HARD_LIMIT,
    ) -> None:
        self.path = path
        self.every = every
        self.limit = limit  # bytes of log file kept while idle
        self.hard_limit = hard_limit  # bytes of log in use past which the writer copies it back
        self.rounds = 0
        self.cuts = 0  # times the idle log file was truncated
        self.restarts = 0  # times the writer copied the log back itself (``bound``)
        # Bytes of log in use at the last round: the frames since the log last restarted.
        # Not the file's size, which a restarted log keeps while it is written over.
        self.in_log = 0
        self._frame_bytes = 4096 + 24  # page and frame header, read from the file at start
        self._frames = -1  # the log's frames at the last round
        self.failures = 0  # failed rounds since the last one that worked
        self._failure_logged = float("-inf")
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
            self._frame_bytes = conn.execute("PRAGMA page_size").fetchone()[0] + 24
            while not self._stop.wait(self.every):
                self.checkpoint(conn)
            self.checkpoint(conn)  # what the last commits left, before the writer closes
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.rounds += 1
            self.in_log = max(0, frames) * self._frame_bytes
            idle = frames == copied == self._frames  # all copied, nothing new since last round
            self._frames = frames
            if idle and frames > 0 and self._log_bytes() > self.limit:
                self._cut(conn)
        except sqlite3.Error as exc:  # a locked or vanished file: try again next round
            self._failed(exc)
        else:
            if self.failures:
                log.warning("WAL checkpoints work again (after %d failed round(s))", self.failures)
                self.failures, self._failure_logged = 0, float("-inf")

    def _failed(self, exc: sqlite3.Error) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._failure_logged >= FAILURE_LOG_SECONDS:
            self._failure_logged = now
            log.warning("WAL checkpoint failed (%s); retrying every %g s (%d failed round(s) "
                        "so far)", exc, self.every, self.failures)  # fmt: skip

    def bound(self, writer: sqlite3.Connection) -> bool:
        """Called by the writer between its transactions, on its own connection: when the
        log in use (as this thread's last round measured it) is over ``hard_limit``, copy
        the rest of it back and wait for readers to leave it (``wal_checkpoint(RESTART)``),
        so the next transaction writes the log from its start. Whether it did: not when a
        reader stays in the log past ``RESTART_WAIT_MS``, nor on a failure (logged); the
        log then goes on growing, and the call after the next commit tries again."""
        if self.in_log <= self.hard_limit:
            return False
        # RESTART waits on the busy handler for readers to leave the log. A reader on an
        # old snapshot (a digest, ``top`` over a million leads) would hold every request
        # behind the writer for up to its 10 s: wait briefly, and try again after a later
        # commit instead.
        waits = writer.execute("PRAGMA busy_timeout").fetchone()[0]
        writer.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
        try:
            busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.Error as exc:
            log.warning("WAL restart failed (%s); retrying after the next commit", exc)
            return False
        finally:
            writer.execute(f"PRAGMA busy_timeout = {waits}")
        if busy:  # a reader still in the log: copied what it could, the log goes on
            return False
        self.restarts += 1
        self.in_log = 0  # restarts with the next transaction; the next round measures it
        log.debug("WAL over %d bytes: copied back by the writer (%s/%s frames)",
                  self.hard_limit, copied, frames)  # fmt: skip
        return True

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
                self.in_log = 0
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
