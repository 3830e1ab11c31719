"""RFM: how recently, how often and how much customers buy, from their orders. Pure.

Orders arrive as Segment e-commerce events, in any order and any number of times; ``fold``
turns them into one ``Order`` per ``order_id``:

- ``Order Completed`` sets the amount, currency and order time once: a repeat is a no-op
  (the first one wins, so a retried event never doubles revenue);
- ``Order Refunded`` subtracts from the order it names, once per refund key (the event's
  ``refund_id``, else its message id); no amount means the whole order. Refunds are in the
  order's currency and never take more than the order's amount. A refund that arrives
  before its order waits in a pending order and applies when the order comes;
- ``Order Cancelled`` removes the order: it counts for nothing.

A customer is a lead with at least one counted order (completed, not cancelled, not
refunded in full). Over a window ending ``now`` (default 365 days, in whole UTC days: it
starts at midnight of the day 365 days ago, ``window_start``):

- recency: days since the customer's last counted order ever. A customer whose orders all
  left the window stays a customer: recency still says how long ago, frequency and
  monetary are 0 and so score 1;
- frequency: counted orders in the window;
- monetary: their net revenue (amount minus refunds) in the base currency. An amount in a
  currency without a rate is never summed: it is kept apart per currency and flagged.

Scores 1–5 are quintiles over all current customers; ``quintile_scores`` states the rule
for ties. The cell ``"545"`` (R, F, M) maps to a named segment through an ordered list of
ranges, the first match winning (``DEFAULT_SEGMENTS``: the common RFM segment map).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

DAY = 86400.0
DEFAULT_WINDOW_DAYS = 365.0
COMPLETED, REFUNDED, CANCELLED = "completed", "refunded", "cancelled"
EVENT_KINDS: Mapping[str, str] = {
    "Order Completed": COMPLETED,
    "Order Refunded": REFUNDED,
    "Order Cancelled": CANCELLED,
}
"""Segment's e-commerce event names, and the kind each is in the fold."""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One order event. ``amount``: the order's amount (completed) or the amount refunded
    (refunded; None: the whole order); ``key`` tells two refunds of one order apart."""

    kind: str  # COMPLETED | REFUNDED | CANCELLED
    order_id: str
    at: float
    amount: float | None = None
    currency: str | None = None
    key: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """An order as folded from its events. ``refunds``: refund key → amount (None: all)."""

    order_id: str
    completed: bool = False
    cancelled: bool = False
    amount: float = 0.0
    currency: str | None = None
    at: float = 0.0  # the order time once completed; until then the first event's time
    refunds: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def refunded(self) -> float:
        """The amount refunded, at most the order's amount."""
        if any(v is None for v in self.refunds.values()):
            return self.amount
        return min(self.amount, sum(v for v in self.refunds.values() if v is not None))

    @property
    def net(self) -> float:
        """What the order is worth now, in its own currency: 0 unless completed and alive."""
        if not self.completed or self.cancelled:
            return 0.0
        return self.amount - self.refunded

    @property
    def counts(self) -> bool:
        """Whether it is one of the customer's orders: completed, not cancelled, not
        refunded in full (a free order with no refund counts)."""
        if not self.completed or self.cancelled:
            return False
        return not (self.refunds and self.refunded >= self.amount)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if not self.completed:
            return "pending"
        if self.refunds:
            return "refunded" if not self.counts else "partly refunded"
        return "completed"


def fold(order: Order | None, event: OrderEvent) -> Order:
    """``order`` (None: not seen yet) with ``event`` applied. Folding the same event twice
    gives the same order as once; completion and refunds commute."""
    current = order if order is not None else Order(event.order_id, at=event.at)
    if event.kind == COMPLETED:
        if current.completed:
            return current
        return replace(
            current, completed=True, amount=event.amount or 0.0, currency=event.currency,
            at=event.at,
        )  # fmt: skip
    if event.kind == REFUNDED:
        if event.key in current.refunds:
            return current
        return replace(current, refunds={**current.refunds, event.key: event.amount})
    if event.kind == CANCELLED:
        return current if current.cancelled else replace(current, cancelled=True)
    raise ValueError(f"unknown order event kind {event.kind!r}")


