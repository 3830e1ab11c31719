"""CRM links and outcomes: which CRM record is a lead, which leads' scores the CRM still
lacks, and outcomes stored as labels once.

Synchronous functions on a ``Connection``, in the caller's transaction: the ingest pipeline
marks leads dirty inside its own (bot/ingest/pipeline.py); async callers use
``conn.run_sync``. Times are unix seconds in and out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.tables import CrmCursor, CrmLink, Feedback, Identity

LINKS = CrmLink.__table__  # type: ignore[attr-defined]
CURSORS = CrmCursor.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
IDENTITIES = Identity.__table__  # type: ignore[attr-defined]
CHUNK = 500  # keys per IN list: well under SQLite's 32,766 parameters


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# -- links: a lead's record, and its unsent score ------------------------------------------


def mark_dirty(
    conn: Connection, *, crms: Sequence[str], lead_ids: Sequence[str], at: float
) -> None:
    """The CRMs lack these leads' latest scores since ``at``: make them due now."""
    if not crms or not lead_ids:
        return
    rows = [
        {"lead_id": lead, "crm": crm, "dirty_at": _at(at), "next_at": None, "attempts": 0}
        for lead in sorted(set(lead_ids))
        for crm in crms
    ]
    statement = _insert(conn, LINKS)
    statement = statement.on_conflict_do_update(
        index_elements=["lead_id", "crm"],
        set_={"dirty_at": statement.excluded.dirty_at, "next_at": None, "attempts": 0},
    )
    for chunk in _chunks(rows):
        conn.execute(statement, list(chunk))


def touch_linked(conn: Connection, *, lead_ids: Sequence[str], at: float) -> None:
    """These leads changed outside the ingest (a rescore, the decay sweep): due again for
    every CRM they are linked to. A lead not linked yet is left alone: the ingest links a
    lead on its first change once a CRM is connected."""
    for chunk in _chunks(sorted(set(lead_ids))):
        conn.execute(
            update(LINKS)
            .where(LINKS.c.lead_id.in_(chunk))
            .values(dirty_at=_at(at), next_at=None, attempts=0)
        )


@dataclass(frozen=True, slots=True)
class DueLink:
    lead_id: str
    record_id: str | None
    dirty_at: float
    attempts: int


def claim_due(
    conn: Connection, *, crm: str, now: float, limit: int, lease_until: float
) -> list[DueLink]:
    """``due_links``, leased to the caller until ``lease_until``: another replica skips
    them (PostgreSQL: rows another transaction is claiming are skipped, not waited for), and
    a crash frees them when the lease ends."""
    query = _due(crm, now).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = [
        DueLink(lead, record, _ts(dirty) or 0.0, attempts)
        for lead, record, dirty, attempts in conn.execute(query)
    ]
    for chunk in _chunks([d.lead_id for d in due]):
        conn.execute(
            update(LINKS)
            .where(LINKS.c.crm == crm, LINKS.c.lead_id.in_(chunk))
            .values(next_at=_at(lease_until))
        )
    return due


def _due(crm: str, now: float) -> Any:
    return (
        select(LINKS.c.lead_id, LINKS.c.record_id, LINKS.c.dirty_at, LINKS.c.attempts)
        .where(LINKS.c.crm == crm, LINKS.c.dirty_at.is_not(None))
        .where(or_(LINKS.c.next_at.is_(None), LINKS.c.next_at <= _at(now)))
        .order_by(LINKS.c.dirty_at, LINKS.c.lead_id)
    )


def due_links(conn: Connection, *, crm: str, now: float, limit: int) -> list[DueLink]:
    """Leads whose score ``crm`` lacks and whose next try is due, oldest change first."""
    query = _due(crm, now).limit(limit)
    return [
        DueLink(lead, record, _ts(dirty) or 0.0, attempts)
        for lead, record, dirty, attempts in conn.execute(query)
    ]


def count_due(conn: Connection, *, crm: str) -> int:
    """Leads whose latest score ``crm`` does not have yet (due or backing off)."""
    query = select(func.count()).where(LINKS.c.crm == crm, LINKS.c.dirty_at.is_not(None))
    return int(conn.execute(query).scalar_one())


def mark_written(
    conn: Connection,
    *,
    crm: str,
    written: Mapping[str, tuple[str, str | None]],
    read_at: float,
    now: float,
) -> None:
    """The scores of ``written`` (lead id → record id, record URL) are in the CRM as they
    were at ``read_at``: in step, unless the lead changed again since."""
    for lead_id, (record_id, url) in written.items():
        where = and_(LINKS.c.lead_id == lead_id, LINKS.c.crm == crm)
        values: dict[str, Any] = {"record_id": record_id, "synced_at": _at(now), "attempts": 0,
                                  "last_error": None, "next_at": None}  # fmt: skip
        if url is not None:
            values["record_url"] = url[:512]
        conn.execute(update(LINKS).where(where).values(**values))
        conn.execute(
            update(LINKS).where(where, LINKS.c.dirty_at <= _at(read_at)).values(dirty_at=None)
        )


