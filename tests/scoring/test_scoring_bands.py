"""The probability link and the band edges: properties, then concrete cases."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import Band, BandSpec, Model, Threshold
from scoring.bands import Thresholds, band_for, percentile, resolve_thresholds
from scoring.engine import probability

fast = settings(max_examples=60, deadline=None)
totals = st.floats(-1_000.0, 1_000.0)
links = st.builds(
    lambda ppl, intercept: Model(rules=(), points_per_logodds=ppl, intercept=intercept),
    st.floats(5.0, 100.0),
    st.floats(-10.0, 10.0),
)
score_lists = st.lists(st.floats(-100.0, 200.0), min_size=1, max_size=60)


@fast
@given(links, totals, totals)
def test_probability_is_monotone_in_the_total(model: Model, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert probability(model, low) <= probability(model, high)


@fast
@given(links, totals)
def test_probability_stays_a_probability(model: Model, total: float) -> None:
    p = probability(model, total)
    assert 0.0 <= p <= 1.0
    z = model.intercept + total / model.points_per_logodds
    if abs(z) < 30:  # beyond that a float rounds σ to exactly 0 or 1
        assert 0.0 < p < 1.0
        assert p == pytest.approx(1.0 / (1.0 + math.exp(-z)))


@fast
@given(links)
def test_probability_is_one_half_where_the_log_odds_are_zero(model: Model) -> None:
    total = -model.intercept * model.points_per_logodds
    assert probability(model, total) == pytest.approx(0.5)


def test_probability_does_not_overflow_far_from_zero() -> None:
    model = Model(rules=(), points_per_logodds=1.0, intercept=0.0)
    assert probability(model, -1e6) == 0.0
    assert probability(model, 1e6) == 1.0


def test_default_link_reads_as_documented() -> None:
    # σ(−3 + 60/20) = σ(0): a lead at 60 points is a coin flip under the default model.
    assert probability(Model(rules=()), 60.0) == pytest.approx(0.5)
    assert probability(Model(rules=()), 0.0) == pytest.approx(1 / (1 + math.exp(3)))


# ---------------------------------------------------------------- bands

thresholds = st.builds(
    Threshold,
    percentile=st.floats(0.0, 100.0),
    min_points=st.floats(-50.0, 100.0),
)
fixed = st.builds(Threshold, points=st.floats(-50.0, 150.0))


@fast
@given(st.one_of(thresholds, fixed), st.one_of(thresholds, fixed), score_lists)
def test_hot_edge_is_never_below_warm(warm: Threshold, hot: Threshold, scores: list[float]) -> None:
    edges = resolve_thresholds(BandSpec(warm=warm, hot=hot), scores)
    assert edges.hot >= edges.warm


@fast
@given(thresholds, thresholds, score_lists)
def test_percentile_edges_never_fall_below_their_floor(
    warm: Threshold, hot: Threshold, scores: list[float]
) -> None:
    edges = resolve_thresholds(BandSpec(warm=warm, hot=hot), scores)
    assert edges.warm >= warm.min_points
    assert edges.hot >= hot.min_points


@fast
@given(
    # Scores in hundredths of a point: distinct enough that interpolating between two
    # neighbours cannot round onto one of them (1000 and 1000 - 1 ulp would).
    st.lists(st.integers(0, 100_000).map(lambda n: n / 100), min_size=2, max_size=200, unique=True),
    st.floats(1.0, 50.0),
)
def test_the_top_q_percent_are_hot(scores: list[float], q: float) -> None:
    spec = BandSpec(warm=Threshold(points=-1.0), hot=Threshold(percentile=100.0 - q))
    edges = resolve_thresholds(spec, scores)
    hot = sum(band_for(s, edges) is Band.HOT for s in scores)
    # Interpolated percentile over distinct scores: within one lead of q % of them.
    assert abs(hot - len(scores) * q / 100.0) < 1.0 + 1e-9


@fast
@given(st.floats(-500.0, 500.0), st.floats(-500.0, 500.0), st.floats(-100, 100), st.floats(0, 100))
def test_band_for_is_monotone_in_the_total(a: float, b: float, warm: float, gap: float) -> None:
    edges = Thresholds(warm=warm, hot=warm + gap)
    order = [Band.COLD, Band.WARM, Band.HOT]
    low, high = sorted((a, b))
    assert order.index(band_for(low, edges)) <= order.index(band_for(high, edges))


def test_top_ten_percent_of_a_hundred_scores() -> None:
    scores = [float(s) for s in range(1, 101)]  # 1..100, shuffled order must not matter
    spec = BandSpec(warm=Threshold(percentile=70.0), hot=Threshold(percentile=90.0))
    edges = resolve_thresholds(spec, list(reversed(scores)))
    assert (edges.warm, edges.hot) == pytest.approx((70.3, 90.1))
    bands = [band_for(s, edges) for s in scores]
    assert bands.count(Band.HOT) == 10
    assert bands.count(Band.WARM) == 20
    assert min(s for s, b in zip(scores, bands, strict=True) if b is Band.HOT) == 91.0


def test_min_points_floor_wins_over_a_low_percentile() -> None:
    # A quiet week: the top 10 % are barely engaged, and must not be called hot.
    scores = [0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 12.0, 15.0, 20.0]
    spec = BandSpec(
        warm=Threshold(percentile=50.0, min_points=25.0),
        hot=Threshold(percentile=90.0, min_points=60.0),
    )
    assert resolve_thresholds(spec, scores) == Thresholds(warm=25.0, hot=60.0)


def test_percentile_without_scores_falls_back_to_the_floor() -> None:
    spec = BandSpec(warm=Threshold(percentile=50.0, min_points=30.0), hot=Threshold(points=70.0))
    assert resolve_thresholds(spec, []) == Thresholds(warm=30.0, hot=70.0)


def test_fixed_edges_ignore_the_distribution() -> None:
    spec = BandSpec()  # warm 40, hot 70
    assert resolve_thresholds(spec, [500.0, 600.0]) == Thresholds(warm=40.0, hot=70.0)


def test_hot_is_raised_to_warm_when_the_percentiles_cross() -> None:
    spec = BandSpec(warm=Threshold(percentile=90.0), hot=Threshold(percentile=50.0))
    edges = resolve_thresholds(spec, [float(s) for s in range(11)])
    assert edges == Thresholds(warm=9.0, hot=9.0)


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (-5.0, Band.COLD),
        (39.99, Band.COLD),
        (40.0, Band.WARM),
        (69.99, Band.WARM),
        (70.0, Band.HOT),
    ],
)
def test_band_edges_are_inclusive_lower_bounds(total: float, band: Band) -> None:
    assert band_for(total, Thresholds(warm=40.0, hot=70.0)) is band


def test_percentile_interpolates_and_refuses_no_scores() -> None:
    assert percentile([10.0, 20.0], 25.0) == pytest.approx(12.5)
    assert percentile([7.0], 90.0) == 7.0
    with pytest.raises(ValueError, match="no scores"):
        percentile([], 50.0)
