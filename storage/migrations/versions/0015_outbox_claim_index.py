"""outbox: ``ix_outbox_status_destination`` (status, destination, id) replaces
``ix_outbox_status_available`` (status, available_at), so a claim reads each destination's
oldest due messages in id order and finds the destinations by skipping through it, instead
of ranking every waiting message. (With both, SQLite's planner, which has no statistics,
took the range on ``available_at``: the whole backlog, then a sort.)

After an outage a paced channel can have tens of thousands of alerts waiting; the claim
ranked all of them (``row_number`` over the due rows) for every message sent: over 96,000
waiting messages 114 ms a lane claim and 187 ms a claim of new destinations, on the
server's event loop and its database connection. With the index both read a few entries.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_status_destination", "outbox", ["status", "destination", "id"])
    op.drop_index("ix_outbox_status_available", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_status_available", "outbox", ["status", "available_at"])
    op.drop_index("ix_outbox_status_destination", table_name="outbox")
