"""Where ``leadbot demo --db FILE`` may write: a new file, or a demo database it made itself.

The demo marks its databases with SQLite's ``PRAGMA application_id`` (:data:`DEMO_APP_ID`), a
header field the bot's migrations never set, that survives copies, ``VACUUM`` and upgrades. Any
other existing file — the bot's own database above all — is refused and left byte for byte as
it was: it is only ever opened read-only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

DEMO_APP_ID = 0x4C624474  # "LbDt": the demo's mark in the SQLite header (offset 68)
SQLITE_MAGIC = b"SQLite format 3\x00"


class RefusedTarget(Exception):
    """The file exists and is not a demo database ``--force`` may replace."""


@dataclass(frozen=True)
class Existing:
    """A demo database about to be replaced, and what it holds."""

    leads: int
    events: int

    def describe(self) -> str:
        return f"{_plural(self.leads, 'lead')} and {_plural(self.events, 'event')}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_target(path: Path, *, force: bool) -> Existing | None:
    """None when ``path`` is free; the demo database ``--force`` replaces; else RefusedTarget."""
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file():
        raise RefusedTarget(f"{path} exists and is not a regular file: refusing to replace it")
    with path.open("rb") as file:
        if file.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise RefusedTarget(
                f"{path} is not a leadbot database (not SQLite at all): refusing to replace it"
            )
    app_id, counts = _read(path)
    if app_id != DEMO_APP_ID:
        if counts is None:
            raise RefusedTarget(
                f"{path} is a SQLite database but not a leadbot database: refusing to replace it"
            )
        raise RefusedTarget(
            f"{path} holds {counts.describe()} and was not made by `leadbot demo`: "
            "refusing to replace it (even with --force)"
        )
    found = counts or Existing(0, 0)
    if not force:
        raise RefusedTarget(
            f"{path} is a demo database holding {found.describe()}: "
            "pass --force to replace it, or choose another file"
        )
    return found


def _read(path: Path) -> tuple[int, Existing | None]:
    """The file's application_id and, when it has leadbot's tables, its lead and event counts.

    Read-only: ``mode=ro`` first (sees a live WAL), ``immutable=1`` when the directory or WAL
    cannot be opened for reading that way."""
    uri = path.resolve().as_uri()
    try:
        return _query(f"{uri}?mode=ro")
    except sqlite3.Error:
        try:
            return _query(f"{uri}?mode=ro&immutable=1")
        except sqlite3.Error as err:
            raise RefusedTarget(
                f"{path} cannot be read as a database ({err}): refusing to replace it"
            ) from err


def _query(uri: str) -> tuple[int, Existing | None]:
    conn = sqlite3.connect(uri, uri=True)
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not {"leads", "events"} <= tables:
            return app_id, None
        leads = int(conn.execute("SELECT count(*) FROM leads").fetchone()[0])
        events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        return app_id, Existing(leads, events)
    finally:
        conn.close()


def remove_demo(path: Path) -> None:
    """Delete a demo database with its WAL and shared-memory files, so none is replayed into
    the new one."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def mark_demo(engine: AsyncEngine) -> None:
    """Stamp a freshly created database as the demo's (before anything else is written)."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"PRAGMA application_id = {DEMO_APP_ID}")
