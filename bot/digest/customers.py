"""The digest's customers section (RFM): customers per segment with the moves of the
period, revenue at risk (At risk and Can't lose them: their revenue in the window), and
the top champions. ``section`` reads it in the digest's transaction; None when there are
no scored customers, so a leads-only install sees no change. Every renderer lays out
``lines``, plain text that each escapes its own way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from config.rfm import Rfm
from storage import customers as repo

AT_RISK = ("At risk", "Can't lose them")
CHAMPIONS = "Champions"
TOP = 5
TITLE = "Customers (RFM)"


@dataclass(frozen=True, slots=True)
class SegmentRow:
    name: str
    customers: int
    revenue: float
    moved_in: int  # from another segment, in the period
    moved_out: int
    new: int  # first segment, in the period


@dataclass(frozen=True, slots=True)
class Champion:
    id: str
    shown: str  # name, else e-mail, else id (raw: renderers escape it)
    orders: int
    revenue: float


@dataclass(frozen=True, slots=True)
class CustomersSection:
    currency: str
    segments: tuple[SegmentRow, ...]  # the config's order; empty segments left out
    at_risk_revenue: float
    at_risk_customers: int
    champions: tuple[Champion, ...]

    @property
    def customers(self) -> int:
        return sum(s.customers for s in self.segments)

    @property
    def moves(self) -> int:
        return sum(s.moved_in for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "segments": [
                [s.name, s.customers, s.revenue, s.moved_in, s.moved_out, s.new]
                for s in self.segments
            ],
            "at_risk_revenue": self.at_risk_revenue,
            "at_risk_customers": self.at_risk_customers,
            "champions": [[c.id, c.shown, c.orders, c.revenue] for c in self.champions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CustomersSection:
        return cls(
            str(data["currency"]),
            tuple(
                SegmentRow(str(n), int(c), float(r), int(i), int(o), int(w))
                for n, c, r, i, o, w in data["segments"]
            ),
            float(data["at_risk_revenue"]),
            int(data["at_risk_customers"]),
            tuple(Champion(str(i), str(s), int(o), float(r)) for i, s, o, r in data["champions"]),
        )


def section(conn: Connection, rfm: Rfm, *, start: float, end: float) -> CustomersSection | None:
    """The section for the period ``start <= at < end`` (unix seconds); None without
    scored customers."""
    totals = {seg: (n, rev) for seg, n, rev in repo.segment_totals(conn) if seg is not None}
    if not any(n for n, _ in totals.values()):
        return None
    moves = [m for m in repo.moves_since(conn, since=start) if m["at"] < end]
    names = list(dict.fromkeys([*(s.name for s in rfm.segments), *totals]))
    rows = []
    for name in names:
        n, revenue = totals.get(name, (0, 0.0))
        row = SegmentRow(
            name, n, round(revenue, 2),
            sum(1 for m in moves if m["to"] == name and m["from"] is not None),
            sum(1 for m in moves if m["from"] == name),
            sum(1 for m in moves if m["to"] == name and m["from"] is None),
        )  # fmt: skip
        if row.customers or row.moved_out:
            rows.append(row)
    champions = sorted(
        (c for c in repo.scored_customers(conn) if c["segment"] == CHAMPIONS),
        key=lambda c: (-c["revenue"], c["lead_id"]),
    )[:TOP]
    return CustomersSection(
        rfm.currency, tuple(rows),
        round(sum(totals.get(s, (0, 0.0))[1] for s in AT_RISK), 2),
        sum(totals.get(s, (0, 0))[0] for s in AT_RISK),
        tuple(
            Champion(c["lead_id"], c.get("name") or c["email"] or c["lead_id"], c["orders"],
                     round(c["revenue"], 2))
            for c in champions
        ),
    )  # fmt: skip


def segment_line(s: SegmentRow) -> str:
    moved = [
        f"+{s.moved_in} in" if s.moved_in else "",
        f"−{s.moved_out} out" if s.moved_out else "",
        f"{s.new} new" if s.new else "",
    ]
    shown = ", ".join(m for m in moved if m)
    return f"{s.name}: {s.customers}" + (f" ({shown})" if shown else "")


def lines(c: CustomersSection) -> list[str]:
    """Plain lines: the totals, revenue at risk, segments, top champions."""
    out = [
        f"{c.customers} customers, {c.moves} moved between segments in the period",
        f"Revenue at risk: {c.at_risk_revenue:,.0f} {c.currency} "
        f"({c.at_risk_customers} customers At risk or Can't lose them)",
        "Segments: " + "; ".join(segment_line(s) for s in c.segments),
    ]
    if c.champions:
        top = ", ".join(f"{ch.shown} ({ch.revenue:,.0f} {c.currency})" for ch in c.champions)
        out.append(f"Top champions: {top}")
    return out
