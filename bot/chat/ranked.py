"""Reads of every lead "now" that stay fast at a million leads: band edges, the top N and
the band counts, exact without scoring every lead.

The rule that makes it exact: when no lead's score can rise with time alone
(``falls_with_time``: decaying intent rules add points, negative event rules do not decay,
inactivity rules take points away — the shipped model's rule), a lead's stored score, computed
at its last event, rescore or decay sweep, is an upper bound of its score now. So

- ``top_now`` reads leads by stored score, highest first, scores each now, and stops once its
  n-th best is above the next stored score (nothing further down can pass it);
- ``band_counts_now`` counts a lead stored below the warm edge as cold without reading it
  (it can only have fallen). A lead stored at or above it is counted by its stored score when
  the decay sweep found its band sure until after now (``firm_until``, stored with the
  ``scored_at`` it holds for: any later write of the score voids it); only the others — new
  or changed since the last sweep, or near an edge — are scored now. With percentile bands
  (edges that move) every lead at or above the warm edge is scored now.

Percentile band edges are the percentiles of the stored scores (``BandEdges``' rule, what
``serve`` answers with), each read at its rank from the index. A model whose scores may rise
with time is read the slow way: every lead scored now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import overload

from sqlmodel.ext.asyncio.session import AsyncSession

from scoring import Band, LeadState, Model, Score, score
from scoring.bands import Thresholds, default_thresholds, percentile
from scoring.engine import totals
from scoring.model import RuleKind, Threshold
from storage.leads import (
    count_known,
    firm_counts,
    lead_states,
    ranked_states,
    score_at_rank,
    states_scored_at_least,
)

PAGE = 256  # leads read per page of ``top_now``, at least
FIRM_HORIZON = 7 * 86400.0  # how far ahead the decay sweep looks for a lead's band to drop
FIRM_STEPS = 10  # bisections: to about ten minutes


def falls_with_time(model: Model) -> bool:
    """Whether no lead's score can rise with time alone (so a stored score bounds it now)."""
    for rule in model.rules:
        if rule.kind is RuleKind.INTENT and rule.points < 0 and rule.half_life_seconds:
            return False
        if rule.kind is RuleKind.INACTIVITY and rule.points > 0:
            return False
    return True


class _Ranks(Sequence[float]):
    """The ascending stored scores, as ``percentile`` indexes them: only the ranks it reads
    are fetched (``read``), the rest never exist."""

    def __init__(self, length: int, values: dict[int, float]) -> None:
        self.length, self.values = length, values

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[float]: ...
    def __getitem__(self, i: int | slice) -> float | Sequence[float]:
        if isinstance(i, slice):
            raise TypeError("ranks are read one at a time")
        return self.values[i]


