"""The ingest's order hook: order events folded into ``orders`` and their customers re-summed,
in the ingest's own transaction (``Pipeline._apply`` calls ``record_orders`` once per group).

Only order events touch the RFM tables: a group without one, and without a merge of a lead
that has orders, costs nothing but a scan of its event names. A group with some reads the
orders it names (one ``SELECT … IN``), writes them back, then re-sums only the customers it
touched from their own orders (never a rescan of every order). Scores and segments are the
recompute's (``bot.jobs.rfm``), off the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bot.ingest.inbound import InboundEvent
from bot.ingest.order_fields import order_event
from config.rfm import Rfm
from scoring.rfm import EVENT_KINDS, Order, OrderEvent, fold, window_start
from storage import customers as repo


def record_orders(
    conn: Connection,
    counted: Sequence[tuple[InboundEvent, str]],
    merges: Sequence[tuple[str, str]],
    rfm: Rfm,
    now: float,
) -> None:
    """Fold the group's new order events (``counted``: accepted events and their leads)
    and follow its lead merges (source → target)."""
    moved = _merged_customers(conn, merges)
    target = _follow(merges)
    events: list[tuple[str, OrderEvent]] = []
    for event, lead in counted:
        if event.type != "track" or event.name not in EVENT_KINDS:
            continue
        parsed = order_event(
            event.name, event.properties, at=event.timestamp, message_id=event.message_id
        )
        if parsed is not None:
            events.append((target(lead), parsed))
    if not events and not moved:
        return
    touched = {target(dst) for _, dst in moved}
    if events:
        touched |= _fold(conn, events, rfm, now)
    _resum(conn, touched, rfm, now)


def _merged_customers(conn: Connection, merges: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The merges whose source has orders; their orders move to the target."""
    if not merges:
        return []
    sources = [src for src, _ in merges]
    query = select(repo.ORDERS.c.lead_id).where(repo.ORDERS.c.lead_id.in_(sources)).distinct()
    with_orders = set(conn.execute(query).scalars())
    moved = [(src, dst) for src, dst in merges if src in with_orders]
    for src, dst in moved:
        repo.move_orders(conn, source=src, target=dst)
    return moved


def _follow(merges: Sequence[tuple[str, str]]) -> Callable[[str], str]:
    """A lead id → the lead it ends up in after the group's merges."""
    into = dict(merges)

    def target(lead: str) -> str:
        seen: set[str] = set()
        while lead in into and lead not in seen:
            seen.add(lead)
            lead = into[lead]
        return lead

    return target


def _fold(
    conn: Connection, events: Sequence[tuple[str, OrderEvent]], rfm: Rfm, now: float
) -> set[str]:
    """Apply the events to their orders and store them; the leads whose orders changed."""
    stored = repo.load_orders(conn, (e.order_id for _, e in events))
    current: dict[str, tuple[str, Order]] = dict(stored)
    changed: set[str] = set()
    for lead, event in events:
        owner, order = current.get(event.order_id, (lead, None))
        folded = fold(order, event)
        if folded is not order:
            current[event.order_id] = (owner, folded)
            changed.add(event.order_id)
    rows = []
    for order_id in sorted(changed):
        owner, order = current[order_id]
        rows.append((owner, order, rfm.rates.convert(order.net, order.currency)))
    repo.save_orders(conn, rows, at=now)
    return {owner for owner, _, _ in rows}


def _resum(conn: Connection, leads: set[str], rfm: Rfm, now: float) -> None:
    """The leads' sums from their counted orders (``scoring.rfm.summarize``'s figures, by one
    GROUP BY), converted with the configured rates."""
    if not leads:
        return
    sums = repo.lead_sums(conn, leads, start=window_start(now, rfm.window_days))
    rows = []
    for lead in sorted(leads):
        parts = sums.get(lead, [])
        revenue, apart = 0.0, dict[str, float]()
        for currency, _, _, _, _, net in parts:
            base = rfm.rates.convert(net, currency)
            if base is None:
                code = (currency or rfm.currency).upper()
                apart[code] = apart.get(code, 0.0) + net
            else:
                revenue += base
        rows.append(
            repo.Aggregates(
                lead,
                min((p[2] for p in parts), default=None),
                max((p[3] for p in parts), default=None),
                sum(p[4] for p in parts),
                revenue,
                apart,
                sum(p[1] for p in parts),
            )
        )
    repo.save_aggregates(conn, rows, as_of=now)
