"""A database outage for tests of background loops: a migrated SQLite file whose directory is
taken away (nothing can connect, as when a database server is unreachable) and put back.

The engine has no pool, so every connection opens the file again, as a server's reconnects
would. On exit the engine is disposed and the threads of its connections are waited for: a
failed connect leaves aiosqlite closing its thread, and a thread that finishes after the
test's loop has closed raises in the next test (seen in CI).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiosqlite.core import _connection_worker_thread
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from storage.engine import create_engine
from storage.migrate import upgrade


class MovableDatabase:
    def __init__(self, root: Path) -> None:
        self.here, self.away = root / "db", root / "away"
        self.here.mkdir()
        self.engine: AsyncEngine = create_engine(
            f"sqlite+aiosqlite:///{self.here / 'leadbot.db'}", poolclass=NullPool
        )

    def take_away(self) -> None:
        self.here.rename(self.away)

    def put_back(self) -> None:
        self.away.rename(self.here)


def _sqlite_threads() -> set[threading.Thread]:
    return {
        t for t in threading.enumerate()
        if getattr(t, "_target", None) is _connection_worker_thread
    }  # fmt: skip


@asynccontextmanager
async def movable_database(root: Path) -> AsyncIterator[MovableDatabase]:
    """A migrated database in ``root``, present at the start."""
    before = _sqlite_threads()
    db = MovableDatabase(root)
    try:
        await upgrade(db.engine)
        yield db
    finally:
        await db.engine.dispose()
        for thread in _sqlite_threads() - before:
            await asyncio.to_thread(thread.join, 5.0)