def _ranks_of(q: float, known: int) -> tuple[int, int]:
    pos = (known - 1) * q / 100.0
    return int(pos // 1), -int(-pos // 1)  # floor and ceil, as ``percentile`` takes them


async def edges_now(session: AsyncSession, *, model: Model) -> Thresholds | None:
    """Band edges for reads now: None for fixed bands (the model's own), else the
    percentiles of the stored scores of known leads (``BandEdges.refresh``'s edges)."""
    spec = model.bands
    if not spec.uses_percentiles:
        return None
    known = await count_known(session)
    fixed = default_thresholds(spec)
    if not known:
        return fixed
    values: dict[int, float] = {}
    for threshold in (spec.warm, spec.hot):
        if threshold.percentile is not None:
            for rank in _ranks_of(threshold.percentile, known):
                if rank not in values:
                    values[rank] = await score_at_rank(session, rank=rank, known=known)
    ranks = _Ranks(known, values)

    def edge(threshold: Threshold, otherwise: float) -> float:
        if threshold.percentile is None:
            return otherwise
        return max(threshold.min_points, percentile(ranks, threshold.percentile))

    warm = edge(spec.warm, fixed.warm)
    return Thresholds(warm=warm, hot=max(warm, edge(spec.hot, fixed.hot)))


def _order(pair: tuple[str, Score]) -> tuple[float, str]:
    return -pair[1].total, pair[0]


async def _every_score(
    session: AsyncSession, model: Model, now: float, thresholds: Thresholds | None
) -> list[tuple[str, Score]]:
    """Every known lead scored now: the fallback when scores may rise with time."""
    scored = [
        (lead_id, score(LeadState.from_dict(state), model, now, thresholds, explain=False))
        for lead_id, state in await lead_states(session)
    ]
    return sorted(scored, key=_order)


async def top_now(
    session: AsyncSession, *, model: Model, now: float, n: int, band: str | None = None,
    thresholds: Thresholds | None = None,
) -> list[tuple[str, Score]]:  # fmt: skip
    """The ``n`` known leads with the highest score now (of ``band`` now, when given),
    highest first, ties by id: exactly what scoring every lead would rank first."""
    if not falls_with_time(model):
        every = await _every_score(session, model, now, thresholds)
        return [(i, s) for i, s in every if band is None or str(s.band) == band][:n]
    best: list[tuple[str, Score]] = []
    size, after = max(PAGE, 4 * n), None
    while True:
        page = await ranked_states(session, limit=size, after=after)
        for lead_id, _, state in page:
            now_score = score(LeadState.from_dict(state), model, now, thresholds, explain=False)
            if band is None or str(now_score.band) == band:
                best.append((lead_id, now_score))
        best = sorted(best, key=_order)[:n]
        if len(page) < size:
            return best
        after = (page[-1][1], page[-1][0])
        if len(best) == n and best[-1][1].total > after[0]:
            return best  # every lead not read scores at most ``after[0]`` now


def _counted(scores: list[Score]) -> dict[str, int]:
    bands = {band.value: 0 for band in (Band.HOT, Band.WARM, Band.COLD)}
    for result in scores:
        bands[str(result.band)] = bands.get(str(result.band), 0) + 1
    return bands


async def band_counts_now(
    session: AsyncSession, *, model: Model, now: float, thresholds: Thresholds | None = None
) -> dict[str, int]:
    """Known leads per band now (hot, warm and cold always present), as scoring each now
    would count them."""
    if not falls_with_time(model):
        return _counted([s for _, s in await _every_score(session, model, now, thresholds)])
    edges = thresholds or default_thresholds(model.bands)
    at = datetime.fromtimestamp(now, UTC)
    firm = None if model.bands.uses_percentiles else at  # sure for the sweep's fixed edges
    near = await states_scored_at_least(session, points=edges.warm, unless_firm_at=firm)
    bands = _counted(
        [score(LeadState.from_dict(state), model, now, thresholds, explain=False)
         for _, state in near]
    )  # fmt: skip
    bands[Band.COLD.value] += await count_known(session, below=edges.warm)
    if firm is not None:
        hot, warm = await firm_counts(session, warm=edges.warm, hot=edges.hot, at=firm)
        bands[Band.HOT.value] += hot
        bands[Band.WARM.value] += warm
    return bands


def firm_until(state: LeadState, model: Model, now: float, edges: Thresholds) -> float | None:
    """A time up to ``FIRM_HORIZON`` after ``now`` until which the lead surely stays in its
    band at ``now`` (None when cold: nothing to keep). Scores only fall with time
    (``falls_with_time``), so it is found by bisection, to ``FIRM_HORIZON / 2**FIRM_STEPS``."""
    if not falls_with_time(model):
        return None
    total = sum(totals(state, model, now))
    if total < edges.warm:
        return None
    edge = edges.hot if total >= edges.hot else edges.warm
    low, high = now, now + FIRM_HORIZON
    if sum(totals(state, model, high)) >= edge:
        return high
    for _ in range(FIRM_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if sum(totals(state, model, middle)) >= edge else (low, middle)
    return low
