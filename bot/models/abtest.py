"""A/B tests of model versions: a challenger scores cohort B (a hashed share of the leads),
the active version (the champion) the rest; conversion is reported per cohort.

Both versions must have the same rules (ids, kinds, conditions) and differ in points only,
as every refit does: a lead's stored state (which rules fired, intent values) then serves
both, and only its score depends on its cohort. Starting a test rescores cohort B with the
challenger, stopping it (or activating any version) rescores it with the champion, each in
one transaction. Lookups and buttons explain a lead with the champion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.models.live import cohort, model_of_yaml
from bot.models.rescore import rescore
from bot.models.versions import LABELS, ensure_active
from scoring.metrics import roc_auc
from scoring.model import Model
from storage import abtests, offloop
from storage import models as repo
from storage.labels import labels_of
from storage.tables import AbTest


@dataclass(frozen=True)
class CohortStats:
    """One cohort since the test started: labels, the share that converted, and how well
    its own model's scores (at the moment of each label) ranked them."""

    name: str
    version_id: int
    labels: int
    conversion: float
    roc_auc: float


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def same_rules(a: Model, b: Model) -> bool:
    """Do two models have the same rules but for their points?"""
    return [replace(r, points=0.0) for r in a.rules] == [replace(r, points=0.0) for r in b.rules]


async def start_ab(
    *, engine: AsyncEngine, config_model: Model, challenger_id: int, share: float, by: str,
    now: float, history_delta: float,
) -> tuple[int, int]:  # fmt: skip
    """Start a test of ``challenger_id`` on ``share`` of the leads and rescore that cohort.
    Returns (test id, leads rescored). Raises LookupError/ValueError naming the problem."""
    if not 0 < share < 1:
        raise ValueError(f"--share: a fraction between 0 and 1, got {share}")

    def run(conn: Connection) -> tuple[int, int]:
        champion_id, champion = ensure_active(conn, config_model=config_model, now=now)
        version = repo.get_version(conn, challenger_id)
        if version is None:
            raise LookupError(f"model version {challenger_id}: no such version")
        if challenger_id == champion_id:
            raise ValueError(f"model version {challenger_id} is the active one: pick another")
        challenger = model_of_yaml(version.yaml, challenger_id)
        if not same_rules(champion, challenger):
            raise ValueError(
                f"model v{challenger_id} has other rules than the active v{champion_id}: an "
                "A/B test compares points on the same rules (a refit of the active version)"
            )
        test = abtests.start_test(
            conn, champion_id=champion_id, challenger_id=challenger_id, share=share, by=by,
            at=_at(now),
        )  # fmt: skip
        done = rescore(
            conn, model=challenger, now=now, history_delta=history_delta,
            cause=f"a/b test: model v{challenger_id}", only=lambda lid: cohort(lid, share) == "B",
        )  # fmt: skip
        return test, done.leads

    return await offloop.write(engine, run)


async def stop_ab(
    *, engine: AsyncEngine, by: str, now: float, history_delta: float
) -> tuple[AbTest, int]:
    """Stop the running test and rescore its cohort B with the champion. Raises LookupError
    when no test runs."""

    def run(conn: Connection) -> tuple[AbTest, int]:
        test = abtests.stop_test(conn, by=by, at=_at(now))
        if test is None:
            raise LookupError("no A/B test is running")
        champion = repo.active_version(conn)
        assert champion is not None  # a test needs an active version
        assert champion.id is not None
        done = rescore(
            conn, model=model_of_yaml(champion.yaml, champion.id), now=now,
            history_delta=history_delta, cause=f"a/b test stopped: model v{champion.id}",
            only=lambda lid: cohort(lid, test.share) == "B",
        )  # fmt: skip
        return test, done.leads

    return await offloop.write(engine, run)


def cohort_stats(
    conn: Connection, test: AbTest, labels: Mapping[str, float] = LABELS
) -> list[CohortStats]:
    """Conversion per cohort among the labels given since ``test`` started (until it
    stopped), and each cohort's AUC with its own model's points on the label snapshots."""
    rows = labels_of(conn, outcomes=list(labels), since=test.started_at, until=test.stopped_at)
    stats = []
    for name, vid in (("A", test.champion_id), ("B", test.challenger_id)):
        version = repo.get_version(conn, vid)
        assert version is not None
        model = model_of_yaml(version.yaml, vid)
        mine = [r for r in rows if cohort(r.lead_id, test.share) == name]
        y = np.array([labels[r.outcome] for r in mine])
        scores = np.array([_points(model, r.features) for r in mine])
        conversion = float(y.mean()) if y.size else math.nan
        auc = roc_auc(y, scores) if y.size else math.nan
        stats.append(CohortStats(name, vid, int(y.size), conversion, auc))
    return stats


def _points(model: Model, features: Any) -> float:
    values = (features or {}).get("rules") or {}
    return float(sum(r.points * float(values.get(r.id) or 0.0) for r in model.rules))
