"""CRM: where a lead's score must be written (crm_links), how far pulls have read
(crm_cursors), and feedback's source and ref, so a CRM's closed deals are labels of their own
kind and an outcome reported twice is stored once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(
            sa.Column("source", AutoString(length=32), nullable=False, server_default="rep")
        )
        batch.add_column(sa.Column("ref", AutoString(length=255), nullable=True))
        batch.create_unique_constraint("uq_feedback_source_ref", ["source", "ref"])
    op.create_table(
        "crm_links",
        sa.Column("lead_id", AutoString(length=255), nullable=False),
        sa.Column("crm", AutoString(length=16), nullable=False),
        sa.Column("record_id", AutoString(length=64), nullable=True),
        sa.Column("record_url", AutoString(length=512), nullable=True),
        sa.Column("dirty_at", UTCDateTime(), nullable=True),
        sa.Column("next_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", AutoString(length=500), nullable=True),
        sa.Column("synced_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("lead_id", "crm"),
        sa.UniqueConstraint("crm", "record_id", name="uq_crm_links_record"),
    )
    op.create_index("ix_crm_links_due", "crm_links", ["crm", "dirty_at"])
    op.create_table(
        "crm_cursors",
        sa.Column("crm", AutoString(length=16), nullable=False),
        sa.Column("kind", AutoString(length=32), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "kind"),
    )


def downgrade() -> None:
    op.drop_table("crm_cursors")
    op.drop_index("ix_crm_links_due", table_name="crm_links")
    op.drop_table("crm_links")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_source_ref", type_="unique")
        batch.drop_column("ref")
        batch.drop_column("source")
