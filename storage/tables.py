"""The SQL tables. One lead row holds its compact feature state and its current score."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint, false, func, text
from sqlmodel import Field, SQLModel

from storage import (
    customer_alert_tables,  # noqa: F401  (registers customer alert actions)
    customer_tables,  # noqa: F401  (registers the RFM tables)
)
from storage.types import JSONType, UTCDateTime


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


def _dt(*, index: bool = False, nullable: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, index=index, nullable=nullable)


class Lead(SQLModel, table=True):
    """A lead: identity, display facts, feature state (``scoring.LeadState.to_dict``) and
    the current score, stored so top-N queries and digests never recompute."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_band", "band"),  # whole bands: the digest's hot leads, the SLA sweep
        # Ranked reads of known leads (top, counts below an edge, percentile ranks, whether a
        # band is sure: bot/chat/ranked.py), from the index alone. The only index holding the
        # score, which every event rewrites (migration 0014 says why).
        Index(
            "ix_leads_ranked",
            *("anonymous", "score", "id", "scored_at", "band_firm_for", "band_firm_until"),
        ),
        # Look-ups match e-mails in any case: index the lower-cased form they compare.
        Index("ix_leads_email_lower", func.lower(text("email"))),
    )

    id: str = Field(primary_key=True, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=255)
    company: str | None = Field(default=None, max_length=255)
    anonymous: bool = Field(default=False)
    state: dict[str, Any] = _json()
    score: float = 0.0
    fit: float = 0.0
    intent: float = 0.0
    band: str = Field(default="cold", max_length=8)
    grade: str = Field(default="D", max_length=1)
    engagement: int = 1
    probability: float = 0.0
    first_seen_at: datetime = _dt()
    last_event_at: datetime = _dt()
    scored_at: datetime = _dt()
    alerted_at: datetime | None = _dt(nullable=True)
    # What reps did with it (bot/chat/actions.py): who claimed it first, and until when it is
    # snoozed. Never written by the ingest upsert, so a new event keeps them.
    claimed_by: str | None = Field(default=None, max_length=255)
    claimed_at: datetime | None = _dt(nullable=True)
    snoozed_until: datetime | None = _dt(nullable=True)
    # Written by the decay sweep: the lead's band holds at least until ``band_firm_until``
    # (scores only fall with time), valid while ``scored_at`` is still ``band_firm_for``:
    # ``stats`` counts such a lead by its stored score without scoring it (bot/chat/ranked.py).
    band_firm_until: datetime | None = _dt(nullable=True)
    band_firm_for: datetime | None = _dt(nullable=True)


class Identity(SQLModel, table=True):
    """Every identifier a lead is known by (``user:…``, ``email:…``, ``anon:…``)."""

    __tablename__ = "identities"

    key: str = Field(primary_key=True, max_length=400)
    lead_id: str = Field(index=True, max_length=255)


class Event(SQLModel, table=True):
    """Every accepted call, once: ``message_id`` makes retries harmless."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("message_id", name="uq_events_message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=255)
    lead_id: str = Field(index=True, max_length=255)
    type: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=255)
    timestamp: datetime = _dt()
    received_at: datetime = _dt()
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )


class EventTally(SQLModel, table=True):
    """How many events have an id up to ``counted_to``: ``stats`` counts only the newer ones
    (``storage.event_tally``), not ten million rows. One row, ``id`` 1."""

    __tablename__ = "event_tally"

    id: int = Field(default=1, primary_key=True)
    counted_to: int = Field(default=0, sa_type=BigInteger)
    events: int = Field(default=0, sa_type=BigInteger)


class ScoreChange(SQLModel, table=True):
    """A change of band, or of score beyond the configured delta, and what caused it."""

    __tablename__ = "score_history"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: str = Field(index=True, max_length=255)
    at: datetime = _dt()
    score: float
    band: str = Field(max_length=8)
    previous_score: float | None = None
    previous_band: str | None = Field(default=None, max_length=8)
    cause: str = Field(max_length=255)


class OutboxMessage(SQLModel, table=True):
    """A message decided in the same transaction as its cause, delivered later, once."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_status_destination", "status", "destination", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    lead_id: str | None = Field(default=None, index=True, max_length=255)
    destination: str = Field(max_length=255)
    dedupe_key: str = Field(max_length=255)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    available_at: datetime = _dt()
    created_at: datetime = _dt()
    sent_at: datetime | None = _dt(nullable=True)
    last_error: str | None = None
    # A send was started and its outcome is unknown: look for the earlier post first (0007).
    unsure: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    retried_at: datetime | None = _dt(nullable=True)  # `leadbot outbox retry`: budget from here


class Feedback(SQLModel, table=True):
    """A judgement of a lead, with the features the lead had at that moment: a rep's click
    (``source`` "rep") or an outcome from a CRM ("crm:hubspot", "crm:salesforce").

    ``ref`` names a CRM outcome (``<record id>:<outcome>``) so an import, a webhook and a
    pull that report the same closed deal store it once; reps' rows have none."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("source", "ref", name="uq_feedback_source_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: str = Field(index=True, max_length=255)
    outcome: str = Field(max_length=16)
    reason: str | None = None
    by: str = Field(max_length=255)
    at: datetime = _dt()
    features: dict[str, Any] = _json()
    source: str = Field(default="rep", max_length=32, sa_column_kwargs={"server_default": "rep"})
    ref: str | None = Field(default=None, max_length=255)


class AlertPost(SQLModel, table=True):
    """Where an alert was posted (a Slack channel and message ts), so a click can update
    the message and later news about the lead can go to its thread."""

    __tablename__ = "alert_posts"
    __table_args__ = (UniqueConstraint("platform", "channel", "ts", name="uq_alert_posts_message"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: str = Field(index=True, max_length=255)
    outbox_id: int | None = Field(default=None, index=True)
    platform: str = Field(max_length=32)
    channel: str = Field(max_length=255)
    ts: str = Field(max_length=64)
    posted_at: datetime = _dt()


class HandledRequest(SQLModel, table=True):
    """A chat request already acted on (``slack:cmd:<sha256 of the signed body>``): a
    platform's retry of it is answered without acting twice."""

    __tablename__ = "handled_requests"

    key: str = Field(primary_key=True, max_length=255)
    at: datetime = _dt(index=True)


