"""leads.band_firm_until / band_firm_for: until when the decay sweep found a lead's band sure.

Scores only fall with time, so a lead the sweep scored hot stays hot until its score can reach
the hot edge; the sweep writes that time, paired with the ``scored_at`` it holds for (any
other write of the score changes ``scored_at`` and so voids it). ``stats`` then counts such
leads by their stored score instead of scoring every one of them now, from the index alone
(``ix_leads_ranked`` widens 0010's (anonymous, score, id) with the columns it reads).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = ("band_firm_until", "band_firm_for")


RANKED = ("anonymous", "score", "id")


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (SQLite has both): a batch rebuild would lose lower(email)'s index.
    for column in COLUMNS:
        op.add_column("leads", sa.Column(column, storage.types.UTCDateTime(), nullable=True))
    # stats reads whether each lead at or above the warm edge is sure from the index alone.
    op.drop_index("ix_leads_anonymous_score", table_name="leads")
    ranked = [*RANKED, "scored_at", "band_firm_for", "band_firm_until"]
    op.create_index("ix_leads_ranked", "leads", ranked)


def downgrade() -> None:
    op.drop_index("ix_leads_ranked", table_name="leads")
    op.create_index("ix_leads_anonymous_score", "leads", list(RANKED))
    for column in reversed(COLUMNS):
        op.drop_column("leads", column)
