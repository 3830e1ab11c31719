"""What a lead's events carried in their properties, for a label's snapshot
(``scoring.snapshot``): per ``type:name``, numbers ``{property: [n, min, max]}`` and yes/no
flags ``{property: [times true, times false]}``. Read at labelling time beside the event
counts (``storage.labels``), and for labels stored before snapshots held them.

Reading them means reading the stored calls, so a lead's newest ``MAX_READ`` events are
read (a lead with more is summarised on those: the counts stay exact, the properties are of
the newest events).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from scoring.snapshot import carried_summary
from storage.tables import Event, Feedback

EVENTS = Event.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
COUNTED = ("track", "page", "screen")
MAX_READ = 2_000  # events read per lead
CHUNK = 200  # feedback rows a query
Carried = dict[str, tuple[dict[str, list[float]], dict[str, list[float]]]]


def _properties(payload: Any) -> dict[str, Any]:
    found = payload.get("properties") if isinstance(payload, dict) else None
    return found if isinstance(found, dict) else {}


def event_properties(conn: Connection, *, lead_id: str, until: datetime) -> Carried:
    """The lead's events up to ``until``: their numbers and flags by ``type:name``."""
    E = EVENTS.c
    query = (
        select(E.type, E.name, E.payload)
        .where(E.lead_id == lead_id, E.timestamp <= until, E.type.in_(COUNTED))
        .order_by(E.timestamp.desc(), E.id.desc())
        .limit(MAX_READ)
    )
    return carried_summary((f"{t}:{n or ''}", _properties(p)) for t, n, p in conn.execute(query))


def label_event_properties(conn: Connection, *, feedback_ids: Sequence[int]) -> dict[int, Carried]:
    """``event_properties`` of the lead of each feedback row, up to the row's time."""
    E, F = EVENTS.c, FEEDBACK.c
    rows: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    ids = sorted(set(feedback_ids))
    for start in range(0, len(ids), CHUNK):
        query = (
            select(F.id, E.type, E.name, E.payload)
            .select_from(FEEDBACK.join(EVENTS, E.lead_id == F.lead_id))
            .where(F.id.in_(ids[start : start + CHUNK]), E.timestamp <= F.at, E.type.in_(COUNTED))
            .order_by(F.id, E.timestamp.desc(), E.id.desc())
        )
        for fid, kind, name, payload in conn.execute(query):
            mine = rows.setdefault(fid, [])
            if len(mine) < MAX_READ:
                mine.append((f"{kind}:{name or ''}", _properties(payload)))
    return {fid: carried_summary(found) for fid, found in rows.items()}


def attach(counts: dict[str, list[Any]], carried: Carried) -> dict[str, list[Any]]:
    """``counts`` (``type:name`` → ``[count, first, last]``) with each kept name's numbers
    and flags appended as a fourth and fifth item: the form
    ``scoring.snapshot.lead_snapshot`` reads."""
    for key, value in counts.items():
        if key in carried:
            value.extend(carried[key])
    return counts