@dataclass(frozen=True)
class Rates:
    """Conversion to ``base``: ``rates[X]`` is the base amount of one unit of currency X.
    An order without a currency is taken to be in the base currency."""

    base: str = "EUR"
    rates: Mapping[str, float] = field(default_factory=dict)

    def convert(self, amount: float, currency: str | None) -> float | None:
        """``amount`` in the base currency; None when ``currency`` has no rate."""
        code = (currency or self.base).upper()
        if code == self.base:
            return amount
        rate = self.rates.get(code)
        return None if rate is None else amount * rate


@dataclass(frozen=True, slots=True)
class Summary:
    """One customer's orders summed: the window's figures, and the whole history's."""

    first_at: float | None  # first and last counted order, ever
    last_at: float | None
    orders: int  # counted orders in the window
    revenue: float  # their net revenue, base currency
    unconverted: Mapping[str, float]  # net revenue in the window per currency with no rate
    orders_total: int  # counted orders ever

    def recency_days(self, now: float) -> float | None:
        return None if self.last_at is None else max(0.0, (now - self.last_at) / DAY)

    def usual_interval_days(self) -> float | None:
        """The mean gap between the customer's orders ever; None with fewer than two."""
        if self.orders_total < 2 or self.first_at is None or self.last_at is None:
            return None
        return (self.last_at - self.first_at) / DAY / (self.orders_total - 1)


def window_start(now: float, window_days: float) -> float:
    """The window's first instant: midnight UTC starting the day ``window_days`` before
    ``now``. Whole days, so an order placed "a year ago" (365 days before, at any hour)
    is still in a 365-day window however late in the day it is scored."""
    return math.floor((now - window_days * DAY) / DAY) * DAY


def summarize(
    orders: Iterable[Order], rates: Rates, *, now: float, window_days: float = DEFAULT_WINDOW_DAYS
) -> Summary:
    """Sum one customer's orders over the window ending ``now`` (see the module doc)."""
    start = window_start(now, window_days)
    first = last = None
    count = total = 0
    revenue = 0.0
    unconverted: dict[str, float] = {}
    for order in orders:
        if not order.counts:
            continue
        total += 1
        first = order.at if first is None else min(first, order.at)
        last = order.at if last is None else max(last, order.at)
        if order.at < start:
            continue
        count += 1
        base = rates.convert(order.net, order.currency)
        if base is None:
            code = (order.currency or rates.base).upper()
            unconverted[code] = unconverted.get(code, 0.0) + order.net
        else:
            revenue += base
    return Summary(first, last, count, revenue, unconverted, total)


@dataclass(frozen=True, slots=True)
class Figures:
    """What a customer is scored on."""

    recency_days: float
    frequency: int
    monetary: float


