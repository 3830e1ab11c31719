"""Schema migrations from inside the application: no ``alembic.ini`` needed.

``upgrade`` runs Alembic on a connection the caller's engine already holds (the cookbook's
shared-connection recipe), so it works from a running event loop — ``leadbot db upgrade``
and ``serve`` both call it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.rawsql import sqlstate

# Alembic is imported only to migrate: a database already at the head is checked with one
# read, and the head is read off the scripts' own lines (Alembic, with Mako and Pygments,
# took ~100 ms of every command's start).
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The two lines of a revision script (storage/migrations/script.py.mako) that chain it.
_REVISION = re.compile(r"^revision: str = ['\"](?P<id>[^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(
    r"^down_revision: str \| None = (?:['\"](?P<id>[^'\"]+)['\"]|None)", re.MULTILINE
)

# Any constant works; it only has to be the same for every replica of the bot.
_PG_LOCK_KEY = 0x1EAD_B07


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, optionally bound to a
    connection that ``env.py`` will use instead of opening its own."""
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolates '%': a path containing one must be escaped.
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def _do_upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

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
    return await _versions(engine) == [head_revision()]


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    found = await _versions(engine)
    if found is not None and len(found) > 1:  # never from leadbot's linear history
        raise RuntimeError(f"the database is at several revisions at once: {sorted(found)}")
    return found[0] if found else None


async def _versions(engine: AsyncEngine) -> list[str] | None:
    """The rows of Alembic's version table; None when it has none (never migrated)."""
    async with engine.connect() as conn:
        try:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except DBAPIError as exc:
            if _no_version_table(exc):  # a database never migrated
                return None
            raise  # a locked or failing database is not an unmigrated one
    return [str(row[0]) for row in found]


def _no_version_table(exc: DBAPIError) -> bool:
    """Whether the read failed only because ``alembic_version`` does not exist: SQLite's
    "no such table", PostgreSQL's undefined_table (42P01)."""
    return sqlstate(exc) == "42P01" or "no such table: alembic_version" in str(exc.orig)


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this version of leadbot (the scripts are read once
    per process: they do not change while it runs)."""
    revisions, downs = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        if (revision := _REVISION.search(source)) is None:
            continue
        revisions.add(revision["id"])
        if (down := _DOWN.search(source)) is not None and down["id"]:
            downs.add(down["id"])
    heads = revisions - downs
    if len(heads) != 1:
        raise RuntimeError(f"expected one newest migration in {MIGRATIONS}, found {sorted(heads)}")
    return heads.pop()
