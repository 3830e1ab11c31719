"""The RFM tables (migration 0012): orders, per-customer aggregates and scores, segment
history, recompute runs. ``storage.tables`` imports them, so they are on the metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from storage.types import JSONType, UTCDateTime


def _dt(*, nullable: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable)


class Order(SQLModel, table=True):
    """One order as folded from its events (``scoring.rfm.fold``), once per ``order_id``.
    ``net_base`` is the order's net worth in the base currency (0 when cancelled), null
    when its currency has no rate; ``counted``: completed, not cancelled, not refunded in
    full."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_lead_at", "lead_id", "at"),)

    order_id: str = Field(primary_key=True, max_length=255)
    lead_id: str = Field(max_length=255)
    status: str = Field(max_length=16)
    completed: bool = False
    cancelled: bool = False
    amount: float = 0.0
    currency: str | None = Field(default=None, max_length=3)
    refunded: float = 0.0
    refunds: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    net_base: float | None = None
    counted: bool = False
    at: datetime = _dt()
    updated_at: datetime = _dt()


class Customer(SQLModel, table=True):
    """A lead's orders summed (on ingest, for that lead alone; for everyone by the
    recompute, as orders age out of the window) and its scores as of the last recompute.
    A row whose ``updated_at`` is after its ``scored_at`` waits for the next recompute."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_segment", "segment"),)

    lead_id: str = Field(primary_key=True, max_length=255)
    first_order_at: datetime | None = _dt(nullable=True)
    last_order_at: datetime | None = _dt(nullable=True)
    orders: int = 0  # counted orders in the window ending ``as_of``
    revenue: float = 0.0  # their net revenue, base currency
    unconverted: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )  # net revenue in the window per currency without a rate
    orders_total: int = 0  # counted orders ever
    as_of: datetime = _dt()
    updated_at: datetime = _dt()
    scored_at: datetime | None = _dt(nullable=True)
    r: int | None = None
    f: int | None = None
    m: int | None = None
    cell: str | None = Field(default=None, max_length=3)
    segment: str | None = Field(default=None, max_length=32)
    segment_since: datetime | None = _dt(nullable=True)


class CustomerSegmentChange(SQLModel, table=True):
    """A customer's move from one segment to another (from null: its first segment), with
    the figures that explain it."""

    __tablename__ = "customer_segments"
    __table_args__ = (Index("ix_customer_segments_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: str = Field(index=True, max_length=255)
    at: datetime = _dt()
    from_segment: str | None = Field(default=None, max_length=32)
    to_segment: str = Field(max_length=32)
    cell: str = Field(max_length=3)
    recency_days: float
    interval_days: float | None = None
    revenue: float = 0.0


class RfmRun(SQLModel, table=True):
    """A recompute: when, how many customers, how many moved, the quintile edges used."""

    __tablename__ = "rfm_runs"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _dt()
    customers: int = 0
    moved: int = 0
    seconds: float = 0.0
    edges: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
