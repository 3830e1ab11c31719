"""Metrics: hand-computed small cases, agreement with scikit-learn, invariances, and the
time-ordered split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from scoring.metrics import (
    average_ranks,
    conversion_by_group,
    log_loss,
    roc_auc,
    time_split,
    top_decile_lift,
)

labels = st.lists(st.integers(0, 1), min_size=2, max_size=60)
# Few distinct scores, so ties are common.
coarse = st.sampled_from([-3.0, -1.0, 0.0, 0.5, 2.0, 10.0])


def test_average_ranks_share_ties() -> None:
    assert average_ranks(np.array([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]


def test_roc_auc_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert roc_auc(y, np.array([1.0, 2.0, 3.0, 4.0])) == 1.0
    assert roc_auc(y, np.array([4.0, 3.0, 2.0, 1.0])) == 0.0
    assert roc_auc(y, np.ones(4)) == 0.5  # every pair tied: ½ each
    # One positive tied with one of two negatives, above the other: (1 + ½) / 2.
    assert roc_auc(np.array([1, 0, 0]), np.array([2.0, 2.0, 1.0])) == 0.75


def test_roc_auc_is_nan_with_one_class() -> None:
    assert math.isnan(roc_auc(np.ones(3), np.array([1.0, 2.0, 3.0])))
    assert math.isnan(roc_auc(np.zeros(0), np.zeros(0)))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), y=labels)
def test_roc_auc_matches_scikit_learn(data: st.DataObject, y: list[int]) -> None:
    s = data.draw(st.lists(coarse, min_size=len(y), max_size=len(y)))
    if len(set(y)) < 2:
        assert math.isnan(roc_auc(np.array(y), np.array(s)))
        return
    assert roc_auc(np.array(y), np.array(s)) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), y=labels)
def test_roc_auc_is_invariant_to_monotone_transforms(data: st.DataObject, y: list[int]) -> None:
    s = np.array(data.draw(st.lists(coarse, min_size=len(y), max_size=len(y))))
    base = roc_auc(np.array(y), s)
    for transformed in (np.exp(s), 3.0 * s - 7.0, np.arctan(s), s**3):
        assert roc_auc(np.array(y), transformed) == pytest.approx(base, nan_ok=True)
    # A decreasing transform mirrors it.
    assert roc_auc(np.array(y), -s) == pytest.approx(1.0 - base, nan_ok=True)


def test_log_loss_by_hand() -> None:
    y = np.array([1, 0])
    p = np.array([0.8, 0.4])
    assert log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # A certain mistake is clipped, not infinite.
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(1e-15))
    assert math.isnan(log_loss(np.zeros(0), np.zeros(0)))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), y=labels)
def test_log_loss_matches_scikit_learn(data: st.DataObject, y: list[int]) -> None:
    p = data.draw(st.lists(st.floats(0.001, 0.999), min_size=len(y), max_size=len(y)))
    expected = sk_log_loss(y, p, labels=[0, 1])
    assert log_loss(np.array(y), np.array(p)) == pytest.approx(expected, rel=1e-9)


def test_top_decile_lift_by_hand() -> None:
    # 20 leads, 4 converted (20 %); the top 2 by score are both converted: 100 % ÷ 20 %.
    y = np.array([1, 1, 1, 1] + [0] * 16)
    s = np.r_[[9.0, 8.0, 1.0, 1.0], np.zeros(16)]
    assert top_decile_lift(y, s) == pytest.approx(5.0)
    # The second place is a tie between a converted and a lost lead: half of each counts.
    s2 = np.r_[[9.0, 8.0], np.zeros(17), [8.0]]
    assert top_decile_lift(y, s2) == pytest.approx((1.5 / 2) / 0.2)


def test_top_decile_lift_of_a_constant_score_is_one() -> None:
    y = np.array([1, 0, 0, 1, 0, 0, 0])
    assert top_decile_lift(y, np.zeros(7)) == pytest.approx(1.0)
    assert math.isnan(top_decile_lift(np.zeros(5), np.arange(5.0)))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), y=labels)
def test_top_decile_lift_does_not_depend_on_row_order(data: st.DataObject, y: list[int]) -> None:
    s = np.array(data.draw(st.lists(coarse, min_size=len(y), max_size=len(y))))
    order = np.array(data.draw(st.permutations(range(len(y)))))
    yy = np.array(y)
    assert top_decile_lift(yy[order], s[order]) == pytest.approx(
        top_decile_lift(yy, s), nan_ok=True
    )


def test_conversion_by_group() -> None:
    y = np.array([1, 0, 0, 1, 1])
    groups = np.array(["hot", "cold", "cold", "hot", "warm"])
    assert conversion_by_group(y, groups) == {
        "cold": (2, 0.0),
        "hot": (2, 1.0),
        "warm": (1, 1.0),
    }
    with pytest.raises(ValueError, match=r"groups: expected one per label \(5\), got 2"):
        conversion_by_group(y, np.array(["a", "b"]))


def test_time_split_by_hand() -> None:
    at = np.array([50.0, 10.0, 40.0, 20.0, 30.0, 60.0, 70.0, 80.0])
    train, test = time_split(at, 0.25)
    assert at[test].tolist() == [70.0, 80.0]
    assert sorted(at[train].tolist()) == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]


def test_time_split_keeps_ties_together() -> None:
    train, test = time_split(np.array([1.0, 2.0, 3.0, 3.0]), 0.25)
    assert train.tolist() == [True, True, False, False]
    assert test.tolist() == [False, False, True, True]
    all_tied_train, all_tied_test = time_split(np.full(4, 5.0))
    assert not all_tied_train.any()
    assert all_tied_test.all()


@settings(max_examples=100, deadline=None)
@given(
    at=st.lists(st.integers(0, 20).map(float), min_size=1, max_size=80),
    fraction=st.floats(0.01, 0.99),
)
def test_time_split_never_trains_on_a_newer_label(at: list[float], fraction: float) -> None:
    times = np.array(at)
    train, test = time_split(times, fraction)
    assert (train ^ test).all()  # a partition
    assert test.sum() >= math.ceil(fraction * len(at))
    if train.any():
        assert times[train].max() < times[test].min()


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"y: labels must be 0 or 1, got 3.0"):
        roc_auc(np.array([0, 3]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"p: expected as many values as labels \(2\), got 3"):
        log_loss(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="test_fraction: expected a value between 0 and 1"):
        time_split(np.array([1.0]), 1.5)
