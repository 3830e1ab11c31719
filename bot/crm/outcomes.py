"""CRM outcomes stored as labels: the lead each record is, the features it had, once.

An import, HubSpot's webhook and a scheduled pull may all report the same closed deal: the
outcome's ``ref`` (unique per source) stores it once. A record matches a lead by the record
id linked before, else by e-mail; the link is then kept, so the alert's button and later
score writes find the record. A record no lead matches is counted, not stored: leadbot
learns from leads it scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import features_at
from bot.crm.base import SOURCE_PREFIX, CrmOutcome
from scoring import LeadState, Model
from scoring.bands import Thresholds
from storage import crm as repo
from storage.labels import event_counts
from storage.tables import Lead

LEADS = Lead.__table__  # type: ignore[attr-defined]


@dataclass
class StoredOutcomes:
    """What became of a set of outcomes: new labels, ones stored before, and records
    that are no lead's (by CRM record id)."""

    stored: int = 0
    duplicates: int = 0
    unmatched: list[str] = field(default_factory=list)


async def store_outcomes(
    engine: AsyncEngine,
    outcomes: Sequence[CrmOutcome],
    *,
    model: Model,
    thresholds: Thresholds | None = None,
) -> StoredOutcomes:
    """Store ``outcomes`` as feedback rows in one transaction; see the module docstring."""
    if not outcomes:
        return StoredOutcomes()
    async with engine.begin() as conn:
        return await conn.run_sync(_store, list(outcomes), model, thresholds)


def _store(
    conn: Connection, outcomes: list[CrmOutcome], model: Model, thresholds: Thresholds | None
) -> StoredOutcomes:
    matched = _match(conn, outcomes)
    states = _states(conn, sorted(set(matched.values())))
    result = StoredOutcomes()
    rows = []
    for outcome in outcomes:
        lead_id = matched.get(_key(outcome))
        if lead_id is None or lead_id not in states:
            result.unmatched.append(outcome.record_id)
            continue
        source = SOURCE_PREFIX + outcome.crm
        events = event_counts(conn, lead_id=lead_id, until=datetime.fromtimestamp(outcome.at, UTC))
        rows.append({
            "lead_id": lead_id, "outcome": outcome.outcome, "reason": outcome.reason[:500],
            "by": source, "at": outcome.at, "source": source, "ref": outcome.ref[:255],
            "features": features_at(states[lead_id], model, outcome.at, thresholds, events),
        })  # fmt: skip
    result.stored = repo.insert_outcomes(conn, rows=rows)
    result.duplicates = len(rows) - result.stored
    return result


def _key(outcome: CrmOutcome) -> tuple[str, str]:
    return outcome.crm, outcome.record_id


def _match(conn: Connection, outcomes: list[CrmOutcome]) -> dict[tuple[str, str], str]:
    """(crm, record id) → lead id: by the record linked before, else by e-mail (then
    linked, for the alert's button and later score writes)."""
    matched: dict[tuple[str, str], str] = {}
    for crm in sorted({o.crm for o in outcomes}):
        mine = [o for o in outcomes if o.crm == crm]
        linked = repo.leads_of_records(conn, crm=crm, record_ids=[o.record_id for o in mine])
        by_email = repo.leads_of_emails(conn, emails=[o.email for o in mine if o.email])
        new_links: dict[str, tuple[str, str | None]] = {}
        for outcome in mine:
            lead_id = linked.get(outcome.record_id)
            if lead_id is None and outcome.email:
                lead_id = by_email.get(outcome.email.strip().lower())
                if lead_id is not None:
                    new_links[lead_id] = (outcome.record_id, None)
            if lead_id is not None:
                matched[_key(outcome)] = lead_id
        repo.link_records(conn, crm=crm, links=new_links)
    return matched


def _states(conn: Connection, lead_ids: list[str]) -> dict[str, LeadState]:
    states: dict[str, LeadState] = {}
    for start in range(0, len(lead_ids), repo.CHUNK):
        chunk = lead_ids[start : start + repo.CHUNK]
        rows = conn.execute(select(LEADS.c.id, LEADS.c.state).where(LEADS.c.id.in_(chunk)))
        states.update({lead_id: LeadState.from_dict(state) for lead_id, state in rows})
    return states
