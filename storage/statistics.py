"""Planner statistics after a bulk load (PostgreSQL).

PostgreSQL keeps, per connection, the plan it chose for each prepared statement, and the
asyncpg driver prepares every statement. A plan made while a table was nearly empty (a new
database's first requests) scans the whole table, and stays until the table's statistics
change: ``bench_replicas`` measured one replica at half its speed for as long as that
lasted, each ingest transaction reading ``identities`` whole. Autovacuum's ANALYZE ends it
within a minute or so of the table growing; after loading a whole file, a command does it at
once, so the servers already running re-plan with the new sizes.

SQLite plans a statement when it is prepared, from its indexes alone (leadbot keeps no
``sqlite_stat1``): nothing to do there.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import is_sqlite

# What the ingest pipeline writes, backfills and order imports included.
INGEST_TABLES = ("events", "identities", "leads", "score_history", "orders", "customers")


async def refresh_statistics(engine: AsyncEngine, tables: Sequence[str] = INGEST_TABLES) -> bool:
    """ANALYZE ``tables`` on PostgreSQL; whether it ran (False on SQLite)."""
    if is_sqlite(engine):
        return False
    async with engine.connect() as conn:
        await conn.execute(text(f"ANALYZE {', '.join(tables)}"))
        await conn.commit()
    return True
