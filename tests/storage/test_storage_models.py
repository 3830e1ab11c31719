"""Model versions: stored, listed, one active at a time, rolled back in turn."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import models
from storage.models import Status

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


async def _add(engine: AsyncEngine, status: Status, **kw: Any) -> int:
    async with engine.begin() as conn:
        return await conn.run_sync(
            lambda c: models.add_version(
                c, yaml=f"name: {status}\n", status=status, created_by="cli", created_at=AT, **kw
            )
        )


async def test_add_and_read_back_with_nan_as_null(engine: AsyncEngine) -> None:
    metrics = {"before": {"roc_auc": 0.7}, "after": {"roc_auc": math.nan}}
    vid = await _add(engine, Status.PROPOSED, labels=42, metrics=metrics, parent_id=None)
    async with engine.connect() as conn:
        row = await conn.run_sync(models.get_version, vid)
        assert await conn.run_sync(models.get_version, vid + 100) is None
    assert row is not None
    assert (row.status, row.labels, row.created_by) == ("proposed", 42, "cli")
    assert row.metrics == {"before": {"roc_auc": 0.7}, "after": {"roc_auc": None}}
    assert row.created_at == AT
    assert row.activated_at is None


async def test_one_active_version_at_a_time(engine: AsyncEngine) -> None:
    first = await _add(engine, Status.ACTIVE)
    second = await _add(engine, Status.PROPOSED, parent_id=first)
    async with engine.begin() as conn:
        previous = await conn.run_sync(
            lambda c: models.set_active(c, version_id=second, by="slack:U1", at=AT)
        )
    assert previous is not None
    assert previous.id == first
    async with engine.connect() as conn:
        rows = await conn.run_sync(models.list_versions)
        active = await conn.run_sync(models.active_version)
    assert [(r.id, r.status) for r in rows] == [(first, "retired"), (second, "active")]
    assert active is not None
    assert active.approved_by == "slack:U1"


async def test_the_index_refuses_a_second_active_row(engine: AsyncEngine) -> None:
    await _add(engine, Status.ACTIVE)
    other = await _add(engine, Status.PROPOSED)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE model_versions SET status = 'active' WHERE id = :id"), {"id": other}
            )


async def test_activate_refuses_unknown_and_already_active(engine: AsyncEngine) -> None:
    vid = await _add(engine, Status.ACTIVE)
    async with engine.begin() as conn:
        with pytest.raises(LookupError, match="model version 99"):
            await conn.run_sync(lambda c: models.set_active(c, version_id=99, by="x", at=AT))
        with pytest.raises(ValueError, match="already active"):
            await conn.run_sync(lambda c: models.set_active(c, version_id=vid, by="x", at=AT))


async def test_rollback_target_walks_back(engine: AsyncEngine) -> None:
    ids = [await _add(engine, Status.PROPOSED) for _ in range(3)]
    for n, vid in enumerate(ids):
        at = AT.replace(hour=10 + n)
        async with engine.begin() as conn:
            await conn.run_sync(partial(models.set_active, version_id=vid, by="x", at=at))
    async with engine.begin() as conn:
        target = await conn.run_sync(models.rollback_target)
        assert target is not None
        assert target.id == ids[1]
        await conn.run_sync(
            lambda c: models.set_active(
                c, version_id=ids[1], by="x", at=AT.replace(hour=20),
                previous_becomes=Status.REJECTED,
            )
        )  # fmt: skip
        target = await conn.run_sync(models.rollback_target)
        assert target is not None
        assert target.id == ids[0]
