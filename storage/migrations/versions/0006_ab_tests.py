"""A/B tests of model versions: a challenger scores a hashed share of the leads.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("champion_id", sa.Integer(), nullable=False),
        sa.Column("challenger_id", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("started_by", AutoString(length=255), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_by", AutoString(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_ab_tests_running",
        "ab_tests",
        ["running"],
        unique=True,
        sqlite_where=sa.text("running"),
        postgresql_where=sa.text("running"),
    )


def downgrade() -> None:
    op.drop_index("uq_ab_tests_running", table_name="ab_tests")
    op.drop_table("ab_tests")
