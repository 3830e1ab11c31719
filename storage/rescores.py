"""The rescore's reads and bulk writes (``bot.models.rescore``): the leads a chunk at a
time, in driver SQL, inside the caller's transaction.

Chunks are pages of a keyset scan (SQLite: ``rowid``, the table's own order, so a page is a
sequential read; PostgreSQL: the primary key), so memory holds one page, never every lead,
and the caller's updates between pages cannot move a row into a page already read (an
update keeps a row's key). The state is read as its stored text on both databases: the
caller decodes it once, and can tell two states apart by their text alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from storage.rawsql import execute_many, is_postgres, placeholders, query

# The columns a rescore may rewrite with ``set_columns``.
COLUMNS = frozenset(
    ("score", "fit", "intent", "band", "grade", "engagement", "probability", "scored_at",
     "state", "alerted_at")
)  # fmt: skip


class RescoreRow(NamedTuple):
    """A lead as a rescore reads it. ``state`` is the stored JSON text; ``alerted_at`` the
    driver's time value (``storage.rawsql.time_out`` reads it)."""

    id: str
    state: str
    score: float
    band: str
    alerted_at: Any
    email: str | None
    name: str | None
    company: str | None
    key: Any  # where the row is: its rowid on SQLite (no index look-up), its id on PostgreSQL


# SQLite's page cache while a rescore writes, in KiB: the score indexes' pages, touched in
# random order by every update, stay in memory instead of being spilled to the WAL and read
# back again (at 200,000 leads: updates a third faster). A bound, so memory stays flat.
REWRITE_CACHE_KIB = 65_536


@contextlib.contextmanager
def roomy_cache(conn: Any) -> Iterator[None]:
    """A larger SQLite page cache for the block, the connection's own again after it (a
    no-op on PostgreSQL, whose buffers are the server's)."""
    if is_postgres(conn):
        yield
        return
    before = query(conn, "PRAGMA cache_size")[0][0]
    query(conn, f"PRAGMA cache_size = -{REWRITE_CACHE_KIB}")
    try:
        yield
    finally:
        query(conn, f"PRAGMA cache_size = {int(before)}")


_SELECT = "SELECT id, {state}, score, band, alerted_at, email, name, company, {key} FROM leads"


def _page_sql(conn: Any, *, first: bool) -> str:
    """One page in key order; after the first, the rows past the last key read."""
    state, key, mark = ("state::text", "id", "$1") if is_postgres(conn) else ("state", "rowid", "?")
    after = "" if first else f" AND {key} > {mark}"
    limit = "$1" if is_postgres(conn) and first else "$2" if is_postgres(conn) else "?"
    select = _SELECT.format(state=state, key=key)
    return f"{select} WHERE NOT anonymous{after} ORDER BY {key} LIMIT {limit}"


def lead_chunks(conn: Any, size: int) -> Iterator[list[RescoreRow]]:
    """Every known (non-anonymous) lead, ``size`` at a time, in key order. Each page is
    read when the previous one has been handed back, so writes in between are fine."""
    page = query(conn, _page_sql(conn, first=True), (size,))
    following = _page_sql(conn, first=False)
    while page:
        yield [RescoreRow(*r) for r in page]
        if len(page) < size:
            return
        page = query(conn, following, (page[-1][-1], size))


def rows_by_id(conn: Any, ids: Sequence[str], *, batch: int = 500) -> list[RescoreRow]:
    """The leads ``ids`` as a rescore reads them, in no particular order (a missing id is
    left out)."""
    state, key = ("state::text", "id") if is_postgres(conn) else ("state", "rowid")
    select = _SELECT.format(state=state, key=key)
    found: list[RescoreRow] = []
    for start in range(0, len(ids), batch):
        part = ids[start : start + batch]
        marks = placeholders(conn, len(part))
        found += [RescoreRow(*r) for r in query(conn, f"{select} WHERE id IN {marks}", part)]
    return found


def leads_to_rescore(conn: Any) -> list[RescoreRow]:
    """Every known (non-anonymous) lead at once (for small tables and tests)."""
    return [row for page in lead_chunks(conn, 10_000) for row in page]


def last_rowid(conn: Any) -> int:
    """The highest rowid of the leads table (SQLite; 0 when empty): how many leads a
    rescore may page through, from the index's last entry alone."""
    return int(query(conn, "SELECT coalesce(max(rowid), 0) FROM leads")[0][0])


def any_crm_link(conn: Any) -> bool:
    """Whether any lead is linked to a CRM (with none, a rescore has no record to touch)."""
    return bool(query(conn, "SELECT 1 FROM crm_links LIMIT 1"))


def set_columns(
    conn: Any, columns: Sequence[str], values: Sequence[Sequence[Any]], *, by_key: bool = False
) -> None:
    """``UPDATE leads SET columns… WHERE id = …`` once per row of ``values`` (the column
    values, then the lead id; with ``by_key``, then the row's ``RescoreRow.key``)."""
    if not values:
        return
    unknown = set(columns) - COLUMNS
    if unknown:
        raise ValueError(f"set_columns: not a rescore column: {sorted(unknown)}")
    marks = placeholders(conn, len(columns) + 1)[1:-1].split(",")
    sets = ", ".join(f"{col} = {mark}" for col, mark in zip(columns, marks, strict=False))
    where = "rowid" if by_key and not is_postgres(conn) else "id"
    execute_many(conn, f"UPDATE leads SET {sets} WHERE {where} = {marks[-1]}", values)
