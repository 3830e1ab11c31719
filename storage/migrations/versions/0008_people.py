"""People: the display name a chat platform gave each rep who acted (``teams:<id>`` → name),
so digests name reps as the alert cards do. Written like 0005 from ``storage/tables.py``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("ref", AutoString(length=255), nullable=False),
        sa.Column("name", AutoString(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )


def downgrade() -> None:
    op.drop_table("people")
