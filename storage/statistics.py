"""Planner statistics (PostgreSQL): refreshed after a bulk load, and read for ``leadbot
doctor`` (``table_statistics``, ``stale``).

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
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.engine import is_sqlite

# What the ingest pipeline writes, backfills and order imports included.
INGEST_TABLES = ("events", "identities", "leads", "score_history", "orders", "customers")


# Rows a load must have written for its command to run ANALYZE itself. ANALYZE reads a
# sample of every table (30,000 rows each by default): 0.2 s for a table of 3 million rows,
# 0.8 s from a cold cache (measured), for each of the six. Not worth it after a few hundred
# rows; autovacuum looks after small loads within a minute.
LOAD_ROWS = 10_000


async def refresh_statistics(
    engine: AsyncEngine, written: int, tables: Sequence[str] = INGEST_TABLES
) -> bool:
    """ANALYZE ``tables`` on PostgreSQL after a load that wrote ``written`` rows, when that
    is at least ``LOAD_ROWS``; whether it ran (never on SQLite)."""
    if is_sqlite(engine) or written < LOAD_ROWS:
        return False
    async with engine.connect() as conn:
        await conn.execute(text(f"ANALYZE {', '.join(tables)}"))
        await conn.commit()
    return True


# A table's statistics are far behind its data from this many rows, when it has more than
# twice the rows its planner counts (autovacuum re-counts at a tenth more). Rows updated in
# place do not count: a hot table rewritten all day keeps its size, and its plans hold.
STALE_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class TableStatistics:
    """One table's size against the size its planner works with."""

    name: str
    rows: int  # live rows now (the statistics system's count)
    planned: int | None  # rows the planner counts (pg_class.reltuples); None: never counted
    autovacuum: bool  # the server's setting and the table's own


async def table_statistics(
    conn: AsyncConnection, tables: Sequence[str] = INGEST_TABLES
) -> list[TableStatistics]:
    """Per ingest table (PostgreSQL): live rows, the rows its planner counts, and whether
    autovacuum looks after it. Read-only."""
    on = (await conn.execute(text("SELECT current_setting('autovacuum')"))).scalar_one() == "on"
    rows = await conn.execute(
        text(
            "SELECT s.relname, s.n_live_tup, c.reltuples, coalesce(c.reloptions, '{}') "
            "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = current_schema() AND s.relname = ANY(:names)"
        ),
        {"names": list(tables)},
    )
    return [
        TableStatistics(
            name,
            int(live),
            None if planned < 0 else int(planned),  # -1: never vacuumed nor analyzed
            autovacuum=on and "autovacuum_enabled=false" not in options,
        )
        for name, live, planned, options in rows
    ]


def stale(table: TableStatistics) -> bool:
    """Whether the planner's picture of ``table`` is far from its size: statements planned
    with it may scan the table whole (see the module)."""
    if table.rows < STALE_ROWS:
        return False
    return table.planned is None or table.rows > 2 * table.planned
