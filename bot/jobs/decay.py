"""The decay sweep: re-read the scores that time alone has lowered.

A lead's stored score is the one computed at its last event; its intent decays afterwards
(and inactivity rules start to count), so a lead with no news stays "hot" in the table
until something rescores it. The sweep rescores only the leads that can still drop a band
(score at or above the warm edge: an index on score makes that a range read), writes the
new scores, keeps history with cause ``decay``, and, with ``decay.cooling_notice``, tells
the places where a lead's last alert was posted that it is cooling down.

The sweep runs in chunks of ``CHUNK`` leads, one transaction each. On PostgreSQL a chunk takes
the ingest's lead locks (``storage.locks``) before it reads, so a replica's ingest and the
sweep take turns on a lead, never interleave, and the ingest never waits long behind a sweep.
Besides, each update is guarded by the ``scored_at`` the sweep read, so a lead the ingest wrote
in between (SQLite: the writer process) keeps the ingest's score. The sweep writes scores
only, never the state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.ranked import firm_until
from bot.outbox.messages import CoolingMessage, Kind, LeadRef, outbox_row
from config.loader import LeadbotConfig
from scoring import Model, score
from scoring.bands import Thresholds, default_thresholds, resolve_thresholds
from scoring.score import Score
from scoring.state import LeadState
from storage import locks, offloop
from storage.crm import touch_linked
from storage.ingest import CHUNK, add_history, enqueue
from storage.sweeps import (
    DecayRow,
    NewScore,
    all_scores,
    decay_rows,
    ids_scored_at_least,
    sent_alerts,
    set_band_firm,
    set_score_if_unchanged,
)

log = logging.getLogger(__name__)

CAUSE = "decay"
COOLING = Kind.COOLING
_SAME = 1e-9  # scores equal up to float noise are not rewritten


@dataclass(frozen=True)
class DecayResult:
    checked: int  # leads at or above the warm edge
    updated: int  # whose score or band changed and was written
    history: int  # history rows with cause "decay"
    cooling: int  # "cooling down" messages queued (one per destination)
    skipped: int = 0  # changed by the ingest during the sweep: left as the ingest wrote them

    def __add__(self, other: DecayResult) -> DecayResult:
        return DecayResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


async def decay_sweep(
    engine: AsyncEngine,
    *,
    config: LeadbotConfig,
    model: Model,
    now: float,
    on_queued: Callable[[], None] | None = None,
) -> DecayResult:
    """Rescore the leads at or above the warm edge at ``now`` with ``model`` (the active
    version's), a chunk of leads per transaction. ``on_queued`` is called when messages
    were queued. Off the event loop (``storage.offloop``), one worker for every chunk."""
    result = DecayResult(0, 0, 0, 0)
    async with offloop.Worker(engine) as worker:
        edges, ids = await worker.read(_candidates, model)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            result += await worker.write(_sweep, config, model, now, edges, chunk)
    if result.cooling and on_queued is not None:
        on_queued()
    log.info(
        "decay sweep: %d leads checked, %d rescored, %d history rows, %d cooling notices",
        result.checked, result.updated, result.history, result.cooling,
    )  # fmt: skip
    return result


def _candidates(conn: Connection, model: Model) -> tuple[Thresholds, list[str]]:
    """The band edges now, and the ids of the leads at or above the warm edge."""
    edges = _thresholds(conn, model)
    return edges, ids_scored_at_least(conn, edges.warm)


def _sweep(
    conn: Connection,
    config: LeadbotConfig,
    model: Model,
    now: float,
    edges: Thresholds,
    ids: Sequence[str],
) -> DecayResult:
    if locks.enter(conn):
        locks.lock_leads(conn, ids)
    rows = decay_rows(conn, ids, edges.warm)
    history: list[tuple[Any, ...]] = []
    cooled: list[tuple[DecayRow, Score]] = []
    updated = skipped = 0
    firm: list[tuple[str, datetime, datetime]] = []  # see bot.chat.ranked.band_counts_now
    for row in rows:
        state = LeadState.from_dict(row.state)
        new = score(state, model, now, edges, explain=False)
        band = str(new.band)
        if abs(new.total - row.score) <= _SAME and band == row.band:
            firm += _firm(row.id, row.scored_at, state, model, now, edges)
            continue
        if not _write(conn, row, new, now):
            skipped += 1
            continue
        firm += _firm(row.id, datetime.fromtimestamp(now, UTC), state, model, now, edges)
        updated += 1
        moved = abs(new.total - row.score) >= config.alerts.history_min_delta
        if band != row.band or moved:
            history.append((row.id, now, new.total, band, row.score, row.band, CAUSE))
        if row.band == "hot" and band != "hot":
            cooled.append((row, new))
    add_history(conn, rows=history)
    set_band_firm(conn, rows=firm)
    touch_linked(conn, lead_ids=[h[0] for h in history], at=now)  # their CRM records too
    queued = _notify(conn, cooled, now) if config.decay.cooling_notice else 0
    return DecayResult(len(rows), updated, len(history), queued, skipped)


def _firm(
    lead_id: str, scored_at: datetime, state: LeadState, model: Model, now: float,
    edges: Thresholds,
) -> list[tuple[str, datetime, datetime]]:  # fmt: skip
    """Until when the lead's band is sure, for the score stored at ``scored_at`` (fixed
    bands only: percentile edges move)."""
    until = None if model.bands.uses_percentiles else firm_until(state, model, now, edges)
    return [] if until is None else [(lead_id, scored_at, datetime.fromtimestamp(until, UTC))]


def _thresholds(conn: Connection, model: Model) -> Thresholds:
    """The band edges now: fixed points, or the percentiles of every stored score."""
    if not model.bands.uses_percentiles:
        return default_thresholds(model.bands)
    return resolve_thresholds(model.bands, all_scores(conn))


def _write(conn: Connection, row: DecayRow, new: Score, now: float) -> bool:
    """Store the new score unless the lead was rescored since it was read."""
    values = NewScore(
        new.total, new.fit, new.intent, str(new.band), new.grade, new.engagement,
        new.probability,
    )  # fmt: skip
    return set_score_if_unchanged(
        conn, lead_id=row.id, scored_at=row.scored_at, new=values,
        at=datetime.fromtimestamp(now, UTC),
    )  # fmt: skip


def _notify(conn: Connection, cooled: Sequence[tuple[DecayRow, Score]], now: float) -> int:
    """One ``cooling`` message per destination of each lead's last posted alert."""
    where = _last_alert_destinations(conn, [row.id for row, _ in cooled])
    messages = [
        outbox_row(
            cooling_message(row._asdict(), new), destination=destination, lead_id=row.id,
            dedupe_key=f"{COOLING}:{row.id}:{int(now)}:{destination}", now=now,
        )
        for row, new in cooled
        for destination in where.get(row.id, ())
    ]  # fmt: skip
    return enqueue(conn, rows=messages)


