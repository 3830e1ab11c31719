"""Customer alert actions: what was done about a slipping customer's alert, and whose
alerts a snooze silences. Synchronous functions on a ``Connection`` inside the caller's
transaction (nothing here commits); times in and out are unix seconds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from storage.customer_alert_tables import CustomerAlertAction
from storage.tables import Lead

ACTIONS = CustomerAlertAction.__table__  # type: ignore[attr-defined]


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def record_action(
    conn: Connection,
    *,
    lead_id: str,
    action: str,
    by: str,
    at: float,
    snoozed_until: float | None = None,
) -> None:
    conn.execute(
        insert(ACTIONS).values(
            lead_id=lead_id, action=action, by=by, at=_at(at), snoozed_until=_at(snoozed_until)
        )
    )


def latest_action(conn: Connection, lead_id: str) -> dict[str, Any] | None:
    """The last click on this customer's alerts (its action, by, at, snoozed_until)."""
    row = conn.execute(
        select(ACTIONS.c.action, ACTIONS.c.by, ACTIONS.c.at, ACTIONS.c.snoozed_until)
        .where(ACTIONS.c.lead_id == lead_id)
        .order_by(ACTIONS.c.at.desc(), ACTIONS.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {
        "action": row.action, "by": row.by, "at": _ts(row.at),
        "snoozed_until": _ts(row.snoozed_until),
    }  # fmt: skip


def snoozed(conn: Connection, lead_ids: Iterable[str], *, now: float) -> set[str]:
    """Which of these customers a snooze still silences at ``now``."""
    ids = list(dict.fromkeys(lead_ids))
    if not ids:
        return set()
    query = (
        select(ACTIONS.c.lead_id)
        .where(ACTIONS.c.lead_id.in_(ids))
        .group_by(ACTIONS.c.lead_id)
        .having(func.max(ACTIONS.c.snoozed_until) > _at(now))
    )
    return {row.lead_id for row in conn.execute(query)}


def alert_leads(conn: Connection, lead_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """id, email, name, company and feature state of these leads, by id (for an alert's
    who and its routing on the lead's traits)."""
    leads = Lead.__table__  # type: ignore[attr-defined]
    ids = list(dict.fromkeys(lead_ids))
    if not ids:
        return {}
    query = select(leads.c.id, leads.c.email, leads.c.name, leads.c.company, leads.c.state).where(
        leads.c.id.in_(ids)
    )
    return {row.id: dict(row._mapping) for row in conn.execute(query)}
