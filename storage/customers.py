"""Orders, customers and their RFM scores: every query the RFM feature runs.

Synchronous functions on a ``Connection`` inside the caller's transaction (the ingest's,
the recompute's, a read's); nothing here commits. Times in and out are unix seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from scoring.rfm import Order
from storage.customer_tables import Customer, CustomerSegmentChange, RfmRun
from storage.customer_tables import Order as OrderRow
from storage.rawsql import execute_many, marks, query, time_encoder, time_out
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


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# -- orders (the ingest) --------------------------------------------------------------------


ORDER_COLUMNS = (
    "order_id", "lead_id", "status", "completed", "cancelled", "amount", "currency",
    "refunded", "refunds", "net_base", "counted", "at", "updated_at",
)  # fmt: skip


def load_orders(conn: Connection, order_ids: Iterable[str]) -> dict[str, tuple[str, Order]]:
    """The stored orders among ``order_ids``: order id → (lead id, order). Driver SQL: this
    is the ingest's hot path."""
    ids = sorted(set(order_ids))
    found: dict[str, tuple[str, Order]] = {}
    for chunk in _chunks(ids):
        sql = (
            "SELECT order_id, lead_id, completed, cancelled, amount, currency, at, refunds "
            f"FROM orders WHERE order_id IN {marks(conn, 1, len(chunk))}"
        )
        for order_id, lead, completed, cancelled, amount, currency, at, refunds in query(
            conn, sql, chunk
        ):
            order = Order(
                order_id, bool(completed), bool(cancelled), amount, currency,
                time_out(at) or 0.0, _json_in(refunds),
            )  # fmt: skip
            found[order_id] = (lead, order)
    return found


def save_orders(
    conn: Connection, orders: Sequence[tuple[str, Order, float | None]], *, at: float
) -> None:
    """Insert or rewrite orders: (lead id, order, its net in the base currency or None).
    An order stays with the lead that placed it."""
    if not orders:
        return
    time = time_encoder(conn)
    values = [
        (
            o.order_id, lead, o.status, o.completed, o.cancelled, o.amount, o.currency,
            o.refunded, _json_out(o.refunds), net_base, o.counts, time(o.at), time(at),
        )
        for lead, o, net_base in orders
    ]  # fmt: skip
    execute_many(conn, _upsert_sql(conn, "orders", ORDER_COLUMNS, "order_id", 2), values)


@functools.cache
def _upsert(dialect: str, table: str, columns: tuple[str, ...], key: str, kept: int) -> str:
    n = len(columns)
    params = (
        ", ".join(f"${i + 1}" for i in range(n)) if dialect == "postgresql" else ", ".join("?" * n)
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[kept:])
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({params}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _upsert_sql(conn: Connection, table: str, columns: tuple[str, ...], key: str, kept: int) -> str:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of every column after the first ``kept``."""
    return _upsert(conn.dialect.name, table, columns, key, kept)


def _json_out(value: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(value)).decode()


LeadSum = tuple[str | None, int, float, float, int, float]


def lead_sums(
    conn: Connection, lead_ids: Iterable[str], *, start: float
) -> dict[str, list[LeadSum]]:
    """Per lead, per currency of its counted orders: (currency, orders ever, first and last
    order time, orders since ``start``, their net). One GROUP BY on the leads' index rows
    (driver SQL: the ingest's hot path), so a customer with thousands of orders costs the
    database, not Python."""
    since = time_encoder(conn)(start)
    found: dict[str, list[LeadSum]] = {}
    for chunk in _chunks(sorted(set(lead_ids))):
        rows = query(conn, _lead_sums_sql(conn.dialect.name, len(chunk)), (since, *chunk))
        for lead, currency, n, first, last, recent, net in rows:
            row = (currency, int(n), time_out(first) or 0.0, time_out(last) or 0.0,
                   int(recent or 0), float(net or 0.0))  # fmt: skip
            found.setdefault(lead, []).append(row)
    return found


@functools.cache
def _lead_sums_sql(dialect: str, n: int) -> str:
    mark = "$" if dialect == "postgresql" else "?"  # numbered: the start is used twice
    start = f"{mark}1"
    ids = ", ".join(f"{mark}{i + 2}" for i in range(n))
    return (
        "SELECT lead_id, currency, count(*), min(at), max(at), "
        f"sum(CASE WHEN at >= {start} THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN at >= {start} THEN amount - refunded ELSE 0 END) "
        f"FROM orders WHERE counted AND lead_id IN ({ids}) GROUP BY lead_id, currency"
    )


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
    if not rows:
        return
    time = time_encoder(conn)
    values = [
        (
            a.lead_id, time(a.first_order_at), time(a.last_order_at), a.orders, a.revenue,
            _json_out(a.unconverted), a.orders_total, time(as_of), time(as_of),
        )
        for a in rows
    ]  # fmt: skip
    columns = ("lead_id", *AGGREGATE_COLUMNS)
    execute_many(conn, _upsert_sql(conn, "customers", columns, "lead_id", 1), values)


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