def _last_alert_destinations(conn: Connection, lead_ids: Iterable[str]) -> dict[str, list[str]]:
    """Per lead, the destinations its most recent delivered alert went to (an alert goes to
    every destination of its route at once, so they share one ``created_at``)."""
    ids = sorted(set(lead_ids))
    latest: dict[str, tuple[datetime, list[str]]] = {}
    for start in range(0, len(ids), CHUNK):
        for lead_id, destination, created in sent_alerts(conn, ids[start : start + CHUNK]):
            at, places = latest.get(lead_id, (created, []))
            if created > at:
                at, places = created, []
            if created == at and destination not in places:
                places.append(destination)
            latest[lead_id] = (at, places)
    return {lead_id: places for lead_id, (_, places) in latest.items()}


def cooling_message(lead: Mapping[str, Any], new: Score) -> CoolingMessage:
    """The "cooling down" notice, posted in the thread of the lead's alert."""
    ref = LeadRef.from_json(lead)
    return CoolingMessage(
        lead=ref, before="hot", after=str(new.band), score=round(new.total, 1),
        text=f"{ref.shown} is cooling down: {new.total:.0f} points, now {new.band}.",
    )  # fmt: skip


def cooling_payload(lead: Mapping[str, Any], new: Score) -> dict[str, Any]:
    """``cooling_message`` as the outbox row stores it."""
    return cooling_message(lead, new).to_payload()
