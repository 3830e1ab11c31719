"""scoring.rfm: the order fold, currency, window figures, quintile scores and segments."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.rfm import (
    CANCELLED,
    COMPLETED,
    DAY,
    DEFAULT_SEGMENTS,
    REFUNDED,
    Figures,
    MoveRule,
    Order,
    OrderEvent,
    Rates,
    Scored,
    Segment,
    fold,
    quintile_scores,
    score_customers,
    segment_of,
    summarize,
    uncovered_cells,
    window_start,
)

fast = settings(max_examples=60, deadline=None)
NOW = 1_780_000_000.0
EUR = Rates("EUR", {"GBP": 1.2})

amounts = st.floats(min_value=0, max_value=1e6, allow_nan=False)
events = st.one_of(
    st.builds(
        OrderEvent, kind=st.just(COMPLETED), order_id=st.just("o1"),
        at=st.floats(0, 1e9), amount=amounts, currency=st.sampled_from(["EUR", "GBP", None]),
    ),
    st.builds(
        OrderEvent, kind=st.just(REFUNDED), order_id=st.just("o1"), at=st.floats(0, 1e9),
        amount=st.one_of(st.none(), amounts), key=st.sampled_from(["r1", "r2", "r3"]),
    ),
    st.builds(OrderEvent, kind=st.just(CANCELLED), order_id=st.just("o1"), at=st.floats(0, 1e9)),
)  # fmt: skip


def folded(evs: list[OrderEvent]) -> Order | None:
    order = None
    for e in evs:
        order = fold(order, e)
    return order


@fast
@given(st.lists(events, min_size=1, max_size=8), st.data())
def test_fold_counts_each_event_once(evs: list[OrderEvent], data: st.DataObject) -> None:
    """Any event delivered again, anywhere later in the stream, changes nothing."""
    once = folded(evs)
    repeats = data.draw(st.lists(st.sampled_from(evs), max_size=5))
    again = folded([*evs, *repeats])
    assert once is not None
    assert again is not None
    assert (again.net, again.counts, again.status) == (once.net, once.counts, once.status)


@fast
@given(st.lists(events, min_size=1, max_size=8), st.randoms())
def test_refunds_and_completion_commute(evs: list[OrderEvent], rnd: object) -> None:
    """With one Completed (and one amount per refund key), the net does not depend on the
    order events arrive in."""
    completed = [e for e in evs if e.kind == COMPLETED][:1]
    refunds = {e.key: e for e in reversed(evs) if e.kind == REFUNDED}
    others = [*refunds.values(), *(e for e in evs if e.kind == CANCELLED)]
    shuffled = others + completed
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = folded(completed + others), folded(shuffled)
    assert a is not None
    assert b is not None
    assert a.net == pytest.approx(b.net)
    assert 0.0 <= a.net <= a.amount


def test_refund_subtracts_from_the_order_it_names() -> None:
    order = folded([
        OrderEvent(COMPLETED, "o1", 10.0, 600.0, "EUR"),
        OrderEvent(REFUNDED, "o1", 20.0, 100.0, key="r1"),
        OrderEvent(REFUNDED, "o1", 21.0, 100.0, key="r1"),  # the same refund again
        OrderEvent(COMPLETED, "o1", 30.0, 900.0, "EUR"),  # a repeated Completed: no-op
    ])  # fmt: skip
    assert order is not None
    assert (order.net, order.status, order.at) == (500.0, "partly refunded", 10.0)
    whole = fold(order, OrderEvent(REFUNDED, "o1", 40.0, None, key="r2"))
    assert (whole.net, whole.counts, whole.status) == (0.0, False, "refunded")
    gone = fold(order, OrderEvent(CANCELLED, "o1", 50.0))
    assert (gone.net, gone.counts, gone.status) == (0.0, False, "cancelled")


def test_currency_without_a_rate_is_kept_apart() -> None:
    orders = [
        folded([OrderEvent(COMPLETED, "a", NOW - DAY, 100.0, "EUR")]),
        folded([OrderEvent(COMPLETED, "b", NOW - DAY, 100.0, "GBP")]),
        folded([OrderEvent(COMPLETED, "c", NOW - DAY, 70.0, "JPY")]),
        folded([OrderEvent(COMPLETED, "d", NOW - DAY, 5.0, None)]),  # no currency: the base
    ]
    summary = summarize([o for o in orders if o], EUR, now=NOW)
    assert summary.revenue == pytest.approx(225.0)
    assert dict(summary.unconverted) == {"JPY": 70.0}
    assert summary.orders == 4


@fast
@given(st.integers(1, 3650), st.integers(-5, 5), st.floats(0, DAY - 1))
def test_window_edge_is_inclusive_and_recency_survives_it(
    window: int, shift: int, hour: float
) -> None:
    """The window starts at a midnight, included; an order before it still gives recency."""
    now = NOW + hour
    start = window_start(now, window)
    assert start % DAY == 0
    assert now - (window + 1) * DAY < start <= now - window * DAY
    at = start + shift
    order = folded([OrderEvent(COMPLETED, "o", at, 25.0, "EUR")])
    assert order is not None
    summary = summarize([order], EUR, now=now, window_days=window)
    assert summary.orders == (1 if shift >= 0 else 0)
    assert summary.revenue == (25.0 if shift >= 0 else 0.0)
    assert summary.recency_days(now) == pytest.approx((now - at) / DAY)


def test_an_order_a_year_ago_is_in_the_window_all_day() -> None:
    order = folded([OrderEvent(COMPLETED, "o", NOW - 365 * DAY, 25.0, "EUR")])
    assert order is not None
    for later in (0.0, 3600.0, DAY - (NOW % DAY) - 1):
        assert summarize([order], EUR, now=NOW + later).orders == 1


def test_usual_interval() -> None:
    orders = [folded([OrderEvent(COMPLETED, f"o{i}", NOW - i * 20 * DAY, 1.0)]) for i in range(4)]
    summary = summarize([o for o in orders if o], EUR, now=NOW)
    assert summary.usual_interval_days() == pytest.approx(20.0)


values = st.lists(st.integers(0, 20).map(float), min_size=1, max_size=60)


@fast
@given(values, st.booleans())
def test_quintiles_equal_values_equal_scores_and_monotone(xs: list[float], low: bool) -> None:
    scores = quintile_scores(xs, lower_is_better=low)
    assert all(1 <= s <= 5 for s in scores)
    for (x, s), (y, t) in itertools.combinations(zip(xs, scores, strict=True), 2):
        if x == y:
            assert s == t
        better = x < y if low else x > y
        if better:
            assert s >= t


@fast
@given(st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=200, unique=True))
def test_distinct_values_fill_quintiles_evenly(xs: list[float]) -> None:
    scores = quintile_scores(xs)
    n = len(xs)
    for k in range(1, 6):
        assert abs(scores.count(k) - n / 5) < 1 + 1e-9
    assert scores[xs.index(max(xs))] == 5
    assert scores[xs.index(min(xs))] == 1


def test_quintile_edges_by_hand() -> None:
    assert quintile_scores([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Most customers bought once: they share the lowest place's score.
    assert quintile_scores([1, 1, 1, 1, 1, 1, 2, 2, 3, 9]) == [1] * 6 + [4, 4, 5, 5]
    assert quintile_scores([0.5, 3, 3, 90], lower_is_better=True) == [4, 2, 2, 1]
    assert quintile_scores([7.0]) == [1]


@fast
@given(st.lists(st.tuples(st.floats(0, 400), st.integers(0, 9), st.floats(0, 1e4)), min_size=1,
                max_size=40))  # fmt: skip
def test_edges_reproduce_the_scores(rows: list[tuple[float, int, float]]) -> None:
    figures = [Figures(r, f, m) for r, f, m in rows]
    scored, edges = score_customers(figures)
    for fig, s in zip(figures, scored, strict=True):
        assert edges.score(fig) == (s.r, s.f, s.m)


def test_every_cell_has_a_default_segment() -> None:
    assert uncovered_cells(DEFAULT_SEGMENTS) == []
    assert uncovered_cells([Segment("Champions", (4, 5), (4, 5), (4, 5))])[:2] == ["111", "112"]


@pytest.mark.parametrize(
    ("cell", "segment"),
    [
        ("555", "Champions"), ("445", "Champions"), ("344", "Loyal"), ("255", "Can't lose them"),
        ("155", "Can't lose them"), ("133", "At risk"), ("121", "Lost"), ("111", "Lost"),
        ("211", "Hibernating"), ("511", "New customers"), ("411", "Promising"),
        ("522", "Potential loyalist"), ("322", "Need attention"), ("311", "About to sleep"),
    ],
)  # fmt: skip
def test_default_segments(cell: str, segment: str) -> None:
    assert segment_of(Scored(*(int(c) for c in cell))) == segment


def test_move_rule() -> None:
    rule = MoveRule()
    assert rule.alerts("Champions", "At risk")
    assert rule.alerts("Loyal", "Can't lose them")
    assert not rule.alerts(None, "At risk")
    assert not rule.alerts("Lost", "At risk")
