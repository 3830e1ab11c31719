"""Customers (RFM): orders once per order_id, per-customer aggregates and scores, segment
history, recompute runs.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import storage.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = storage.types.UTCDateTime
JSONType = storage.types.JSONType


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", AutoString(length=255), nullable=False),
        sa.Column("lead_id", AutoString(length=255), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("currency", AutoString(length=3), nullable=True),
        sa.Column("refunded", sa.Float(), nullable=False),
        sa.Column("refunds", JSONType, nullable=False),
        sa.Column("net_base", sa.Float(), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_orders_lead_at", "orders", ["lead_id", "at"])
    op.create_table(
        "customers",
        sa.Column("lead_id", AutoString(length=255), nullable=False),
        sa.Column("first_order_at", UTCDateTime(), nullable=True),
        sa.Column("last_order_at", UTCDateTime(), nullable=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("unconverted", JSONType, nullable=False),
        sa.Column("orders_total", sa.Integer(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("scored_at", UTCDateTime(), nullable=True),
        sa.Column("r", sa.Integer(), nullable=True),
        sa.Column("f", sa.Integer(), nullable=True),
        sa.Column("m", sa.Integer(), nullable=True),
        sa.Column("cell", AutoString(length=3), nullable=True),
        sa.Column("segment", AutoString(length=32), nullable=True),
        sa.Column("segment_since", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    op.create_index("ix_customers_segment", "customers", ["segment"])
    op.create_table(
        "customer_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", AutoString(length=255), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_segment", AutoString(length=32), nullable=True),
        sa.Column("to_segment", AutoString(length=32), nullable=False),
        sa.Column("cell", AutoString(length=3), nullable=False),
        sa.Column("recency_days", sa.Float(), nullable=False),
        sa.Column("interval_days", sa.Float(), nullable=True),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_customer_segments_at", "customer_segments", ["at"])
    op.create_index("ix_customer_segments_lead_id", "customer_segments", ["lead_id"])
    op.create_table(
        "rfm_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("edges", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("rfm_runs")
    op.drop_index("ix_customer_segments_lead_id", table_name="customer_segments")
    op.drop_index("ix_customer_segments_at", table_name="customer_segments")
    op.drop_table("customer_segments")
    op.drop_index("ix_customers_segment", table_name="customers")
    op.drop_table("customers")
    op.drop_index("ix_orders_lead_at", table_name="orders")
    op.drop_table("orders")
