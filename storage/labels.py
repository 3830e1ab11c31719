"""Labels for learning: feedback rows whose outcome is a label, with the features the lead
had when it was judged. Synchronous functions on a ``Connection`` in the caller's
transaction (the refit and the A/B report run off the event loop, ``storage.offloop``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from storage.tables import Feedback

FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]


class Label(NamedTuple):
    lead_id: str
    outcome: str
    at: datetime
    features: dict[str, Any]
    source: str = "rep"  # "rep", or the CRM it came from: "crm:hubspot", "crm:salesforce"


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
    query = select(columns.lead_id, columns.outcome, columns.at, columns.features, columns.source)
    query = query.where(FEEDBACK.c.outcome.in_(list(outcomes)))
    if since is not None:
        query = query.where(FEEDBACK.c.at >= since)
    if until is not None:
        query = query.where(FEEDBACK.c.at <= until)
    rows = conn.execute(query.order_by(FEEDBACK.c.at, FEEDBACK.c.id))
    return [
        Label(lead, outcome, at, features or {}, source or "rep")
        for lead, outcome, at, features, source in rows
    ]


def count_labels(conn: Connection, *, outcomes: Sequence[str]) -> int:
    """Feedback rows with one of ``outcomes``."""
    query = select(func.count()).select_from(FEEDBACK)
    return int(conn.execute(query.where(FEEDBACK.c.outcome.in_(list(outcomes)))).scalar_one())
