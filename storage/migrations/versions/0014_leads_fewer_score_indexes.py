"""leads: ``ix_leads_score`` and ``ix_leads_band_score`` give way to ``ix_leads_band``
(band alone); ``ix_leads_ranked`` (anonymous, score, id, …) serves every ranked read.

Every ingested event rewrites its lead's score, and with it an entry of every index that
holds the score: three of them before this revision, one after (a band changes seldom).
On the ingest writer (groups of 8 single events, 5,000 leads) that was 96 → 82 µs of CPU
per event, most of it fewer pages written at each commit. The ranked reads filter known
leads (``anonymous`` false) and order by score, which the ranked index gives, from the
highest score down for a band with a limit (``top --band``); whole bands (the digest's
waiting hot leads, the SLA sweep) are found by ``ix_leads_band`` and sorted after.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_leads_score", table_name="leads")
    op.drop_index("ix_leads_band_score", table_name="leads")
    op.create_index("ix_leads_band", "leads", ["band"])


def downgrade() -> None:
    op.drop_index("ix_leads_band", table_name="leads")
    op.create_index("ix_leads_band_score", "leads", ["band", "score"])
    op.create_index("ix_leads_score", "leads", ["score"])
