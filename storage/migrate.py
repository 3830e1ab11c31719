"""Schema migrations from inside the application: no ``alembic.ini`` needed.

``upgrade`` runs Alembic on a connection the caller's engine already holds (the cookbook's
shared-connection recipe), so it works from a running event loop — ``leadbot db upgrade``
and ``serve`` both call it.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")

# Any constant works; it only has to be the same for every replica of the bot.
_PG_LOCK_KEY = 0x1EAD_B07


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, optionally bound to a
    connection that ``env.py`` will use instead of opening its own."""
    cfg = Config()
    # ConfigParser interpolates '%': a path containing one must be escaped.
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def _do_upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together take turns; the lock ends with the transaction.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the latest by default), in one transaction.

    Running it again on an up-to-date database does nothing, and costs one read: every
    command calls this before its first query, and Alembic's own check (loading the
    scripts, locking out other replicas) took ~9 ms of a 30 ms look-up.
    """
    if revision == "head" and await _at_head(engine):
        return
    async with engine.begin() as conn:
        await conn.run_sync(_do_upgrade, revision)


async def _at_head(engine: AsyncEngine) -> bool:
    """Whether the database is at this leadbot's newest revision (False when it has no
    version table yet, or any other revision: then Alembic decides, under the lock)."""
    async with engine.connect() as conn:
        try:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except DBAPIError:  # no such table: a database never migrated
            return False
    return [row[0] for row in found] == [head_revision()]


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this version of leadbot (the scripts are read once
    per process: they do not change while it runs)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head
