"""The customer alert actions table (migration 0013): who clicked "Reached out", "Snooze" or
"Not a concern" on a slipping customer's alert, when, and until when a snooze holds.
``storage.tables`` imports it, so it is on the metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _dt(*, nullable: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable)


class CustomerAlertAction(SQLModel, table=True):
    """One click on a customer alert; a snooze's ``snoozed_until`` silences new alerts
    about that customer until then."""

    __tablename__ = "customer_alert_actions"
    __table_args__ = (Index("ix_customer_alert_actions_lead_at", "lead_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: str = Field(max_length=255)
    action: str = Field(max_length=16)
    by: str = Field(max_length=255)
    at: datetime = _dt()
    snoozed_until: datetime | None = _dt(nullable=True)
