"""Set-based writes for the ingest hot path: one statement per table per group of events.

These are synchronous functions on a ``Connection`` inside the caller's transaction; nothing
here commits. The pipeline runs the whole transaction in one go — in a writer thread on
SQLite, through ``Connection.run_sync`` on PostgreSQL — so a group of events costs one
hop off the event loop instead of one per statement. The per-event statements are driver
SQL (``storage.rawsql``); the rare ones (alerts, merges) use SQLAlchemy Core.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, update
from sqlalchemy.engine import Connection

from storage.rawsql import (
    execute_many,
    execute_values,
    marks,
    placeholders,
    query,
    time_encoder,
    time_in,
    time_out,
)
from storage.tables import AlertPost, Event, Feedback, Identity, Lead, OutboxMessage, ScoreChange

LEADS = Lead.__table__  # type: ignore[attr-defined]
IDENTITIES = Identity.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]
HISTORY = ScoreChange.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
ALERT_POSTS = AlertPost.__table__  # type: ignore[attr-defined]

# Keep IN lists and multi-row VALUES well under SQLite's and asyncpg's parameter limits.
CHUNK = 500

# Lead columns the pipeline rewrites on every upsert (everything but the key).
LEAD_UPDATE_COLUMNS = (
    "email", "name", "company", "anonymous", "state", "score", "fit", "intent", "band",
    "grade", "engagement", "probability", "first_seen_at", "last_event_at", "scored_at",
    "alerted_at",
)  # fmt: skip


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


EVENT_COLUMNS = ("message_id", "lead_id", "type", "name", "timestamp", "received_at", "payload")
LEAD_COLUMNS = ("id", *LEAD_UPDATE_COLUMNS)
HISTORY_COLUMNS = ("lead_id", "at", "score", "band", "previous_score", "previous_band", "cause")


@dataclass(frozen=True, slots=True)
class StoredLead:
    """What the pipeline needs of a stored lead (times in unix seconds); the claim, for an
    alert that repeats to say who has the lead."""

    id: str
    state: dict[str, Any]
    score: float
    band: str
    alerted_at: float | None
    claimed_by: str | None = None
    claimed_at: float | None = None
    grade: str | None = None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _in_list(conn: Connection, n: int) -> str:
    return marks(conn, 1, n)


def insert_new_events(conn: Connection, *, rows: Sequence[Sequence[Any]]) -> set[str]:
    """Insert event rows (``EVENT_COLUMNS`` order; times as unix seconds, payload a dict or
    its JSON text), skipping message ids already stored or repeated in ``rows``.

    Returns the message ids actually inserted: the events to count. The unique index
    decides, so two replicas racing on one retry still count it once.
    """
    if not rows:
        return set()
    time = time_encoder(conn)
    values = [
        (m, lead, kind, name, time(at), time(got),
         payload if isinstance(payload, str) else _json(payload))
        for m, lead, kind, name, at, got, payload in rows
    ]  # fmt: skip
    returned = execute_values(
        conn,
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})",
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        values,
        len(EVENT_COLUMNS),
    )
    return {row[0] for row in returned}


def resolve_identities(conn: Connection, *, keys: Iterable[str]) -> dict[str, str]:
    """Map every known identity key (``user:…``, ``email:…``, ``anon:…``) to its lead id."""
    wanted = sorted(set(keys))
    found: dict[str, str] = {}
    for chunk in _chunks(wanted):
        sql = f"SELECT key, lead_id FROM identities WHERE key IN {_in_list(conn, len(chunk))}"
        found.update(dict(query(conn, sql, tuple(chunk))))
    return found


def link_identities(conn: Connection, *, links: Mapping[str, str]) -> None:
    """Record identity key → lead id; a key already linked keeps its lead."""
    if links:
        sql = (
            f"INSERT INTO identities (key, lead_id) VALUES {placeholders(conn, 2)} "
            "ON CONFLICT (key) DO NOTHING"
        )
        execute_many(conn, sql, list(links.items()))


def load_leads(conn: Connection, *, ids: Iterable[str]) -> dict[str, StoredLead]:
    """The stored leads among ``ids``."""
    wanted = sorted(set(ids))
    leads: dict[str, StoredLead] = {}
    for chunk in _chunks(wanted):
        sql = (
            "SELECT id, state, score, band, alerted_at, claimed_by, claimed_at, grade "
            f"FROM leads WHERE id IN {_in_list(conn, len(chunk))}"
        )
        for lid, state, score, band, alerted, by, at, grade in query(conn, sql, tuple(chunk)):
            state = state if isinstance(state, dict) else orjson.loads(state)
            leads[lid] = StoredLead(
                lid, state, score, band, time_out(alerted), by, time_out(at), grade
            )
    return leads


def upsert_leads(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new leads and rewrite existing ones (``LEAD_COLUMNS``; times as unix seconds,
    state a dict) in one executemany."""
    if not rows:
        return
    time = time_encoder(conn)
    values = [
        (
            r["id"], r["email"], r["name"], r["company"], r["anonymous"], _json(r["state"]),
            r["score"], r["fit"], r["intent"], r["band"], r["grade"], r["engagement"],
            r["probability"], time(r["first_seen_at"]), time(r["last_event_at"]),
            time(r["scored_at"]), time(r["alerted_at"]),
        )
        for r in rows
    ]  # fmt: skip
    execute_many(conn, _lead_upsert_sql(conn.dialect.name), values)


