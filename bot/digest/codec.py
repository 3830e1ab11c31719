"""A ``Digest`` as JSON and back: what a ``digest`` outbox row stores, so each chat adapter
renders it at send time (Block Kit, an Adaptive Card, plain text) from the same data.

Times are ISO 8601 strings (UTC), durations seconds. Lists of leads are cut to
``STORED_MAX`` entries, the real counts kept beside them (``new_hot_total``,
``waiting_total``): every renderer lists fewer than that and counts the rest, and a week
with thousands of new hot leads must not make a row of megabytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.digest.customers import CustomersSection
from bot.digest.data import (
    Conversion,
    Digest,
    ModelHealth,
    Period,
    RepSpeed,
    Scope,
    ScopeKind,
    SourceCheck,
)
from storage.digests import HotEntry, HotLead, LeadName, Move
from storage.outbox import Dead

STORED_MAX = 25  # leads kept per list; renderers show at most 12


def digest_to_json(d: Digest) -> dict[str, Any]:
    """``d`` as JSON-safe data; ``digest_from_json`` reads it back."""
    return {
        "period": {"start": _time(d.period.start), "end": _time(d.period.end)},
        "scope": {
            "kind": str(d.scope.kind),
            "name": d.scope.name,
            "members": list(d.scope.members),
        },
        "now": _time(d.now),
        "sla_hours": d.sla_hours,
        "new_hot": [_hot_entry(e) for e in d.new_hot[:STORED_MAX]],
        "new_hot_total": d.hot_count,
        "waiting": [_hot_lead(w) for w in d.waiting[:STORED_MAX]],
        "waiting_total": d.waiting_count,
        "funnel": [[stage, n] for stage, n in d.funnel],
        "by_band": [_conversion(c) for c in d.by_band],
        "by_grade": [_conversion(c) for c in d.by_grade],
        "warnings": list(d.warnings),
        "reps": [_rep(r) for r in d.reps],
        "heating": [_move(m) for m in d.heating],
        "cooling": [_move(m) for m in d.cooling],
        "model": _model(d.model),
        "hot_counts": [[_time(at), n] for at, n in d.hot_counts],
        "bucket_seconds": d.bucket.total_seconds(),
        "outbox_dead": {"count": d.outbox_dead.count, "oldest": _opt_time(d.outbox_dead.oldest)},
        "names": dict(d.names),
        **({"by_source": [_source(c) for c in d.by_source]} if d.by_source else {}),
        **({"customers": d.customers.to_json()} if d.customers is not None else {}),
    }


def digest_from_json(data: Mapping[str, Any]) -> Digest:
    """The ``Digest`` stored by ``digest_to_json``; a ``KeyError``/``ValueError`` for data
    that is not one."""
    scope = data["scope"]
    dead = data.get("outbox_dead") or {}
    return Digest(
        period=Period(_read_time(data["period"]["start"]), _read_time(data["period"]["end"])),
        scope=Scope(ScopeKind(scope["kind"]), str(scope["name"]), tuple(scope["members"])),
        now=_read_time(data["now"]),
        sla_hours=float(data["sla_hours"]),
        new_hot=tuple(_read_hot_entry(e) for e in data["new_hot"]),
        waiting=tuple(_read_hot_lead(w) for w in data["waiting"]),
        funnel=tuple((str(stage), int(n)) for stage, n in data["funnel"]),
        by_band=tuple(_read_conversion(c) for c in data["by_band"]),
        by_grade=tuple(_read_conversion(c) for c in data["by_grade"]),
        warnings=tuple(str(w) for w in data["warnings"]),
        reps=tuple(_read_rep(r) for r in data["reps"]),
        heating=tuple(_read_move(m) for m in data["heating"]),
        cooling=tuple(_read_move(m) for m in data["cooling"]),
        model=_read_model(data["model"]),
        hot_counts=tuple((_read_time(at), int(n)) for at, n in data["hot_counts"]),
        bucket=timedelta(seconds=float(data["bucket_seconds"])),
        outbox_dead=Dead(int(dead.get("count") or 0), _read_opt_time(dead.get("oldest"))),
        new_hot_total=int(data["new_hot_total"]),
        waiting_total=int(data["waiting_total"]),
        names={str(k): str(v) for k, v in (data.get("names") or {}).items()},  # none before 0008
        by_source=tuple(_read_source(c) for c in data.get("by_source") or ()),
        customers=CustomersSection.from_json(data["customers"]) if data.get("customers") else None,
    )


def _time(value: datetime) -> str:
    return value.isoformat()


def _opt_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _read_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"digest time {value!r}: expected a UTC offset")
    return moment


def _read_opt_time(value: str | None) -> datetime | None:
    return None if value is None else _read_time(value)


def _lead(lead: LeadName) -> dict[str, Any]:
    return {"id": lead.id, "name": lead.name, "email": lead.email, "company": lead.company}


def _read_lead(data: Mapping[str, Any]) -> LeadName:
    return LeadName(str(data["id"]), data["name"], data["email"], data["company"])


def _hot_entry(e: HotEntry) -> dict[str, Any]:
    return {
        "lead": _lead(e.lead), "at": _time(e.at), "score": e.score,
        "claimed_by": e.claimed_by, "claimed_at": _opt_time(e.claimed_at),
    }  # fmt: skip


def _read_hot_entry(data: Mapping[str, Any]) -> HotEntry:
    return HotEntry(
        _read_lead(data["lead"]), _read_time(data["at"]), float(data["score"]),
        data["claimed_by"], _read_opt_time(data["claimed_at"]),
    )  # fmt: skip


def _hot_lead(w: HotLead) -> dict[str, Any]:
    return {"lead": _lead(w.lead), "score": w.score, "since": _opt_time(w.since)}


def _read_hot_lead(data: Mapping[str, Any]) -> HotLead:
    return HotLead(_read_lead(data["lead"]), float(data["score"]), _read_opt_time(data["since"]))


def _conversion(c: Conversion) -> dict[str, Any]:
    return {"group": c.group, "labels": c.labels, "converted": c.converted}


def _read_conversion(data: Mapping[str, Any]) -> Conversion:
    return Conversion(str(data["group"]), int(data["labels"]), int(data["converted"]))


def _source(c: SourceCheck) -> dict[str, Any]:
    by_band = [_conversion(row) for row in c.by_band]
    return {"source": c.source, "labels": c.labels, "by_band": by_band, "auc": c.auc}


def _read_source(data: Mapping[str, Any]) -> SourceCheck:
    auc = data.get("auc")
    return SourceCheck(
        str(data["source"]), int(data["labels"]),
        tuple(_read_conversion(row) for row in data["by_band"]),
        None if auc is None else float(auc),
    )  # fmt: skip


def _rep(r: RepSpeed) -> dict[str, Any]:
    return {"rep": r.rep, "claims": r.claims, "timed": r.timed, "median_seconds": r.median_seconds}


def _read_rep(data: Mapping[str, Any]) -> RepSpeed:
    median = data["median_seconds"]
    return RepSpeed(
        str(data["rep"]), int(data["claims"]), int(data["timed"]),
        None if median is None else float(median),
    )  # fmt: skip


def _move(m: Move) -> dict[str, Any]:
    return {"lead": _lead(m.lead), "change": m.change, "score": m.score, "band": m.band}


def _read_move(data: Mapping[str, Any]) -> Move:
    return Move(
        _read_lead(data["lead"]), float(data["change"]), float(data["score"]), str(data["band"])
    )


def _model(m: ModelHealth) -> dict[str, Any]:
    return {
        "version": m.version, "name": m.name, "activated_at": _opt_time(m.activated_at),
        "labels_since": m.labels_since, "auc": m.auc, "pending": list(m.pending),
        "cohorts": list(m.cohorts),
    }  # fmt: skip


def _read_model(data: Mapping[str, Any]) -> ModelHealth:
    version, auc = data["version"], data["auc"]
    return ModelHealth(
        version=None if version is None else int(version),
        name=str(data["name"]),
        activated_at=_read_opt_time(data["activated_at"]),
        labels_since=int(data["labels_since"]),
        auc=None if auc is None else float(auc),
        pending=tuple(int(v) for v in data["pending"]),
        cohorts=tuple(str(c) for c in data["cohorts"]),
    )
