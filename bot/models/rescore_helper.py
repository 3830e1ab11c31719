"""A second process that works a rescore's points out while the rescore writes (SQLite).

Activating a model over many leads has two halves of about equal cost: working every lead's
points out from its stored state (decoding JSON, matching rules: Python) and writing the new
scores (SQLite). One process does them one after the other; the machine's second core sits
idle. So ``prepare`` starts this helper: a plain ``python -c`` process (like the ingest
writer, it loads numpy, orjson and ``scoring`` only) that reads the leads a page at a time,
in the rescore's own order, on its own read-only connection, and sends each page's points
back as numpy arrays, with the refitted state text of each lead whose fit set changes. The
rescore's transaction then writes page after page, taking each page's points as they come.

Nothing depends on the helper being right on time or alive: points are matched to leads by
``state_key`` of the stored text, so a lead the ingest wrote after the helper read it, a
page the helper has not sent, or a helper that died or never started is worked out in the
rescore's own process, as without a helper.

Frames: an 8-byte length, then a pickle. Parent → child: ``(code_stamp, path, model, now,
chunk)`` (a helper whose code differs from the rescore's says so and stops), then
one ``CREDIT`` byte per page received (the helper runs at most ``AHEAD`` pages ahead).
Child → parent: ``("page", first_rowid, last_rowid, keys, fit, intent, changed, texts)`` per
page (``texts``: the refitted state text of each lead whose fit set changes, else None), then
``("done",)``, or ``("error", text)``.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import scoring
from bot.children import child_argv, recv_exactly
from bot.models import rescore_points
from bot.models.rescore_points import EMPTY, Known, Plan, Worked, work
from scoring.model import Model

log = logging.getLogger(__name__)

LENGTH = struct.Struct("!Q")
ALL_ROWIDS = 2**63 - 1  # ``known_for(-1, ALL_ROWIDS)``: every page, once the helper is through
# Pages the helper may send ahead of the rescore's reads, each answered by a CREDIT byte:
# what waits in the socket stays a few pages, whatever the number of leads.
AHEAD = 3
CREDIT = b"+"
# A page takes the helper a fraction of a second; one that takes longer than this means it
# is stuck (or the machine is swapping), and the rescore goes on without it.
PAGE_SECONDS = 120.0
EXIT_SECONDS = 5.0  # for a helper that has said it is done, or failed, to exit


def code_stamp() -> tuple[tuple[str, int, int], ...]:
    """Which code works points out: the files of ``scoring`` and of the points module,
    each with its size and modification time. A helper started after an upgrade on disk
    (``leadbot serve`` keeps running the code it loaded) would score by other rules than
    the rescore it helps: it sees another stamp and declines."""
    files = sorted(Path(scoring.__file__).parent.glob("*.py"))
    files.append(Path(rescore_points.__file__))
    stamp = []
    for file in files:
        info = file.stat()
        stamp.append((file.name, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


# What this process loaded, taken when it loaded it (not when a helper starts).
LOADED = code_stamp()

# The same pages as ``storage.rescores.lead_chunks`` on SQLite: known leads in rowid order.
PAGE_SQL = "SELECT rowid, state FROM leads WHERE NOT anonymous AND rowid > ? ORDER BY rowid LIMIT ?"


def send_frame(sock: socket.socket, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(LENGTH.pack(len(data)) + data)


def receive_frame(sock: socket.socket) -> Any:
    """The next frame's value; EOFError when the other side is gone."""
    (length,) = LENGTH.unpack(recv_exactly(sock, LENGTH.size))
    return pickle.loads(recv_exactly(sock, length))


