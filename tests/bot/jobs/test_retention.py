"""Retention: request keys older than a day and outbox rows sent before the configured
period go; everything still waiting, dead, or read by a click, a follow-up or a pending
decision stays. On SQLite and PostgreSQL, through the scheduler's ``retention`` job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.retention import retention_sweep
from bot.jobs.scheduler import jobs_for, run_job
from config.loader import LeadbotConfig, load_config
from storage.retention import prune_sent_outbox
from storage.tables import AlertPost, HandledRequest, Lead, ModelVersion, OutboxMessage
from tests.bot.conftest import SMALL_MODEL

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
POSTS = AlertPost.__table__  # type: ignore[attr-defined]
LEADS = Lead.__table__  # type: ignore[attr-defined]
HANDLED = HandledRequest.__table__  # type: ignore[attr-defined]
VERSIONS = ModelVersion.__table__  # type: ignore[attr-defined]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


def _message(key: str, *, status: str = "sent", at: datetime = OLD, **extra: Any) -> dict[str, Any]:
    row = {
        "kind": "alert", "lead_id": None, "destination": "slack:#sales", "dedupe_key": key,
        "payload": {"text": key}, "status": status, "attempts": 1, "available_at": at,
        "created_at": at, "sent_at": at if status == "sent" else None,
    }  # fmt: skip
    return {**row, **extra}


async def _seed(engine: AsyncEngine) -> None:
    lead: dict[str, Any] = {
        "email": None, "name": None, "company": None, "anonymous": False, "state": {},
        "score": 60.0, "band": "hot", "first_seen_at": OLD, "last_event_at": OLD,
        "scored_at": OLD,
    }  # fmt: skip
    messages = [
        _message("sent-old"),
        _message("sent-recent", at=RECENT),
        _message("pending-old", status="pending"),
        _message("sending-old", status="sending"),
        _message("dead-old", status="dead"),
        _message("clicked-old"),  # its post is recorded below: clicks re-render from it
        _message("current-alert", lead_id="hot", created_at=OLD),  # the lead's last alert
        _message("past-alert", lead_id="hot", created_at=OLD - timedelta(days=1)),
        _message("digest-old", kind="digest", payload={"chart": {"png_base64": "AAAA"}}),
        _message("proposal:v2:slack:@U1", kind="proposal"),  # v2 still waits for a decision
        _message("proposal:v3:slack:@U1", kind="proposal"),  # v3 was rejected
    ]
    versions = [
        {"id": n, "yaml": "model: {name: m}", "status": status, "created_by": "t",
         "created_at": OLD, "labels": 0, "metrics": {}}
        for n, status in ((2, "proposed"), (3, "rejected"))
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(insert(LEADS).values(id="hot", alerted_at=OLD, **lead))
        await conn.execute(insert(OUTBOX), messages)
        await conn.execute(insert(VERSIONS), versions)
        clicked = (
            await conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.dedupe_key == "clicked-old"))
        ).scalar_one()
        await conn.execute(
            insert(POSTS).values(lead_id="x", outbox_id=clicked, platform="slack",
                                 channel="C1", ts="1.1", posted_at=OLD)
        )  # fmt: skip
        await conn.execute(
            insert(HANDLED),
            [{"key": "slack:cmd:old", "at": NOW - timedelta(hours=25)},
             {"key": "slack:cmd:new", "at": NOW - timedelta(hours=23)}],
        )  # fmt: skip


async def _left(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    async with engine.connect() as conn:
        keys = set((await conn.execute(select(OUTBOX.c.dedupe_key))).scalars())
        handled = set((await conn.execute(select(HANDLED.c.key))).scalars())
    return keys, handled


async def test_prunes_what_nothing_reads_and_keeps_the_rest(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await _seed(engine)
    pruned = await retention_sweep(engine, config=config, now=NOW.timestamp())
    keys, handled = await _left(engine)
    assert handled == {"slack:cmd:new"}
    assert keys == {
        "sent-recent", "pending-old", "sending-old", "dead-old", "clicked-old",
        "current-alert", "proposal:v2:slack:@U1",
    }  # fmt: skip
    assert (pruned.handled_requests, pruned.outbox) == (1, 4)
    again = await retention_sweep(engine, config=config, now=NOW.timestamp())
    assert (again.handled_requests, again.outbox) == (0, 0)


async def test_the_period_is_the_configured_one(engine: AsyncEngine) -> None:
    config = load_config(text=SMALL_MODEL + "retention: {sent_outbox_days: 40}\n", name="r")
    await _seed(engine)
    assert (await retention_sweep(engine, config=config, now=NOW.timestamp())).outbox == 0
    keys, _ = await _left(engine)
    assert {"sent-old", "digest-old"} <= keys


async def test_batches_until_done(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(OUTBOX), [_message(f"m{i}") for i in range(7)])
        gone = [await conn.run_sync(lambda c: prune_sent_outbox(c, before=NOW, limit=3))
                for _ in range(3)]  # fmt: skip
    assert gone == [3, 3, 1]


async def test_the_scheduled_job_runs_each_slot_once(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await _seed(engine)
    [job] = [j for j in jobs_for(config) if j.id == "retention"]
    first = await run_job(job, engine=engine, config=config, now=NOW.timestamp())
    assert first.ran
    assert first.outcome == (
        "ok: 1 request keys, 4 sent messages, 0 event payloads pruned; "
        "0 new events counted into the tally"
    )
    second = await run_job(job, engine=engine, config=config, now=NOW.timestamp() + 60)
    assert not second.ran  # the same hourly slot, as another replica would fire it
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar_one()
    assert count == 7