def quintile_scores(values: Sequence[float], *, lower_is_better: bool = False) -> list[int]:
    """A score 1–5 for each value, by quintile among ``values``.

    The rule: ``score = 1 + floor(5 · worse / n)``, where ``worse`` is how many values are
    strictly worse (smaller; larger with ``lower_is_better``, as for recency). Equal values
    have the same ``worse``, so the same score: a tie takes the score of its lowest place,
    and a value shared by most customers (one order) stays low instead of filling the
    middle quintiles. Without ties each quintile holds n/5 values (rounded), the best is 5
    (n ≥ 5) and the worst 1.
    """
    if not values:
        return []
    import numpy as np  # here: the ingest writer loads this module, and scores without numpy

    data = np.asarray(values, dtype=float)
    ordered = np.sort(data)
    n = len(data)
    if lower_is_better:
        worse = n - np.searchsorted(ordered, data, side="right")
    else:
        worse = np.searchsorted(ordered, data, side="left")
    return [int(s) for s in 1 + (5 * worse) // n]


@dataclass(frozen=True, slots=True)
class Edges:
    """Each score's lowest value (recency: its highest number of days), scores 2 to 5:
    the same scores as ``quintile_scores`` gave the population they came from, for a value
    scored without it (``Edges.score``). Empty when there were no customers."""

    r: tuple[float, ...] = ()
    f: tuple[float, ...] = ()
    m: tuple[float, ...] = ()

    def score(self, figures: Figures) -> tuple[int, int, int]:
        r = 1 + sum(1 for e in self.r if figures.recency_days <= e)
        f = 1 + sum(1 for e in self.f if figures.frequency >= e)
        m = 1 + sum(1 for e in self.m if figures.monetary >= e)
        return r, f, m

    def to_dict(self) -> dict[str, list[float | None]]:
        """JSON-ready: an edge no customer reached (a score nobody has) is None."""
        return {k: [e if math.isfinite(e) else None for e in v] for k, v in self._spans()}

    def _spans(self) -> tuple[tuple[str, tuple[float, ...]], ...]:
        return (("r", self.r), ("f", self.f), ("m", self.m))


def _edges(values: Sequence[float], scores: Sequence[int], lower_is_better: bool) -> list[float]:
    import numpy as np  # as in quintile_scores

    data, got = np.asarray(values, dtype=float), np.asarray(scores)
    edges = []
    for k in range(2, 6):
        reached = data[got >= k]
        if not len(reached):
            edges.append(-math.inf if lower_is_better else math.inf)
        else:
            edges.append(float(reached.max() if lower_is_better else reached.min()))
    return edges


class Scored(NamedTuple):
    """A customer's scores (a named tuple: a recompute builds one per customer)."""

    r: int
    f: int
    m: int

    @property
    def cell(self) -> str:
        return f"{self.r}{self.f}{self.m}"


def score_customers(figures: Sequence[Figures]) -> tuple[list[Scored], Edges]:
    """Every customer's scores, and the edges they imply."""
    rec = [x.recency_days for x in figures]
    freq = [float(x.frequency) for x in figures]
    mon = [x.monetary for x in figures]
    r = quintile_scores(rec, lower_is_better=True)
    f = quintile_scores(freq)
    m = quintile_scores(mon)
    scored = [Scored(a, b, c) for a, b, c in zip(r, f, m, strict=True)]
    edges = Edges(
        tuple(_edges(rec, r, True)), tuple(_edges(freq, f, False)), tuple(_edges(mon, m, False))
    )
    return scored, edges


Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Segment:
    """A named segment: the cells whose R, F and M each lie in its spans (inclusive)."""

    name: str
    r: Span = (1, 5)
    f: Span = (1, 5)
    m: Span = (1, 5)

    def matches(self, scored: Scored) -> bool:
        return all(
            lo <= v <= hi for v, (lo, hi) in ((scored.r, self.r), (scored.f, self.f),
                                               (scored.m, self.m))
        )  # fmt: skip


DEFAULT_SEGMENTS: tuple[Segment, ...] = (
    Segment("Champions", (4, 5), (4, 5), (4, 5)),
    Segment("Loyal", (3, 5), (3, 5), (3, 5)),
    Segment("Can't lose them", (1, 2), (4, 5), (4, 5)),
    Segment("At risk", (1, 2), (2, 5), (2, 5)),
    Segment("New customers", (5, 5), (1, 1)),
    Segment("Promising", (4, 4), (1, 1)),
    Segment("Potential loyalist", (4, 5)),
    Segment("Need attention", (3, 3), (2, 5), (2, 5)),
    Segment("About to sleep", (3, 3)),
    Segment("Hibernating", (2, 2)),
    Segment("Lost", (1, 1)),
)
"""The common RFM map, ordered so that the first match is the right one: every one of the
125 cells has a segment."""
UNMAPPED = "Unmapped"
"""The segment of a cell no configured segment covers (the config refuses such a map)."""


def segment_of(scored: Scored, segments: Sequence[Segment] = DEFAULT_SEGMENTS) -> str:
    return next((s.name for s in segments if s.matches(scored)), UNMAPPED)


def segment_map(segments: Sequence[Segment] = DEFAULT_SEGMENTS) -> dict[Scored, str]:
    """Every one of the 125 cells' segment, looked up instead of matched per customer."""
    cells = (Scored(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6))
    return {cell: segment_of(cell, segments) for cell in cells}


def uncovered_cells(segments: Sequence[Segment]) -> list[str]:
    """The cells no segment matches, e.g. ``["111", "112"]``."""
    cells = (Scored(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6))
    return [c.cell for c in cells if segment_of(c, segments) == UNMAPPED]


@dataclass(frozen=True)
class MoveRule:
    """Which segment changes deserve an alert: from one of ``source`` into one of ``into``."""

    source: frozenset[str] = frozenset({"Champions", "Loyal"})
    into: frozenset[str] = frozenset({"At risk", "Can't lose them"})

    def alerts(self, before: str | None, after: str) -> bool:
        return before in self.source and after in self.into
