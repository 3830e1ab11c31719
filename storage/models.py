"""Model versions: the repository of ``model_versions`` rows.

Synchronous functions on a ``Connection`` inside the caller's transaction (run them with
``AsyncConnection.run_sync``), so activating a version and rescoring every lead share one
transaction. Nothing here commits. At most one version is active: ``set_active`` retires
the current one before it activates another, and a partial unique index backs that up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from storage.tables import ModelVersion

VERSIONS = ModelVersion.__table__  # type: ignore[attr-defined]


class Status(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # a proposal a newer refit replaced before anyone decided


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe metrics: NaN and infinities become null (JSON has no NaN)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out[key] = clean_metrics(value)
        elif isinstance(value, float) and not math.isfinite(value):
            out[key] = None
        else:
            out[key] = value
    return out


def add_version(
    conn: Connection,
    *,
    yaml: str,
    status: Status,
    created_by: str,
    created_at: datetime,
    labels: int = 0,
    metrics: Mapping[str, Any] | None = None,
    parent_id: int | None = None,
) -> int:
    """Store a version; returns its number. An ``active`` one is added through
    ``set_active`` so the one-active rule holds."""
    row = {
        "yaml": yaml,
        "status": str(Status.PROPOSED if status is Status.ACTIVE else status),
        "created_at": created_at,
        "created_by": created_by[:255],
        "labels": labels,
        "metrics": clean_metrics(metrics or {}),
        "parent_id": parent_id,
    }
    key = conn.execute(insert(VERSIONS).values(**row)).inserted_primary_key
    assert key is not None
    version_id = int(key[0])
    if status is Status.ACTIVE:
        set_active(conn, version_id=version_id, by=created_by, at=created_at)
    return version_id


def _version(row: Any) -> ModelVersion:
    return ModelVersion(**dict(row._mapping))


def get_version(conn: Connection, version_id: int) -> ModelVersion | None:
    row = conn.execute(select(VERSIONS).where(VERSIONS.c.id == version_id)).first()
    return None if row is None else _version(row)


def list_versions(conn: Connection) -> list[ModelVersion]:
    """Every version, oldest first."""
    return [_version(r) for r in conn.execute(select(VERSIONS).order_by(VERSIONS.c.id))]


def active_version(conn: Connection) -> ModelVersion | None:
    row = conn.execute(select(VERSIONS).where(VERSIONS.c.status == Status.ACTIVE.value)).first()
    return None if row is None else _version(row)


def rollback_target(conn: Connection) -> ModelVersion | None:
    """The version that was active before the current one: the retired version activated
    most recently. Rolled-back versions are ``rejected``, so rollbacks walk back in turn."""
    query = (
        select(VERSIONS)
        .where(VERSIONS.c.status == Status.RETIRED.value, VERSIONS.c.activated_at.is_not(None))
        .order_by(VERSIONS.c.activated_at.desc(), VERSIONS.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _version(row)


def set_active(
    conn: Connection,
    *,
    version_id: int,
    by: str,
    at: datetime,
    previous_becomes: Status = Status.RETIRED,
    only_if: Status | None = None,
) -> ModelVersion | None:
    """Make ``version_id`` the active version; the one active before becomes
    ``previous_becomes`` (retired, or rejected on a rollback) and is returned.

    Raises LookupError for an unknown version, ValueError for one already active or, with
    ``only_if``, in another status (an approval only activates a version still proposed)."""
    target = get_version(conn, version_id)
    if target is None:
        raise LookupError(f"model version {version_id}: no such version")
    if target.status == Status.ACTIVE:
        raise ValueError(f"model version {version_id}: already active")
    if only_if is not None and target.status != only_if:
        raise ValueError(f"model version {version_id}: {target.status}, not {only_if}")
    previous = active_version(conn)
    if previous is not None:
        conn.execute(
            update(VERSIONS)
            .where(VERSIONS.c.id == previous.id)
            .values(status=str(previous_becomes))
        )
    conn.execute(
        update(VERSIONS)
        .where(VERSIONS.c.id == version_id)
        .values(status=Status.ACTIVE.value, activated_at=at, approved_by=by[:255])
    )
    return previous


def reject(conn: Connection, *, version_id: int, by: str) -> ModelVersion:
    """Refuse a proposed version (``approved_by`` then records who decided). Raises
    LookupError for an unknown version, ValueError when it is no longer proposed (someone
    decided first): the message says what it is now."""
    target = get_version(conn, version_id)
    if target is None:
        raise LookupError(f"model version {version_id}: no such version")
    decided = conn.execute(
        update(VERSIONS)
        .where(VERSIONS.c.id == version_id, VERSIONS.c.status == Status.PROPOSED.value)
        .values(status=Status.REJECTED.value, approved_by=by[:255])
    )
    if decided.rowcount != 1:
        raise ValueError(f"model version {version_id}: already {target.status}, not proposed")
    return target


def labels_fitted(conn: Connection) -> int:
    """The most labels any stored version was fitted on (0 before the first refit): how
    many labels the automatic refit has already seen."""
    row = conn.execute(select(func.max(VERSIONS.c.labels))).first()
    return int(row[0] or 0) if row else 0


def supersede_proposals(conn: Connection, *, keep: int) -> int:
    """Mark every proposed version but ``keep`` (the newest refit, fitted on more labels)
    superseded: one proposal waits for a decision at a time. Returns how many."""
    done = conn.execute(
        update(VERSIONS)
        .where(VERSIONS.c.status == Status.PROPOSED.value, VERSIONS.c.id != keep)
        .values(status=Status.SUPERSEDED.value, approved_by=f"superseded by v{keep}")
    )
    return int(done.rowcount or 0)
