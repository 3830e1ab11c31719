"""Band edges: fixed points, or percentiles of the current score distribution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scoring.model import Band, BandSpec, Threshold


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Resolved lower edges, in points, of the warm and hot bands."""

    warm: float
    hot: float


def _fixed(threshold: Threshold) -> float:
    return threshold.points if threshold.points is not None else threshold.min_points


def default_thresholds(spec: BandSpec) -> Thresholds:
    """Edges with no score distribution at hand: percentile edges fall back to their floor."""
    return Thresholds(warm=_fixed(spec.warm), hot=_fixed(spec.hot))


def percentile(sorted_scores: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ascending scores, linear interpolation."""
    if not sorted_scores:
        raise ValueError("no scores")
    pos = (len(sorted_scores) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_scores[lo] + (sorted_scores[hi] - sorted_scores[lo]) * (pos - lo)


def _resolve(threshold: Threshold, sorted_scores: Sequence[float]) -> float:
    if threshold.percentile is None or not sorted_scores:
        return _fixed(threshold)
    return max(threshold.min_points, percentile(sorted_scores, threshold.percentile))


def resolve_thresholds(spec: BandSpec, scores: Sequence[float]) -> Thresholds:
    """Edges for the current scores (any order). Hot is never below warm."""
    ordered = sorted(scores)
    warm = _resolve(spec.warm, ordered)
    hot = max(warm, _resolve(spec.hot, ordered))
    return Thresholds(warm=warm, hot=hot)


def band_for(total: float, edges: Thresholds) -> Band:
    if total >= edges.hot:
        return Band.HOT
    if total >= edges.warm:
        return Band.WARM
    return Band.COLD
