"""Set-based writes for the ingest hot path: one statement per table per group of events.

These are synchronous functions on a ``Connection`` inside the caller's transaction; nothing
here commits. The pipeline runs the whole transaction in one go — in a writer thread on
SQLite, through ``Connection.run_sync`` on PostgreSQL — so a group of events costs one
hop off the event loop instead of one per statement. SQLAlchemy Core with executemany
("insertmanyvalues") keeps the per-event cost to a row of parameters, not an ORM object.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Insert

from storage.tables import Event, Identity, Lead, OutboxMessage, ScoreChange

LEADS = Lead.__table__  # type: ignore[attr-defined]
IDENTITIES = Identity.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]
HISTORY = ScoreChange.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]

# Keep IN lists and multi-row VALUES well under SQLite's and asyncpg's parameter limits.
CHUNK = 500

# Lead columns the pipeline rewrites on every upsert (everything but the key and first_seen).
LEAD_UPDATE_COLUMNS = (
    "email", "name", "company", "anonymous", "state", "score", "fit", "intent", "band",
    "grade", "engagement", "probability", "last_event_at", "scored_at", "alerted_at",
)  # fmt: skip


def _insert(conn: Connection, table: Any) -> Insert:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)  # type: ignore[no-any-return]


@functools.cache
def _lead_upsert(dialect_name: str) -> Insert:
    """Built once per dialect: ``excluded`` makes a fresh alias each time it is read."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(LEADS)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["id"],
        set_={col: getattr(stmt.excluded, col) for col in LEAD_UPDATE_COLUMNS},
    )


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def insert_new_events(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert event rows, skipping message ids already stored (or repeated in ``rows``).

    Returns the message ids actually inserted: the events to count. The unique constraint
    decides, so two replicas racing on one retry still count it once.
    """
    if not rows:
        return set()
    stmt = (
        _insert(conn, EVENTS)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(EVENTS.c.message_id)
    )
    result = conn.execute(stmt, list(rows))
    return {row[0] for row in result}


def resolve_identities(conn: Connection, *, keys: Iterable[str]) -> dict[str, str]:
    """Map every known identity key (``user:…``, ``email:…``, ``anon:…``) to its lead id."""
    wanted = sorted(set(keys))
    found: dict[str, str] = {}
    for chunk in _chunks(wanted):
        result = conn.execute(
            select(IDENTITIES.c.key, IDENTITIES.c.lead_id).where(IDENTITIES.c.key.in_(chunk))
        )
        found.update({key: lead_id for key, lead_id in result})
    return found


def link_identities(conn: Connection, *, links: Mapping[str, str]) -> None:
    """Record identity key → lead id; a key already linked keeps its lead."""
    if links:
        stmt = _insert(conn, IDENTITIES).on_conflict_do_nothing(index_elements=["key"])
        conn.execute(stmt, [{"key": k, "lead_id": v} for k, v in links.items()])


def load_leads(conn: Connection, *, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored rows (as dicts) of the given leads that exist."""
    wanted = sorted(set(ids))
    rows: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(wanted):
        result = conn.execute(select(LEADS).where(LEADS.c.id.in_(chunk)))
        for row in result.mappings():
            rows[row["id"]] = dict(row)
    return rows


def upsert_leads(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new leads and rewrite existing ones in one executemany."""
    if not rows:
        return
    conn.execute(_lead_upsert(conn.dialect.name), list(rows))


def add_history(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(HISTORY.insert(), list(rows))


def enqueue(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> int:
    """Add outbox rows; a row whose ``dedupe_key`` exists is skipped. Returns rows added."""
    if not rows:
        return 0
    stmt = (
        _insert(conn, OUTBOX)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OUTBOX.c.id)
    )
    result = conn.execute(stmt, list(rows))
    return len(result.all())


def absorb_lead(conn: Connection, *, source: str, target: str) -> None:
    """Move everything of lead ``source`` (an anonymous visitor) onto ``target`` and drop it.
    The caller merges the feature states."""
    for table in (IDENTITIES, EVENTS, HISTORY, OUTBOX):
        conn.execute(update(table).where(table.c.lead_id == source).values(lead_id=target))
    conn.execute(delete(LEADS).where(LEADS.c.id == source))
