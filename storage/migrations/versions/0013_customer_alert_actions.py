"""customer_alert_actions: what an account owner did about a slipping customer's alert
(Reached out, Snooze, Not a concern), by whom and when; a snooze silences new alerts
about that customer until ``snoozed_until``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "customer_alert_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", AutoString(length=255), nullable=False),
        sa.Column("action", AutoString(length=16), nullable=False),
        sa.Column("by", AutoString(length=255), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("snoozed_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_customer_alert_actions_lead_at", "customer_alert_actions", ["lead_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_alert_actions_lead_at", table_name="customer_alert_actions")
    op.drop_table("customer_alert_actions")