def mark_failed(
    conn: Connection, *, crm: str, lead_ids: Sequence[str], error: str, retry_at: float
) -> None:
    """A write of these leads failed: try again from ``retry_at``; they stay dirty."""
    for chunk in _chunks(sorted(set(lead_ids))):
        conn.execute(
            update(LINKS)
            .where(LINKS.c.crm == crm, LINKS.c.lead_id.in_(chunk))
            .values(attempts=LINKS.c.attempts + 1, last_error=error[:500], next_at=_at(retry_at))
        )


def link_records(
    conn: Connection, *, crm: str, links: Mapping[str, tuple[str, str | None]]
) -> None:
    """Lead id → (record id, URL) found by an import or a pull; the dirty state is kept.
    A record already linked to another lead is moved to this one (the CRM's id is unique)."""
    for lead_id, (record_id, url) in links.items():
        conn.execute(
            update(LINKS)
            .where(LINKS.c.crm == crm, LINKS.c.record_id == record_id, LINKS.c.lead_id != lead_id)
            .values(record_id=None)
        )
        statement = _insert(conn, LINKS).values(
            lead_id=lead_id, crm=crm, record_id=record_id, record_url=url, attempts=0
        )
        update_set: dict[str, Any] = {"record_id": record_id}
        if url is not None:
            update_set["record_url"] = url
        conn.execute(
            statement.on_conflict_do_update(index_elements=["lead_id", "crm"], set_=update_set)
        )


def leads_of_records(conn: Connection, *, crm: str, record_ids: Sequence[str]) -> dict[str, str]:
    """Record id → lead id, for the records already linked."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(record_ids))):
        query = select(LINKS.c.record_id, LINKS.c.lead_id).where(
            LINKS.c.crm == crm, LINKS.c.record_id.in_(chunk)
        )
        found.update({record: lead for record, lead in conn.execute(query)})
    return found


def leads_of_emails(conn: Connection, *, emails: Sequence[str]) -> dict[str, str]:
    """Lower-cased e-mail → lead id, by the identities the pipeline keeps."""
    keys = sorted({f"email:{e.strip().lower()}" for e in emails if e})
    found: dict[str, str] = {}
    for chunk in _chunks(keys):
        query = select(IDENTITIES.c.key, IDENTITIES.c.lead_id).where(IDENTITIES.c.key.in_(chunk))
        found.update({key.removeprefix("email:"): lead for key, lead in conn.execute(query)})
    return found


def record_links(conn: Connection, *, lead_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Lead id → {crm: record URL} for the leads whose record is known."""
    found: dict[str, dict[str, str]] = {}
    for chunk in _chunks(sorted(set(lead_ids))):
        query = select(LINKS.c.lead_id, LINKS.c.crm, LINKS.c.record_url).where(
            LINKS.c.lead_id.in_(chunk), LINKS.c.record_url.is_not(None)
        )
        for lead, crm, url in conn.execute(query):
            found.setdefault(lead, {})[crm] = url
    return found


# -- outcomes as labels ---------------------------------------------------------------------


def insert_outcomes(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> int:
    """Feedback rows (``lead_id``, ``outcome``, ``reason``, ``by``, ``at`` in unix seconds,
    ``features``, ``source``, ``ref``); a (source, ref) stored before is skipped. Returns
    how many were new."""
    added = 0
    for row in rows:
        values = {**row, "at": _at(float(row["at"]))}
        statement = _insert(conn, FEEDBACK).values(**values)
        statement = statement.on_conflict_do_nothing(index_elements=["source", "ref"])
        added += conn.execute(statement).rowcount or 0
    return added


# -- pull cursors ---------------------------------------------------------------------------


def cursor(conn: Connection, *, crm: str, kind: str) -> float | None:
    query = select(CURSORS.c.since).where(CURSORS.c.crm == crm, CURSORS.c.kind == kind)
    return _ts(conn.execute(query).scalar_one_or_none())


def set_cursor(conn: Connection, *, crm: str, kind: str, since: float, now: float) -> None:
    statement = _insert(conn, CURSORS).values(
        crm=crm, kind=kind, since=_at(since), updated_at=_at(now)
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["crm", "kind"],
            set_={"since": statement.excluded.since, "updated_at": statement.excluded.updated_at},
        )
    )
