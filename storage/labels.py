"""Labels for learning: feedback rows whose outcome is a label, with the features the lead
had when it was judged. Synchronous functions on a ``Connection`` in the caller's
transaction (the refit and the A/B report run off the event loop, ``storage.offloop``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from storage.event_properties import attach, event_properties, label_event_properties
from storage.tables import Event, Feedback, Lead

FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
LEADS = Lead.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]
CHUNK = 500  # ids per IN list
MAX_EVENT_NAMES = 32  # per lead, the names seen most recently
COUNTED = ("track", "page", "screen")
# ``type:name`` → [count, first, last] (unix seconds), then its numbers and flags when its
# events carried any (``storage.event_properties``): a lead's events up to a moment.
EventCounts = dict[str, list[Any]]


class Label(NamedTuple):
    lead_id: str
    outcome: str
    at: datetime
    features: dict[str, Any]
    source: str = "rep"  # "rep", or the CRM it came from: "crm:hubspot", "crm:salesforce"
    id: int = 0
    reason: str | None = None  # a disqualification's: "spam", "no budget: until Q3" …


def labels_of(
    conn: Connection,
    *,
    outcomes: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Label]:
    """Feedback rows with one of ``outcomes`` (at or after ``since``, at or before
    ``until``, when given), oldest first."""
    columns = FEEDBACK.c
    query = select(
        columns.lead_id, columns.outcome, columns.at, columns.features, columns.source, columns.id,
        columns.reason,
    )  # fmt: skip
    query = query.where(FEEDBACK.c.outcome.in_(list(outcomes)))
    if since is not None:
        query = query.where(FEEDBACK.c.at >= since)
    if until is not None:
        query = query.where(FEEDBACK.c.at <= until)
    rows = conn.execute(query.order_by(FEEDBACK.c.at, FEEDBACK.c.id))
    return [
        Label(lead, outcome, at, features or {}, source or "rep", fid, reason)
        for lead, outcome, at, features, source, fid, reason in rows
    ]


def count_labels(conn: Connection, *, outcomes: Sequence[str]) -> int:
    """Feedback rows with one of ``outcomes``."""
    query = select(func.count()).select_from(FEEDBACK)
    return int(conn.execute(query.where(FEEDBACK.c.outcome.in_(list(outcomes)))).scalar_one())


def states_of(conn: Connection, *, lead_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored state of each lead in ``lead_ids`` that still exists (what a label from
    before snapshots were stored is read with)."""
    found: dict[str, dict[str, Any]] = {}
    ids = sorted(set(lead_ids))
    for start in range(0, len(ids), CHUNK):
        query = select(LEADS.c.id, LEADS.c.state).where(LEADS.c.id.in_(ids[start : start + CHUNK]))
        found.update({lead_id: state or {} for lead_id, state in conn.execute(query)})
    return found


def event_counts(conn: Connection, *, lead_id: str, until: datetime) -> EventCounts:
    """The lead's track, page and screen events up to ``until`` (event time), counted by
    type and name: what a label stores of them. One indexed query, at labelling time only:
    ingest keeps no per-name counts."""
    E = EVENTS.c
    query = (
        select(E.type, E.name, func.count(), func.min(E.timestamp), func.max(E.timestamp))
        .where(E.lead_id == lead_id, E.timestamp <= until, E.type.in_(COUNTED))
        .group_by(E.type, E.name)
    )
    carried = event_properties(conn, lead_id=lead_id, until=until)
    return attach(_bounded(conn.execute(query)), carried)


def label_event_counts(conn: Connection, *, feedback_ids: Sequence[int]) -> dict[int, EventCounts]:
    """``event_counts`` of the lead of each feedback row, up to the row's time, in one query
    per ``CHUNK`` rows (for labels stored before labels held them)."""
    E, F = EVENTS.c, FEEDBACK.c
    rows: dict[int, list[Any]] = {}
    ids = sorted(set(feedback_ids))
    for start in range(0, len(ids), CHUNK):
        query = (
            select(F.id, E.type, E.name, func.count(), func.min(E.timestamp), func.max(E.timestamp))
            .select_from(FEEDBACK.join(EVENTS, E.lead_id == F.lead_id))
            .where(F.id.in_(ids[start : start + CHUNK]), E.timestamp <= F.at, E.type.in_(COUNTED))
            .group_by(F.id, E.type, E.name)
        )
        for fid, *row in conn.execute(query):
            rows.setdefault(fid, []).append(row)
    carried = label_event_properties(conn, feedback_ids=list(rows))
    return {fid: attach(_bounded(found), carried.get(fid, {})) for fid, found in rows.items()}


def _bounded(rows: Any) -> EventCounts:
    """The ``MAX_EVENT_NAMES`` names seen most recently, as ``type:name`` → counts."""
    found = sorted(rows, key=lambda r: r[4], reverse=True)[:MAX_EVENT_NAMES]
    return {
        f"{kind}:{name or ''}": [int(n), first.timestamp(), last.timestamp()]
        for kind, name, n, first, last in found
    }
