"""The RFM recompute: every customer's window sums, quintile scores, cell and segment, off the
hot path (the scheduler's ``rfm`` job every 15 minutes, ``leadbot rfm --recompute``, after
``leadbot import orders``, and before ``leadbot customer``/``rfm`` read stale scores).

One read transaction takes the window sums (a GROUP BY over the orders: orders age out of
the window here, not on ingest) and every customer row; the scores are computed in Python
(``scoring.rfm``); then the rows that changed are written in chunks of ``CHUNK``, one short
transaction each, so the ingest never waits long. A customer the ingest re-summed after the
read is left for the next run (its row is stale, so it will be). Each segment change gets a
history row with the figures that explain it.

Part B hooks here: ``Recomputed.moves`` lists every change with ``alert`` set for the
moves the config's ``rfm.alert_moves`` names (Champions/Loyal → At risk/Can't lose them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from config.rfm import Rfm
from scoring.rfm import DAY, Edges, Figures, score_customers, segment_map, window_start
from storage import customers as repo
from storage import locks
from storage.offloop import Worker

CHUNK = 500  # customer rows per write transaction: lead locks per chunk, as the decay sweep
NONE: tuple[int, float, dict[str, float]] = (0, 0.0, {})  # no order in the window


@dataclass(frozen=True, slots=True)
class Move:
    """A customer's change of segment (``source`` None: its first), and why."""

    lead_id: str
    source: str | None
    to: str
    cell: str
    recency_days: float  # days since the last order
    interval_days: float | None  # the usual days between orders (None: a single order)
    revenue: float  # net revenue in the window, base currency
    alert: bool  # a move the config's alert_moves names


@dataclass(frozen=True)
class Recomputed:
    customers: int  # with at least one counted order
    written: int  # rows rewritten (changed sums or scores)
    skipped: int  # re-summed by the ingest meanwhile: the next run scores them
    moves: list[Move]
    edges: Edges
    seconds: float

    def summary(self) -> str:
        alerts = sum(1 for m in self.moves if m.alert)
        return (
            f"{self.customers} customers scored, {self.written} rows written, "
            f"{len(self.moves)} segment changes ({alerts} to alert) in {self.seconds:.2f} s"
        )


# Called in each chunk's write transaction with the moves written there: what it writes
# (the customer alerts' outbox rows) commits or rolls back with the segment change.
OnMoves = Callable[[Connection, Sequence[Move]], None]


@dataclass
class _Plan:
    rows: list[dict[str, Any]] = field(default_factory=list)  # keyed by column, lead_id first
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    moves: dict[str, Move] = field(default_factory=dict)
    read_at: dict[str, float | None] = field(default_factory=dict)
    on_moves: OnMoves | None = None


async def recompute_rfm(
    engine: AsyncEngine, rfm: Rfm, *, now: float, on_moves: OnMoves | None = None
) -> Recomputed:
    """Score every customer as of ``now``; write what changed. See the module doc."""
    started = time.perf_counter()
    async with Worker(engine) as worker:
        # Read and plan in the worker's thread (the cyclic GC paused there): at 100,000
        # customers the Python takes seconds, which must not block the caller's loop.
        plan, customers, edges = await worker.read(_read_and_plan, rfm, now)
        plan.on_moves = on_moves
        written = 0
        for start in range(0, len(plan.rows), CHUNK):
            written += await worker.write(_write, plan, plan.rows[start : start + CHUNK])
        seconds = time.perf_counter() - started
        moves = [m for m in plan.moves.values() if m.lead_id not in plan.read_at]
        await worker.write(_log_run, now, customers, len(moves), seconds, edges)
    skipped = len(plan.read_at)
    return Recomputed(customers, written, skipped, moves, edges, seconds)


def _read_and_plan(conn: Connection, rfm: Rfm, now: float) -> tuple[_Plan, int, Edges]:
    stored = repo.customers(conn)
    sums = repo.window_sums(conn, start=window_start(now, rfm.window_days))
    return _plan(stored, _convert(sums, rfm), rfm, now)


Sums = tuple[int, float, dict[str, float]]  # orders, base revenue, net per unconvertible currency


def _convert(sums: Mapping[str, tuple[int, Mapping[str, float]]], rfm: Rfm) -> dict[str, Sums]:
    """Window sums in the base currency, with the rates configured now; amounts in a
    currency without a rate kept apart."""
    converted: dict[str, Sums] = {}
    for lead, (count, nets) in sums.items():
        revenue, apart = 0.0, {}
        for currency, net in nets.items():
            base = rfm.rates.convert(net, currency or None)
            if base is None:
                apart[currency.upper()] = net
            else:
                revenue += base
        converted[lead] = (count, revenue, apart)
    return converted


