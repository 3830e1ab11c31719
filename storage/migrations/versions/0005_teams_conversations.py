"""Teams conversation references: where the bot may post proactively.

Written like 0001–0004 from ``storage/tables.py``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime
# Frozen here rather than imported, as in 0001.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "teams_conversations",
        sa.Column("conversation_id", AutoString(length=512), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("service_url", AutoString(length=512), nullable=False),
        sa.Column("tenant_id", AutoString(length=64), nullable=True),
        sa.Column("team_id", AutoString(length=512), nullable=True),
        sa.Column("channel_id", AutoString(length=512), nullable=True),
        sa.Column("user_aad_id", AutoString(length=64), nullable=True),
        sa.Column("bot_id", AutoString(length=255), nullable=False),
        sa.Column("reference", JSON, nullable=False),
        sa.Column("installed_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_index(
        "ix_teams_conversations_kind_installed",
        "teams_conversations",
        ["kind", "installed_at"],
    )
    op.create_index(
        op.f("ix_teams_conversations_user_aad_id"), "teams_conversations", ["user_aad_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_teams_conversations_user_aad_id"), table_name="teams_conversations")
    op.drop_index("ix_teams_conversations_kind_installed", table_name="teams_conversations")
    op.drop_table("teams_conversations")
