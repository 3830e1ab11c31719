"""Scheduled runs: one row per job and slot, so replicas sharing a database run each slot once.

Written like 0001–0003 from ``storage/tables.py``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("job", AutoString(length=64), nullable=False),
        sa.Column("run_key", AutoString(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", AutoString(length=255), nullable=True),
        sa.PrimaryKeyConstraint("job", "run_key"),
    )
    op.create_index(
        op.f("ix_scheduled_runs_started_at"), "scheduled_runs", ["started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scheduled_runs_started_at"), table_name="scheduled_runs")
    op.drop_table("scheduled_runs")
