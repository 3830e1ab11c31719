"""A database outage for tests: a migrated SQLite file whose directory is taken away (nothing
can connect, as when a database server is unreachable) and put back; or a PostgreSQL
database that stops taking connections and drops the ones it has (``cut_postgres``).

The engine has no pool, so every connection opens the file again, as a server's reconnects
would. (A failed connect leaves aiosqlite closing its thread; ``storage.engine`` waits for
it, since a thread finishing after the loop had closed raised in the next test, seen in CI.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from storage.engine import create_engine
from storage.migrate import upgrade

# What a rep is told when their command or click meets a database outage (Slack and Teams).
OUTAGE_REPLY = (
    "Sorry, that did not work: the database is unreachable right now; try again in a minute. "
    "Nothing was changed."
)


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


@asynccontextmanager
async def movable_database(root: Path) -> AsyncIterator[MovableDatabase]:
    """A migrated database in ``root``, present at the start."""
    db = MovableDatabase(root)
    try:
        await upgrade(db.engine)
        yield db
    finally:
        await db.engine.dispose()


async def cut_postgres(url: str, *, allow: bool) -> None:
    """Stop (or allow again) every connection to ``url``'s database, as an outage would:
    pooled connections are terminated too, so the next use of each fails."""
    name = make_url(url).database
    statements = [f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}']
    if not allow:
        statements.append(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()
