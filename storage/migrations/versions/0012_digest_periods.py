"""Indexes for a digest's period: leads first seen or claimed in it, score changes in it.

A weekly digest counts leads new, hot and claimed in its week and ranks the leads whose score
moved; without these, each of those reads the whole leads or score_history table.

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

INDEXES = (
    ("ix_leads_first_seen_at", "leads", "first_seen_at"),
    ("ix_leads_claimed_at", "leads", "claimed_at"),
    ("ix_score_history_at", "score_history", "at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
