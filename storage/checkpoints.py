"""WAL checkpoints for the SQLite ingest writer, from a thread of their own.

In WAL mode a commit appends pages to the log; a checkpoint copies them back into the
database file and syncs it to disk. SQLite runs one inside whichever commit first finds the
log over 1,000 pages, so the ingest writer — the connection committing most — paid for
nearly all of them: at a few thousand events a second that was a sync every few commits and
a third of the writer's time spent waiting on the disk, with every queued request waiting
behind it. The writer's connection now never checkpoints (``wal_autocheckpoint=0``); this
thread runs a PASSIVE checkpoint a few times a second on its own connection. PASSIVE never
takes the write lock, so commits go on while it syncs; the writer restarts the log once a
checkpoint has copied all of it (and cuts the file back: ``journal_size_limit``).

Durability is unchanged: with ``synchronous=NORMAL`` a commit is in the log, which survives
a crash of the process at any instant; checkpoints only move it into the main file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

EVERY = 0.2  # seconds between checkpoints: the log stays a few MB at full ingest speed


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``every`` seconds until
    ``stop()``; a failure is logged and the next round tries again."""

    def __init__(self, path: str, *, every: float = EVERY) -> None:
        self.path = path
        self.every = every
        self.rounds = 0
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
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
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
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.rounds += 1
        except sqlite3.Error as exc:  # a locked or vanished file: try again next round
            log.warning("WAL checkpoint failed (%s); retrying", exc)
