"""Orders, customers and their RFM scores: every query the RFM feature runs.

Synchronous functions on a ``Connection`` inside the caller's transaction (the ingest's,
the recompute's, a read's); nothing here commits. Times in and out are unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from scoring.rfm import Order
from storage.customer_tables import Customer, CustomerSegmentChange, RfmRun
from storage.customer_tables import Order as OrderRow
from storage.rawsql import query, time_out
from storage.tables import Lead

ORDERS = OrderRow.__table__  # type: ignore[attr-defined]
CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
CHANGES = CustomerSegmentChange.__table__  # type: ignore[attr-defined]
RUNS = RfmRun.__table__  # type: ignore[attr-defined]
LEADS = Lead.__table__  # type: ignore[attr-defined]
CHUNK = 500  # rows per IN list or multi-row statement

AGGREGATE_COLUMNS = (
    "first_order_at", "last_order_at", "orders", "revenue", "unconverted", "orders_total",
    "as_of", "updated_at",
)  # fmt: skip
SCORE_COLUMNS = ("r", "f", "m", "cell", "segment", "segment_since", "scored_at")


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# -- orders (the ingest) --------------------------------------------------------------------


def _order(row: Any) -> Order:
    return Order(
        order_id=row.order_id, completed=row.completed, cancelled=row.cancelled,
        amount=row.amount, currency=row.currency, at=_ts(row.at) or 0.0,
        refunds=dict(row.refunds or {}),
    )  # fmt: skip


def load_orders(conn: Connection, order_ids: Iterable[str]) -> dict[str, tuple[str, Order]]:
    """The stored orders among ``order_ids``: order id → (lead id, order)."""
    ids = sorted(set(order_ids))
    found: dict[str, tuple[str, Order]] = {}
    for chunk in _chunks(ids):
        rows = conn.execute(select(ORDERS).where(ORDERS.c.order_id.in_(chunk)))
        for row in rows:
            found[row.order_id] = (row.lead_id, _order(row))
    return found


def save_orders(
    conn: Connection, orders: Sequence[tuple[str, Order, float | None]], *, at: float
) -> None:
    """Insert or rewrite orders: (lead id, order, its net in the base currency or None)."""
    rows = [
        {
            "order_id": o.order_id, "lead_id": lead, "status": o.status,
            "completed": o.completed, "cancelled": o.cancelled, "amount": o.amount,
            "currency": o.currency, "refunded": o.refunded, "refunds": dict(o.refunds),
            "net_base": net_base, "counted": o.counts, "at": _at(o.at), "updated_at": _at(at),
        }
        for lead, o, net_base in orders
    ]  # fmt: skip
    if not rows:
        return
    statement = _insert(conn, ORDERS)
    kept = ("order_id", "lead_id")  # an order stays with the lead that placed it
    statement = statement.on_conflict_do_update(
        index_elements=["order_id"],
        set_={c: statement.excluded[c] for c in rows[0] if c not in kept},
    )
    for chunk in _chunks(rows):
        conn.execute(statement, list(chunk))


def orders_of(conn: Connection, lead_ids: Iterable[str]) -> dict[str, list[Order]]:
    """Every stored order of each lead (the ingest re-sums the few leads it touched)."""
    ids = sorted(set(lead_ids))
    found: dict[str, list[Order]] = {lead: [] for lead in ids}
    for chunk in _chunks(ids):
        for row in conn.execute(select(ORDERS).where(ORDERS.c.lead_id.in_(chunk))):
            found[row.lead_id].append(_order(row))
    return found


def move_orders(conn: Connection, *, source: str, target: str) -> None:
    """A lead merged into another (an anonymous buyer identified): its orders follow, and
    its customer row goes (the target's is re-summed by the caller)."""
    conn.execute(update(ORDERS).where(ORDERS.c.lead_id == source).values(lead_id=target))
    conn.execute(delete(CUSTOMERS).where(CUSTOMERS.c.lead_id == source))


@dataclass(frozen=True, slots=True)
class Aggregates:
    """A customer's sums, as ``scoring.rfm.Summary`` gives them (times unix seconds)."""

    lead_id: str
    first_order_at: float | None
    last_order_at: float | None
    orders: int
    revenue: float
    unconverted: Mapping[str, float]
    orders_total: int


def save_aggregates(conn: Connection, rows: Sequence[Aggregates], *, as_of: float) -> None:
    """Insert or update customers' sums; their scores wait for the recompute."""
    values = [
        {
            "lead_id": a.lead_id, "first_order_at": _at(a.first_order_at),
            "last_order_at": _at(a.last_order_at), "orders": a.orders, "revenue": a.revenue,
            "unconverted": dict(a.unconverted), "orders_total": a.orders_total,
            "as_of": _at(as_of), "updated_at": _at(as_of),
        }
        for a in rows
    ]  # fmt: skip
    if not values:
        return
    statement = _insert(conn, CUSTOMERS)
    statement = statement.on_conflict_do_update(
        index_elements=["lead_id"], set_={c: statement.excluded[c] for c in AGGREGATE_COLUMNS}
    )
    for chunk in _chunks(values):
        conn.execute(statement, list(chunk))


# -- the recompute --------------------------------------------------------------------------


def window_sums(conn: Connection, *, start: float) -> dict[str, tuple[int, dict[str, float]]]:
    """Per lead: counted orders at or after ``start``, and their net per currency ("" for
    none: the base). One GROUP BY over the orders, the floor of a recompute; converting is
    the caller's, with the rates configured now."""
    o = ORDERS.c
    query = (
        select(o.lead_id, o.currency, func.count(), func.sum(o.amount - o.refunded))
        .where(and_(o.counted, o.at >= _at(start)))
        .group_by(o.lead_id, o.currency)
    )
    found: dict[str, tuple[int, dict[str, float]]] = {}
    for lead, currency, n, total in conn.execute(query):
        count, nets = found.get(lead, (0, {}))
        nets[currency or ""] = nets.get(currency or "", 0.0) + float(total)
        found[lead] = (count + int(n), nets)
    return found


class Stored(NamedTuple):
    """A customer row as the recompute reads it (times unix seconds)."""

    lead_id: str
    first_order_at: float | None
    last_order_at: float | None
    orders: int
    revenue: float
    unconverted: Mapping[str, float]
    orders_total: int
    segment: str | None
    cell: str | None
    segment_since: float | None
    updated_at: float | None


CUSTOMERS_SQL = (
    "SELECT lead_id, first_order_at, last_order_at, orders, revenue, unconverted, "
    "orders_total, segment, cell, segment_since, updated_at FROM customers ORDER BY lead_id"
)


def _json_in(value: Any) -> dict[str, float]:
    if not value:
        return {}
    return dict(orjson.loads(value)) if isinstance(value, str | bytes) else dict(value)


def customers(conn: Connection) -> list[Stored]:
    """Every customer row, by lead id: driver SQL, as 100,000 rows through the ORM's type
    processing take seconds."""
    rows = query(conn, CUSTOMERS_SQL)
    return [_stored(*row) for row in rows]


def _stored(
    lead: str, first: Any, last: Any, n: int, revenue: float, apart: Any, total: int,
    segment: str | None, cell: str | None, since: Any, updated: Any,
) -> Stored:  # fmt: skip
    t = time_out
    return Stored(
        lead, t(first), t(last), n, revenue, _json_in(apart), total, segment, cell, t(since),
        t(updated),
    )  # fmt: skip


def save_scores(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write recomputed rows: ``lead_id`` plus the window sums (``orders``, ``revenue``,
    ``unconverted``, ``as_of``) and ``SCORE_COLUMNS`` (times unix seconds)."""
    if not rows:
        return
    times = ("as_of", "segment_since", "scored_at")
    values = [
        {("key" if k == "lead_id" else k): (_at(v) if k in times else v) for k, v in row.items()}
        for row in rows
    ]
    columns = [k for k in values[0] if k != "key"]
    statement = (
        update(CUSTOMERS)
        .where(CUSTOMERS.c.lead_id == bindparam("key"))
        .values({c: bindparam(c) for c in columns})
    )
    for chunk in _chunks(values):
        conn.execute(statement, list(chunk))


def add_changes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Segment history rows (``at`` in unix seconds)."""
    values = [{**row, "at": _at(row["at"])} for row in rows]
    for chunk in _chunks(values):
        conn.execute(insert(CHANGES), list(chunk))


def add_run(
    conn: Connection, *, at: float, customers: int, moved: int, seconds: float,
    edges: Mapping[str, Any],
) -> None:  # fmt: skip
    conn.execute(
        insert(RUNS).values(
            at=_at(at), customers=customers, moved=moved, seconds=seconds, edges=dict(edges)
        )
    )


def last_run(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(RUNS).order_by(RUNS.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return {
        "at": _ts(row.at), "customers": row.customers, "moved": row.moved,
        "seconds": row.seconds, "edges": row.edges,
    }  # fmt: skip


def stale(conn: Connection) -> int:
    """Customers whose scores are behind their orders: changed since last scored (or never
    scored), or left with no counted order but still in a segment."""
    c = CUSTOMERS.c
    behind = c.last_order_at.is_not(None) & (c.scored_at.is_(None) | (c.updated_at > c.scored_at))
    gone = c.last_order_at.is_(None) & c.segment.is_not(None)
    return int(conn.execute(select(func.count()).where(behind | gone)).scalar_one())


# -- reads ----------------------------------------------------------------------------------


def customer(conn: Connection, lead_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.lead_id == lead_id)).first()
    if row is None:
        return None
    times = ("first_order_at", "last_order_at", "as_of", "updated_at", "scored_at")
    found = dict(row._mapping)
    for key in (*times, "segment_since"):
        found[key] = _ts(found[key])
    return found


def customer_orders(conn: Connection, lead_id: str) -> list[dict[str, Any]]:
    """The lead's orders, newest first."""
    query = select(ORDERS).where(ORDERS.c.lead_id == lead_id).order_by(ORDERS.c.at.desc())
    return [
        {
            "order_id": r.order_id, "at": _ts(r.at), "status": r.status, "amount": r.amount,
            "currency": r.currency, "refunded": r.refunded, "net_base": r.net_base,
            "counted": r.counted,
        }
        for r in conn.execute(query)
    ]  # fmt: skip


def segment_history(conn: Connection, lead_id: str) -> list[dict[str, Any]]:
    """The lead's segment changes, oldest first."""
    query = select(CHANGES).where(CHANGES.c.lead_id == lead_id).order_by(CHANGES.c.id)
    return [_change(r) for r in conn.execute(query)]


def _change(r: Any) -> dict[str, Any]:
    return {
        "lead_id": r.lead_id, "at": _ts(r.at), "from": r.from_segment, "to": r.to_segment,
        "cell": r.cell, "recency_days": r.recency_days, "interval_days": r.interval_days,
        "revenue": r.revenue,
    }  # fmt: skip


def moves_since(conn: Connection, *, since: float) -> list[dict[str, Any]]:
    """Segment changes at or after ``since`` (first segments included: ``from`` None)."""
    query = select(CHANGES).where(CHANGES.c.at >= _at(since)).order_by(CHANGES.c.id)
    return [_change(r) for r in conn.execute(query)]


def segment_totals(conn: Connection) -> list[tuple[str | None, int, float]]:
    """(segment, customers, revenue in the window) for each segment; None: not scored yet."""
    c = CUSTOMERS.c
    query = select(c.segment, func.count(), func.coalesce(func.sum(c.revenue), 0.0)).group_by(
        c.segment
    )
    return [(seg, int(n), float(total)) for seg, n, total in conn.execute(query)]


def scored_customers(conn: Connection) -> list[dict[str, Any]]:
    """Every customer with scores and the lead's e-mail, best first (revenue within a cell)."""
    leads, c = LEADS, CUSTOMERS.c
    query = (
        select(
            c.lead_id,
            leads.c.email,
            leads.c.name,
            c.r,
            c.f,
            c.m,
            c.cell,
            c.segment,
            c.segment_since,
            c.orders,
            c.revenue,
            c.last_order_at,
            c.orders_total,
            c.unconverted,
        )
        .select_from(CUSTOMERS.outerjoin(leads, leads.c.id == c.lead_id))
        .order_by(c.cell.desc(), c.revenue.desc(), c.lead_id)
    )
    return [
        {
            **dict(r._mapping),
            "segment_since": _ts(r.segment_since),
            "last_order_at": _ts(r.last_order_at),
        }
        for r in conn.execute(query)
    ]
