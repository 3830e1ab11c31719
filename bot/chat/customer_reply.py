"""``/lead customer EMAIL|ID``, chat-agnostic: the customer's RFM report as a typed
``CustomerCard`` on the ``Reply`` (data, never markup), which ``bot/slack/customer_blocks.py``
and ``bot/teams/customer_card.py`` render. Scores are the last recompute's (the ``rfm``
job, every 15 minutes): a look-up never recomputes, so it never takes a move, and its alert,
away from the job that queues alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.chat.customers import customer_report
from bot.chat.messages import Reply
from bot.chat.plain import clean
from config.rfm import Rfm

LAST_ORDERS = 5
LAST_MOVES = 5


@dataclass(frozen=True, slots=True)
class OrderLine:
    order_id: str
    at: str  # ISO 8601 UTC
    amount: float
    currency: str | None
    status: str
    refunded: float = 0.0


@dataclass(frozen=True, slots=True)
class MoveLine:
    at: str  # ISO 8601 UTC
    source: str | None  # None: the customer's first segment
    to: str
    cell: str


@dataclass(frozen=True, slots=True)
class CustomerCard:
    """One customer's RFM report. Lead data is raw: each renderer escapes it."""

    id: str
    email: str | None
    name: str | None
    company: str | None
    r: int | None
    f: int | None
    m: int | None
    cell: str | None
    segment: str | None
    since: str | None
    recency_days: float | None
    orders: int
    revenue: float
    currency: str
    window_days: float
    usual_interval_days: float | None
    unconverted: tuple[tuple[str, float], ...]
    last_orders: tuple[OrderLine, ...]
    history: tuple[MoveLine, ...]  # newest first
    orders_ever: int = 0

    @property
    def shown(self) -> str:
        return self.name or self.email or self.id

    @property
    def window(self) -> str:
        return "the last year" if self.window_days == 365 else f"{self.window_days:g} days"

    @classmethod
    def from_report(cls, r: Mapping[str, Any]) -> CustomerCard:
        orders = tuple(
            OrderLine(
                str(o["order_id"]), str(o["at"]), float(o["amount"]), o.get("currency"),
                str(o["status"]), float(o.get("refunded") or 0.0),
            )
            for o in r["order_list"][:LAST_ORDERS]
        )  # fmt: skip
        history = tuple(
            MoveLine(str(h["at"]), h.get("from"), str(h["to"]), str(h.get("cell") or ""))
            for h in reversed(r["segment_history"][-LAST_MOVES:])
        )
        return cls(
            r["id"], r.get("email"), r.get("name"), r.get("company"), r.get("r"), r.get("f"),
            r.get("m"), r.get("cell"), r.get("segment"), r.get("since"), r.get("recency_days"),
            int(r.get("orders") or 0), float(r.get("revenue") or 0.0), str(r["currency"]),
            float(r["window_days"]), r.get("usual_interval_days"),
            tuple(sorted((r.get("unconverted") or {}).items())), orders, history,
            int(r.get("orders_ever") or 0),
        )  # fmt: skip


def summary(card: CustomerCard) -> str:
    """The reply's plain text: one line a notification can show."""
    who = card.shown + (f" ({card.company})" if card.company else "")
    recency = "" if card.recency_days is None else f", last order {card.recency_days:g} days ago"
    return clean(
        f"{who} — {card.segment} (R{card.r} F{card.f} M{card.m}){recency}; "
        f"{card.orders} orders, {card.revenue:,.2f} {card.currency} in {card.window}"
    )


async def customer_reply(session: AsyncSession, *, key: str, rfm: Rfm, now: float) -> Reply:
    """The reply for a key: the card, or a clear answer for no such lead / not a customer."""
    report = await customer_report(session, key=key, rfm=rfm, now=now)
    if report is None:
        return Reply(text=f"No lead or customer matches {clean(key)!r}.", error=True)
    if report["segment"] is None:
        who = clean(report["name"] or report["email"] or report["id"])
        why = "has no scored orders yet" if report["order_list"] else "has no orders"
        return Reply(text=f"{who} is a lead but not a customer: it {why}.", error=True)
    card = CustomerCard.from_report(report)
    return Reply(text=summary(card), customer=card)
