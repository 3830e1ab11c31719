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


# A table counts as stale when this many rows changed since its last ANALYZE, and more
# than it had then (autovacuum would have run long before, at a tenth of that).
STALE_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class TableStatistics:
    """What PostgreSQL knows of one table's size against what its planner last saw."""

    name: str
    rows: int  # live rows now (the statistics system's count)
    changed: int  # rows inserted, updated or deleted since the last ANALYZE
    analyzed: bool  # ever, by hand or by autovacuum
    autovacuum: bool  # the server's setting and the table's own


async def table_statistics(
    conn: AsyncConnection, tables: Sequence[str] = INGEST_TABLES
) -> list[TableStatistics]:
    """Per ingest table (PostgreSQL): live rows, rows changed since the last ANALYZE,
    whether it was ever analyzed, and whether autovacuum looks after it. Read-only."""
    on = (await conn.execute(text("SELECT current_setting('autovacuum')"))).scalar_one() == "on"
    rows = await conn.execute(
        text(
            "SELECT s.relname, s.n_live_tup, s.n_mod_since_analyze,"
            " s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL,"
            " coalesce(c.reloptions, '{}') "
            "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = current_schema() AND s.relname = ANY(:names)"
        ),
        {"names": list(tables)},
    )
    return [
        TableStatistics(
            name,
            int(live),
            int(changed),
            bool(analyzed),
            autovacuum=on and "autovacuum_enabled=false" not in options,
        )
        for name, live, changed, analyzed, options in rows
    ]


def stale(table: TableStatistics) -> bool:
    """Whether the planner's picture of ``table`` is far from its size: never analyzed
    though large, or changed by more than its size since (plans made then may scan it)."""
    big = max(STALE_ROWS, table.rows - table.changed)
    return table.changed >= big if table.analyzed else table.rows >= STALE_ROWS