# What an event changes on a lead it does not identify: everything but its profile columns
# (e-mail, name, company, anonymous), whose index then stays as it is.
LEAD_SCORE_COLUMNS = LEAD_UPDATE_COLUMNS[4:]


def update_leads(conn: Connection, *, rows: Sequence[Mapping[str, Any]], band: bool = True) -> None:
    """Rewrite existing leads' state, scores and times (``LEAD_SCORE_COLUMNS``), leaving
    their profile columns alone: cheaper than ``upsert_leads`` by an index update and the
    insert attempt a lead. For leads the caller has loaded in this transaction.
    ``band=False``: the rows' bands are the stored ones; the column is left out, since
    SQLite rewrites an index entry for every column an UPDATE sets, changed or not
    (``ix_leads_band``: ~10 µs an event on the ingest writer)."""
    if not rows:
        return
    time = time_encoder(conn)
    values = [
        (
            _json(r["state"]), r["score"], r["fit"], r["intent"], *((r["band"],) if band else ()),
            r["grade"], r["engagement"], r["probability"], time(r["first_seen_at"]),
            time(r["last_event_at"]), time(r["scored_at"]), time(r["alerted_at"]), r["id"],
        )
        for r in rows
    ]  # fmt: skip
    execute_many(conn, _lead_update_sql(conn.dialect.name, band), values)


@functools.cache
def _score_columns(band: bool) -> tuple[str, ...]:
    return tuple(c for c in LEAD_SCORE_COLUMNS if band or c != "band")


@functools.cache
def _lead_update_sql(dialect_name: str, band: bool = True) -> str:
    columns = _score_columns(band)
    n = len(columns)
    postgres = dialect_name == "postgresql"
    marks = [f"${i + 1}" for i in range(n + 1)] if postgres else ["?"] * (n + 1)
    sets = ", ".join(f"{col} = {mark}" for col, mark in zip(columns, marks, strict=False))
    return f"UPDATE leads SET {sets} WHERE id = {marks[-1]}"


@functools.cache
def _lead_upsert_sql(dialect_name: str) -> str:
    n = len(LEAD_COLUMNS)
    postgres = dialect_name == "postgresql"
    params = ", ".join(f"${i + 1}" for i in range(n)) if postgres else ", ".join("?" * n)
    updates = ", ".join(f"{col} = excluded.{col}" for col in LEAD_UPDATE_COLUMNS)
    return (
        f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) VALUES ({params}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def add_history(conn: Connection, *, rows: Sequence[Sequence[Any]]) -> None:
    """Score changes in ``HISTORY_COLUMNS`` order, the time as unix seconds."""
    if rows:
        time = time_encoder(conn)
        values = [(row[0], time(row[1]), *row[2:]) for row in rows]
        sql = (
            f"INSERT INTO score_history ({', '.join(HISTORY_COLUMNS)}) "
            f"VALUES {placeholders(conn, len(HISTORY_COLUMNS))}"
        )
        execute_many(conn, sql, values)


OUTBOX_COLUMNS = ("kind", "lead_id", "destination", "dedupe_key", "payload", "status",
                  "attempts", "available_at", "created_at")  # fmt: skip


def enqueue(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> int:
    """Add outbox rows (``OUTBOX_COLUMNS``; times as unix seconds, payload a dict); a row
    whose ``dedupe_key`` exists is skipped. Returns the rows added."""
    if not rows:
        return 0
    values = [
        tuple(
            time_in(conn, row[col]) if col in ("available_at", "created_at")
            else _json(row[col]) if col == "payload"
            else row[col]
            for col in OUTBOX_COLUMNS
        )
        for row in rows
    ]  # fmt: skip
    added = execute_values(
        conn,
        f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)})",
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        values,
        len(OUTBOX_COLUMNS),
    )
    return len(added)


def absorb_lead(conn: Connection, *, source: str, target: str) -> None:
    """Move everything of lead ``source`` (an anonymous visitor) onto ``target`` and drop it.
    The caller merges the feature states."""
    for table in (IDENTITIES, EVENTS, HISTORY, OUTBOX, FEEDBACK, ALERT_POSTS):
        conn.execute(update(table).where(table.c.lead_id == source).values(lead_id=target))
    conn.execute(delete(LEADS).where(LEADS.c.id == source))
