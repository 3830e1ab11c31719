"""Model versions: proposed, active (at most one), retired or rejected.

Written like 0001 and 0002 from ``storage/tables.py``. The partial unique index on
``status = 'active'`` is supported by SQLite (3.8+) and PostgreSQL alike.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here like 0001, so a later change to storage.types.JSONType cannot change this.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTCDateTime = storage.types.UTCDateTime
ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("yaml", AutoString(), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", AutoString(length=255), nullable=False),
        sa.Column("approved_by", AutoString(length=255), nullable=True),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_model_versions_active",
        "model_versions",
        ["status"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_model_versions_active", table_name="model_versions")
    op.drop_table("model_versions")
