"""Outbox: whether a message may already be on its platform, and when an operator retried it.

``unsure``: a send of this message was started and its outcome is not known (a crash, a
timeout, a 5xx after the request went out); the next attempt first looks for the earlier
post. ``retried_at``: ``leadbot outbox retry`` gave a dead message a fresh budget from then.
``alert_posts.outbox_id`` is indexed: the dispatcher asks it whether an alert was recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("unsure", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("retried_at", UTCDateTime(), nullable=True))
    op.create_index("ix_alert_posts_outbox_id", "alert_posts", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_posts_outbox_id", table_name="alert_posts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("retried_at")
        batch.drop_column("unsure")