class ModelVersion(SQLModel, table=True):
    """One version of the scoring model (``id`` is its number N): proposed by a retrain,
    then active (at most one), retired when another replaces it, rejected (refused, or
    rolled back), or superseded (a newer proposal came before a decision). ``yaml`` is the
    model as config YAML; ``metrics`` holds the held-out ``before`` and ``after`` dicts (NaN
    stored as null)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # The code keeps one active version inside one transaction; this makes sure of it.
        Index(
            "uq_model_versions_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    yaml: str
    status: str = Field(default="proposed", max_length=16)
    created_at: datetime = _dt()
    activated_at: datetime | None = _dt(nullable=True)
    created_by: str = Field(max_length=255)
    approved_by: str | None = Field(default=None, max_length=255)
    labels: int = 0
    metrics: dict[str, Any] = _json()
    parent_id: int | None = None


class ScheduledRun(SQLModel, table=True):
    """One run of a scheduled job for one slot of its schedule (``run_key``: the slot's
    fire time, ISO in UTC). Replicas firing the same slot insert the same key; only the one
    whose insert lands runs the job."""

    __tablename__ = "scheduled_runs"

    job: str = Field(primary_key=True, max_length=64)
    run_key: str = Field(primary_key=True, max_length=64)
    started_at: datetime = _dt(index=True)
    finished_at: datetime | None = _dt(nullable=True)
    outcome: str | None = Field(default=None, max_length=255)


class TeamsConversation(SQLModel, table=True):
    """A Teams conversation the bot may post into unprompted: a channel, group chat or a
    user's 1:1 chat, captured when the bot is installed there or first spoken to.
    ``reference`` is the SDK's ConversationReference as it serialises it (camelCase JSON)."""

    __tablename__ = "teams_conversations"
    __table_args__ = (Index("ix_teams_conversations_kind_installed", "kind", "installed_at"),)

    conversation_id: str = Field(primary_key=True, max_length=512)
    kind: str = Field(max_length=16)
    service_url: str = Field(max_length=512)
    tenant_id: str | None = Field(default=None, max_length=64)
    team_id: str | None = Field(default=None, max_length=512)
    channel_id: str | None = Field(default=None, max_length=512)
    user_aad_id: str | None = Field(default=None, index=True, max_length=64)
    bot_id: str = Field(max_length=255)
    reference: dict[str, Any] = _json()
    installed_at: datetime = _dt()
    updated_at: datetime = _dt()


class AbTest(SQLModel, table=True):
    """An A/B test of two model versions: leads whose id hashes below ``share`` (cohort B)
    are scored with the challenger, the others with the active version (the champion).
    At most one runs (``stopped_at`` null); a partial unique index makes sure of it."""

    __tablename__ = "ab_tests"
    __table_args__ = (
        Index(
            "uq_ab_tests_running",
            "running",
            unique=True,
            sqlite_where=text("running"),
            postgresql_where=text("running"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    champion_id: int
    challenger_id: int
    share: float
    running: bool = True
    started_at: datetime = _dt()
    started_by: str = Field(max_length=255)
    stopped_at: datetime | None = _dt(nullable=True)
    stopped_by: str | None = Field(default=None, max_length=255)


class Person(SQLModel, table=True):
    """The display name a chat platform last gave an actor ref (``teams:<AAD object id>``),
    saved when they act: Teams ids mean nothing to a reader, and a digest names reps."""

    __tablename__ = "people"

    ref: str = Field(primary_key=True, max_length=255)
    name: str = Field(max_length=255)
    updated_at: datetime = _dt()


class CrmLink(SQLModel, table=True):
    """A lead's record in a CRM, and whether its score still has to be written there.

    ``record_id`` and ``record_url`` are known once an import, a pull or a first write
    found the record. ``dirty_at``: the lead's score, band or grade changed at that time and
    the CRM does not have it yet (null: in step); a write clears it only if no change came
    after the write read the lead. A row is never deleted by a failed write: an outage
    only moves ``next_at``."""

    __tablename__ = "crm_links"
    __table_args__ = (
        UniqueConstraint("crm", "record_id", name="uq_crm_links_record"),
        Index("ix_crm_links_due", "crm", "dirty_at"),
    )

    lead_id: str = Field(primary_key=True, max_length=255)
    crm: str = Field(primary_key=True, max_length=16)  # "hubspot" | "salesforce"
    record_id: str | None = Field(default=None, max_length=64)
    record_url: str | None = Field(default=None, max_length=512)
    dirty_at: datetime | None = _dt(nullable=True)
    next_at: datetime | None = _dt(nullable=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    synced_at: datetime | None = _dt(nullable=True)


class CrmCursor(SQLModel, table=True):
    """How far a scheduled pull of a CRM's changed records has read (``leadbot crm pull``)."""

    __tablename__ = "crm_cursors"

    crm: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, max_length=32)  # "contacts", "deals", "leads"
    since: datetime = _dt()
    updated_at: datetime = _dt()
