"""Customer look-ups, chat-agnostic: one customer's RFM report and the segment table, as data
(``leadbot customer`` / ``leadbot rfm`` print them; the chat adapters render them).

Scores are the last recompute's (``bot.jobs.rfm``); ``fresh_scores`` runs one first when
some customer changed since, so a look-up never shows a customer's new orders beside its
old scores.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.chat.alerts import iso
from bot.chat.lookup import named_lead
from bot.jobs.rfm import OnMoves, Recomputed, recompute_rfm
from config.rfm import Rfm
from scoring.rfm import DAY
from storage import customers as repo
from storage.leads import find_lead

WEEK = 7 * DAY


async def fresh_scores(
    engine: AsyncEngine, rfm: Rfm, *, now: float, on_moves: OnMoves | None = None
) -> Recomputed | None:
    """Recompute when a customer changed since its last scores; None when all are fresh.
    ``on_moves`` as for ``recompute_rfm`` (the alerts of the moves this run finds)."""
    async with engine.connect() as conn:
        stale = await conn.run_sync(repo.stale)
    return await recompute_rfm(engine, rfm, now=now, on_moves=on_moves) if stale else None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


async def customer_report(
    session: AsyncSession, *, key: str, rfm: Rfm, now: float
) -> dict[str, Any] | None:
    """One customer (an id, e-mail, userId or name, as ``leadbot lead`` finds leads); None
    when no lead matches. A lead without orders has ``segment`` None and no orders."""
    lead = await find_lead(session, key=key) or await named_lead(session, key=key)
    if lead is None:
        return None
    conn = await session.connection()
    row = await conn.run_sync(repo.customer, lead.id) or {}
    orders = await conn.run_sync(repo.customer_orders, lead.id)
    history = await conn.run_sync(repo.segment_history, lead.id)
    last = row.get("last_order_at")
    total, first = row.get("orders_total", 0), row.get("first_order_at")
    interval = (last - first) / DAY / (total - 1) if total > 1 and last and first else None
    return {
        "id": lead.id,
        "email": lead.email,
        "name": lead.name,
        "company": lead.company,
        "r": row.get("r"),
        "f": row.get("f"),
        "m": row.get("m"),
        "cell": row.get("cell"),
        "segment": row.get("segment"),
        "since": _iso(row.get("segment_since")),
        "recency_days": None if last is None else round(max(0.0, now - last) / DAY, 1),
        "orders": row.get("orders", 0),
        "revenue": round(row.get("revenue", 0.0), 2),
        "currency": rfm.currency,
        "unconverted": row.get("unconverted", {}),
        "window_days": rfm.window_days,
        "orders_ever": total,
        "usual_interval_days": _round(interval, 1),
        "first_order_at": _iso(first),
        "last_order_at": _iso(last),
        "scored_at": _iso(row.get("scored_at")),
        "order_list": [{**o, "at": _iso(o["at"])} for o in orders],
        "segment_history": [{**h, "at": _iso(h["at"])} for h in history],
    }


async def segment_table(session: AsyncSession, *, rfm: Rfm, now: float) -> dict[str, Any]:
    """Customers and revenue per segment (in the config's order), moves in and out over the
    last 7 days, and every customer with their scores."""
    conn = await session.connection()
    totals = {seg: (n, revenue) for seg, n, revenue in await conn.run_sync(repo.segment_totals)}
    moves = await conn.run_sync(lambda c: repo.moves_since(c, since=now - WEEK))
    run = await conn.run_sync(repo.last_run)
    rows: list[dict[str, Any]] = []
    names = list(dict.fromkeys(s.name for s in rfm.segments))
    names += [s for s in totals if s is not None and s not in names]  # from an older map
    for name in names:
        n, revenue = totals.get(name, (0, 0.0))
        rows.append({
            "segment": name, "customers": n, "revenue": round(revenue, 2),
            "moved_in": sum(1 for m in moves if m["to"] == name and m["from"] is not None),
            "moved_out": sum(1 for m in moves if m["from"] == name),
            "new": sum(1 for m in moves if m["to"] == name and m["from"] is None),
        })  # fmt: skip
    customers = await conn.run_sync(repo.scored_customers)
    apart: dict[str, float] = {}
    for c in customers:
        for currency, amount in (c["unconverted"] or {}).items():
            apart[currency] = round(apart.get(currency, 0.0) + amount, 2)
    return {
        "as_of": _iso(run["at"]) if run else None,
        "currency": rfm.currency,
        "window_days": rfm.window_days,
        "customers": sum(r["customers"] for r in rows),
        "revenue": round(sum(r["revenue"] for r in rows), 2),
        "unconverted": apart,
        "segments": rows,
        "edges": run["edges"] if run else None,
        "scores": [
            {
                "id": c["lead_id"], "email": c["email"], "r": c["r"], "f": c["f"], "m": c["m"],
                "cell": c["cell"], "segment": c["segment"], "since": _iso(c["segment_since"]),
                "orders": c["orders"], "revenue": round(c["revenue"], 2),
                "last_order_at": _iso(c["last_order_at"]),
            }
            for c in customers
            if c["segment"] is not None
        ],
    }  # fmt: skip
