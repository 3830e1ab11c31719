"""The outbox dispatcher on a real database: once, in order, retried, never lost."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox import (
    LEASE,
    MAX_ATTEMPTS,
    ByDestination,
    ConsoleTransport,
    DeliveryError,
    Dispatcher,
)
from storage.ingest import OUTBOX, enqueue
from storage.outbox import Claimed, claim
from tests.bot.conftest import T0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A transport that records deliveries and fails the first ``failures`` of them."""

    def __init__(self, failures: int = 0, retry_after: float | None = None) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.attempts: list[int] = []
        self.delivered: list[int] = []

    async def deliver(self, message: Claimed) -> None:
        self.attempts.append(message.id)
        if len(self.attempts) <= self.failures:
            raise DeliveryError("platform says no", retry_after=self.retry_after)
        self.delivered.append(message.id)


async def _queue(engine: AsyncEngine, *keys: str) -> None:
    rows = [
        {"kind": "alert", "lead_id": "u1", "destination": "default", "dedupe_key": key,
         "payload": {"n": i}, "status": "pending", "attempts": 0,
         "available_at": T0, "created_at": T0}
        for i, key in enumerate(keys)
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=rows))


async def _rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))
        return [dict(r) for r in result.mappings()]


async def test_each_message_is_delivered_once_in_order(engine: AsyncEngine) -> None:
    await _queue(engine, "a", "b", "c")
    await _queue(engine, "b")  # the same decision again: skipped by its dedupe key
    transport, clock = Recorder(), Clock(T0)
    dispatcher = Dispatcher(engine, transport, clock=clock)
    assert await dispatcher.run_once() == 3
    assert await dispatcher.run_once() == 0
    rows = await _rows(engine)
    assert transport.delivered == [r["id"] for r in rows]
    assert [r["status"] for r in rows] == ["sent"] * 3


async def test_a_failed_delivery_waits_for_retry_after_then_succeeds(engine: AsyncEngine) -> None:
    await _queue(engine, "a")
    transport, clock = Recorder(failures=1, retry_after=30), Clock(T0)
    dispatcher = Dispatcher(engine, transport, clock=clock)
    assert await dispatcher.run_once() == 0
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 1, "platform says no")
    assert row["available_at"].timestamp() == pytest.approx(T0 + 30)
    clock.now = T0 + 29
    assert await dispatcher.run_once() == 0
    clock.now = T0 + 31
    assert await dispatcher.run_once() == 1
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert len(transport.attempts) == 2


async def test_a_message_that_keeps_failing_is_given_up_not_retried_forever(
    engine: AsyncEngine,
) -> None:
    await _queue(engine, "a")
    transport, clock = Recorder(failures=100), Clock(T0)
    dispatcher = Dispatcher(engine, transport, clock=clock)
    for _ in range(MAX_ATTEMPTS + 3):
        await dispatcher.run_once()
        clock.now += 3600
    [row] = await _rows(engine)
    assert row["status"] == "dead"
    assert len(transport.attempts) == MAX_ATTEMPTS


async def test_a_claim_abandoned_by_a_crash_is_delivered_after_its_lease(
    engine: AsyncEngine,
) -> None:
    await _queue(engine, "a")
    async with engine.begin() as conn:  # a dispatcher that claims, then dies
        [claimed] = await claim(conn, now=datetime.fromtimestamp(T0, UTC), lease=LEASE)
    transport, clock = Recorder(), Clock(T0 + 1)
    dispatcher = Dispatcher(engine, transport, clock=clock)
    assert await dispatcher.run_once() == 0  # still leased to the dead one
    clock.now = T0 + LEASE.total_seconds() + 1
    assert await dispatcher.run_once() == 1
    assert transport.delivered == [claimed.id]


async def test_messages_go_to_their_platform_and_unknown_ones_are_dead(
    engine: AsyncEngine,
) -> None:
    rows = [
        {"kind": "alert", "lead_id": "u1", "destination": dest, "dedupe_key": dest,
         "payload": {}, "status": "pending", "attempts": 0, "available_at": T0,
         "created_at": T0}
        for dest in ("console", "slack:#sales", "teams:19:abc")
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=rows))
    console, slack = Recorder(), Recorder()
    transport = ByDestination({"console": console, "slack": slack})
    assert await Dispatcher(engine, transport, clock=Clock(T0)).run_once() == 2
    by_dest = {r["destination"]: r for r in await _rows(engine)}
    assert console.delivered == [by_dest["console"]["id"]]
    assert slack.delivered == [by_dest["slack:#sales"]["id"]]
    assert by_dest["teams:19:abc"]["status"] == "dead"
    assert "no transport for 'teams:19:abc'" in by_dest["teams:19:abc"]["last_error"]


def test_the_console_prints_a_digests_plain_text_not_its_chart() -> None:
    stream = io.StringIO()
    payload = {
        "plain": "Weekly digest\nBad\x1b[31m lead",
        "text": "escaped",
        "chart": "iVBOR" * 999,
    }
    asyncio.run(ConsoleTransport(stream).deliver(Claimed(1, "digest", None, "console", payload, 0)))
    printed = stream.getvalue()
    assert printed.startswith("[digest] Weekly digest\nBad")
    assert "\x1b" not in printed  # a terminal escape in lead data is shown, not obeyed
    assert "iVBOR" not in printed


def test_the_console_prints_a_kind_without_text_without_its_bulky_fields() -> None:
    stream = io.StringIO()
    payload = {"version": 3, "chart": "iVBOR" * 999, "blocks": [{"type": "section"}]}
    asyncio.run(ConsoleTransport(stream).deliver(Claimed(2, "other", None, "console", payload, 0)))
    assert stream.getvalue() == "[other] version=3\n\n"