def _ts(value: Any) -> float | None:
    return None if value is None else value.timestamp()


def _plan(
    stored: Sequence[repo.Stored], sums: Mapping[str, Sums], rfm: Rfm, now: float
) -> tuple[_Plan, int, Edges]:
    """The rows to write and the changes to record; (plan, customers scored, edges)."""
    active = [c for c in stored if c.last_order_at is not None]
    figures = [
        Figures(max(0.0, (now - (c.last_order_at or now)) / DAY), *sums.get(c.lead_id, NONE)[:2])
        for c in active
    ]
    scored, edges = score_customers(figures)
    segments = segment_map(rfm.segments)
    plan = _Plan()
    updated = {c.lead_id: c.updated_at for c in stored}
    for c, fig, s in zip(active, figures, scored, strict=True):
        segment = segments[s]
        row: dict[str, Any] = {
            "lead_id": c.lead_id, "orders": fig.frequency, "revenue": fig.monetary,
            "unconverted": dict(sums.get(c.lead_id, NONE)[2]), "r": s.r, "f": s.f,
            "m": s.m, "cell": s.cell, "segment": segment,
            "segment_since": c.segment_since if segment == c.segment else now,
        }  # fmt: skip
        if segment != c.segment:
            interval = _interval(c)
            move = Move(
                c.lead_id, c.segment, segment, s.cell, fig.recency_days, interval,
                fig.monetary, rfm.moves.alerts(c.segment, segment),
            )  # fmt: skip
            plan.moves[c.lead_id] = move
            plan.changes[c.lead_id] = {
                "lead_id": c.lead_id, "at": now, "from_segment": c.segment, "to_segment": segment,
                "cell": s.cell, "recency_days": fig.recency_days, "interval_days": interval,
                "revenue": fig.monetary,
            }  # fmt: skip
        if _changed(c, row):
            plan.rows.append(row)
    for c in stored:  # every order cancelled or refunded: no longer a customer
        if c.last_order_at is None and (c.segment is not None or c.orders or c.revenue):
            plan.rows.append({
                "lead_id": c.lead_id, "orders": 0, "revenue": 0.0, "unconverted": {},
                "r": None, "f": None, "m": None, "cell": None, "segment": None,
                "segment_since": None,
            })  # fmt: skip
    for row in plan.rows:
        row["as_of"] = row["scored_at"] = now
        plan.read_at[row["lead_id"]] = updated.get(row["lead_id"])
    return plan, len(active), edges


def _interval(c: repo.Stored) -> float | None:
    if c.orders_total < 2 or c.first_order_at is None or c.last_order_at is None:
        return None
    return (c.last_order_at - c.first_order_at) / DAY / (c.orders_total - 1)


def _changed(c: repo.Stored, row: Mapping[str, Any]) -> bool:
    """Whether the row differs from what is stored (the cell covers r, f and m)."""
    return (
        c.cell != row["cell"]
        or c.segment != row["segment"]
        or c.orders != row["orders"]
        or _moved(c.revenue, row["revenue"])
        or set(c.unconverted) != set(row["unconverted"])
        or any(_moved(v, row["unconverted"][k]) for k, v in c.unconverted.items())
    )


def _moved(before: float, after: float) -> bool:
    # Relative: PostgreSQL's parallel SUM adds in any order, so the last bits vary.
    return abs(before - after) > 1e-9 * max(1.0, abs(before))


def _write(conn: Connection, plan: _Plan, rows: Sequence[dict[str, Any]]) -> int:
    """One chunk: rows the ingest did not re-sum since the read, and their history."""
    leads = [row["lead_id"] for row in rows]
    if locks.enter(conn):
        locks.lock_leads(conn, leads)
    now_updated = {
        lead: _ts(at)
        for lead, at in conn.execute(
            select(repo.CUSTOMERS.c.lead_id, repo.CUSTOMERS.c.updated_at).where(
                repo.CUSTOMERS.c.lead_id.in_(leads)
            )
        )
    }
    kept = [row for row in rows if now_updated.get(row["lead_id"]) == plan.read_at[row["lead_id"]]]
    repo.save_scores(conn, kept)
    repo.add_changes(
        conn, [plan.changes[r["lead_id"]] for r in kept if r["lead_id"] in plan.changes]
    )
    if plan.on_moves is not None:
        plan.on_moves(conn, [plan.moves[r["lead_id"]] for r in kept if r["lead_id"] in plan.moves])
    for row in kept:
        del plan.read_at[row["lead_id"]]
    return len(kept)


def _log_run(
    conn: Connection, now: float, customers: int, moved: int, seconds: float, edges: Edges
) -> None:
    repo.add_run(
        conn, at=now, customers=customers, moved=moved, seconds=seconds, edges=edges.to_dict()
    )
