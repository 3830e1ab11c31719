"""leads (anonymous, score, id): ranked reads of known leads at a million rows.

``top`` pages known leads by stored score, ``stats`` counts the ones below an edge, and
percentile band edges read the score at a rank: each is a range of this index instead of a
walk of the score index that looks every row up to skip anonymous visitors.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_leads_anonymous_score", "leads", ["anonymous", "score", "id"])


def downgrade() -> None:
    op.drop_index("ix_leads_anonymous_score", table_name="leads")
