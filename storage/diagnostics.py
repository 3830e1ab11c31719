"""Read-only facts about a database for ``leadbot doctor``: a SQLite file's state, the gap
between the schema and this version's migrations, and the outbox backlog.

Nothing here writes: the engine opened for a check has none of the bot's connection
pragmas (which would switch a SQLite file to WAL and so hide its journal mode), and a
SQLite file that does not exist is reported, never created.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.engine import normalize_url
from storage.ingest import OUTBOX
from storage.migrate import alembic_config


def inspection_engine(url: str) -> AsyncEngine:
    """An engine for a one-off look: no pool, no pragmas."""
    return create_async_engine(normalize_url(url), poolclass=NullPool, hide_parameters=True)


@dataclass(frozen=True, slots=True)
class SqliteFile:
    path: str
    exists: bool
    size: int = 0
    writable: bool = False
    directory_writable: bool = False
    journal_mode: str | None = None


def inspect_sqlite_file(path: str) -> SqliteFile:
    """Whether the file exists, may be written (it and its directory: WAL keeps two files
    beside it), and its journal mode, read through a read-only connection. Blocking."""
    file = Path(path).absolute()
    if not file.is_file():
        return SqliteFile(str(file), exists=False)
    uri = file.as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=2)
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()
    return SqliteFile(
        str(file),
        exists=True,
        size=file.stat().st_size,
        writable=os.access(file, os.W_OK),
        directory_writable=os.access(file.parent, os.W_OK | os.X_OK),
        journal_mode=mode,
    )


@dataclass(frozen=True, slots=True)
class MigrationGap:
    """``pending``: the revisions to apply, oldest first. ``known`` is False when the
    database is at a revision this version of leadbot does not ship (a newer leadbot
    migrated it)."""

    head: str
    current: str | None
    pending: tuple[str, ...]
    known: bool = True


def migration_gap(current: str | None) -> MigrationGap:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("no migrations shipped with this leadbot")
    try:
        newer = list(script.iterate_revisions(head, current or "base"))
    except (CommandError, RevisionError):
        return MigrationGap(head, current, (), known=False)
    return MigrationGap(head, current, tuple(r.revision for r in reversed(newer)))


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    sending: int
    dead: int
    oldest_pending: datetime | None


async def outbox_backlog(conn: AsyncConnection) -> Backlog:
    """Messages waiting, in flight and given up on; when the oldest waiting one was queued."""
    rows = await conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    counts = {str(status): int(n) for status, n in rows}
    oldest = await conn.execute(
        select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending")
    )
    return Backlog(
        pending=counts.get("pending", 0),
        sending=counts.get("sending", 0),
        dead=counts.get("dead", 0),
        oldest_pending=oldest.scalar_one_or_none(),
    )
