"""Indexes for a digest's period: leads first seen or claimed in it.

A weekly digest counts leads new and claimed in its week; without these, each count reads
the whole leads table. (Not score_history.at: SQLite then looks a lead's entry into hot up
by time instead of by lead, 10x slower at a million leads.)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# New leads are counted from the index alone (anonymous ones left out, distinct ids).
INDEXES = (
    ("ix_leads_first_seen", "leads", ["first_seen_at", "anonymous", "id"]),
    ("ix_leads_claimed_at", "leads", ["claimed_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
