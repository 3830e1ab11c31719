"""leads.band_firm_until / band_firm_for: until when the decay sweep found a lead's band sure.

Scores only fall with time, so a lead the sweep scored hot stays hot until its score can reach
the hot edge; the sweep writes that time, paired with the ``scored_at`` it holds for (any
other write of the score changes ``scored_at`` and so voids it). ``stats`` then counts such
leads by their stored score instead of scoring every one of them now.

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


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (SQLite has both): a batch rebuild would lose lower(email)'s index.
    for column in COLUMNS:
        op.add_column("leads", sa.Column(column, storage.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("leads", column)