class PointsHelper:
    """The rescore's handle on its helper process: pages of points by rowid, as they come."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self._process = process
        self._sock = sock
        self._parts: list[tuple[int, int, Worked]] = []
        self._reached = -1  # the last rowid of the pages received
        self._open = True

    @classmethod
    def start(
        cls,
        path: str,
        model: Model,
        now: float,
        chunk: int,
        *,
        python: str | None = None,
        stamp: tuple[tuple[str, int, int], ...] = LOADED,
    ) -> PointsHelper | None:
        """Start a helper over the SQLite file ``path`` and wait for its first page; None
        (logged) when it cannot start, and the rescore works every lead out itself."""
        parent, child = socket.socketpair()
        try:
            process = subprocess.Popen(
                child_argv(python or sys.executable, __name__, child.fileno()),
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            parent.close()
            log.warning("cannot start the rescore's helper process (%s); rescoring in one", exc)
            return None
        finally:
            child.close()
        helper = cls(process, parent)
        parent.settimeout(PAGE_SECONDS)
        try:
            send_frame(parent, (stamp, path, model, now, chunk))
        except OSError as exc:
            helper._stop(f"it exited at start ({exc})")
            return None
        helper._receive()  # outside the write transaction: the first page, or why not
        return helper

    @property
    def running(self) -> bool:
        return self._open

    def known_for(self, first: int, last: int) -> Known:
        """The points known of the leads with rowids ``first`` to ``last`` (waiting for the
        helper to reach ``last``). Pages are asked for in rowid order: earlier ones are let
        go."""
        while self._open and self._reached < last:
            self._receive()
        self._parts = [p for p in self._parts if p[1] >= first]
        return Known.of([w for start, end, w in self._parts if start <= last and end >= first])

    def close(self) -> None:
        if self._open:
            self._stop(None)

    def _receive(self) -> None:
        try:
            frame = receive_frame(self._sock)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._stop(f"it stopped answering ({type(exc).__name__}: {exc})")
            return
        kind = frame[0] if isinstance(frame, tuple) and frame else None
        if kind == "page" and len(frame) == 8:
            _, first, last, keys, fit, intent, changed, texts = frame
            self._parts.append((first, last, Worked(keys, fit, intent, changed, {}, texts)))
            self._reached = last
            # Room for one more page. A helper that is through (or gone) no longer reads:
            # what it sent before is still read, and its end shows at the next frame.
            with contextlib.suppress(OSError):
                self._sock.sendall(CREDIT)
        elif kind == "done":
            self._stop(None)
        elif kind == "error" and len(frame) == 2:
            self._stop(f"it failed: {frame[1]}")
        else:
            self._stop(f"it sent a frame this process cannot read ({str(frame)[:80]})")

    def _stop(self, problem: str | None) -> None:
        """Done with the process: a problem is logged, and the rest is worked out here."""
        self._open = False
        if problem is not None:
            log.warning(
                "the rescore's helper process stopped: %s; the rescore works the rest out itself",
                problem,
            )
        # A helper still working finds the socket closed at its next page and exits.
        self._sock.close()
        try:
            self._process.wait(timeout=EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def pages(conn: sqlite3.Connection, chunk: int) -> Iterator[list[tuple[int, str]]]:
    """``(rowid, state text)`` of the known leads, a page at a time."""
    after = -1
    while page := conn.execute(PAGE_SQL, (after, chunk)).fetchall():
        yield page
        after = page[-1][0]


def child_entry() -> None:
    """The child's call (``bot.children.child_argv``): the socket's descriptor is the first
    argument."""
    # Ctrl-C reaches the whole process group: the rescore stops and closes the socket,
    # which ends this process quietly at its next page (no traceback of its own).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        stamp, path, model, now, chunk = receive_frame(sock)
        if stamp != LOADED:
            raise RuntimeError("leadbot's scoring code on disk is not the code of the rescore")
        # mode=rw: a file that is not there is an error, not a new empty database.
        conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=rw", uri=True)
        conn.execute("PRAGMA query_only = 1")
        plan = Plan.of(model)
        unanswered = 0
        for page in pages(conn, chunk):
            done = work([state for _, state in page], EMPTY, plan, now, keep=True).with_texts()
            arrays = (done.keys, done.fit, done.intent, np.asarray(done.changed, bool), done.texts)
            if unanswered == AHEAD:
                recv_exactly(sock, len(CREDIT))
                unanswered -= 1
            send_frame(sock, ("page", page[0][0], page[-1][0], *arrays))
            unanswered += 1
        send_frame(sock, ("done",))
    except (BrokenPipeError, ConnectionResetError, EOFError):
        raise SystemExit(0) from None  # the rescore is over, or gone: nobody to tell
    except Exception as exc:
        with contextlib.suppress(OSError):
            send_frame(sock, ("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from exc
