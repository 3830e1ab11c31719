"""The outbox dispatcher on a real database: once, in order, retried, never lost."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import OUTBOX_DELIVERIES
from bot.outbox.dispatcher import (
    BACKOFF_CAP,
    LEASE,
    ByDestination,
    ConsoleTransport,
    DeliveryError,
    Dispatcher,
)
from storage.engine import session_factory
from storage.ingest import OUTBOX, enqueue
from storage.outbox import Claimed, claim, mark_sent, start
from storage.posts import record_post
from tests.bot.conftest import T0
from tests.fakes.clock import Clock


class Recorder:
    """A transport that records deliveries and fails the first ``failures`` of them."""

    def __init__(
        self, failures: int = 0, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.permanent = permanent
        self.attempts: list[int] = []
        self.delivered: list[int] = []

    async def deliver(self, message: Claimed) -> None:
        self.attempts.append(message.id)
        if len(self.attempts) <= self.failures:
            raise DeliveryError(
                "platform says no", retry_after=self.retry_after, permanent=self.permanent
            )
        self.delivered.append(message.id)


async def _queue(engine: AsyncEngine, *keys: str, at: float = T0) -> None:
    rows: list[dict[str, Any]] = [
        {"kind": "alert", "lead_id": "u1", "destination": "default", "dedupe_key": key,
         "payload": {"n": i}, "status": "pending", "attempts": 0,
         "available_at": at, "created_at": at}
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


async def _run_until(dispatcher: Dispatcher, clock: Clock, end: float, step: float) -> None:
    while clock.now < end:
        await dispatcher.run_once()
        clock.now += step


async def test_a_failing_message_is_retried_with_capped_backoff_until_its_give_up_time(
    engine: AsyncEngine,
) -> None:
    await _queue(engine, "a")
    transport, clock = Recorder(failures=10_000), Clock(T0)
    dispatcher = Dispatcher(engine, transport, clock=clock, give_up_hours=2)
    times: list[float] = []
    while clock.now < T0 + 2 * 3600 - BACKOFF_CAP:
        assert await dispatcher.run_once() == 0
        times.append(clock.now)
        [row] = await _rows(engine)
        assert row["status"] == "pending"  # two hours of failures are only a delay
        clock.now = row["available_at"].timestamp() - 1
        assert await dispatcher.run_once() == 0  # not before its time
        clock.now += 1
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [2, 4, 8, 16]
    assert max(gaps) == BACKOFF_CAP
    await _run_until(dispatcher, clock, T0 + 2 * 3600 + BACKOFF_CAP + 1, 30)
    [row] = await _rows(engine)
    assert row["status"] == "dead"
    assert row["last_error"] == "gave up after 2 h: platform says no"
    attempts = len(transport.attempts)
    await _run_until(dispatcher, clock, clock.now + 3600, 60)
    assert len(transport.attempts) == attempts  # dead stays dead


async def test_retry_after_waits_never_make_a_message_dead(engine: AsyncEngine) -> None:
    await _queue(engine, "a")
    transport, clock = Recorder(failures=60, retry_after=1800), Clock(T0)
    dispatcher = Dispatcher(engine, transport, clock=clock, give_up_hours=1)
    await _run_until(dispatcher, clock, T0 + 40 * 3600, 600)
    [row] = await _rows(engine)
    assert (row["status"], len(transport.delivered)) == ("sent", 1)


async def test_a_permanent_error_is_dead_at_once_with_its_error(engine: AsyncEngine) -> None:
    await _queue(engine, "a")
    transport = Recorder(failures=1, permanent=True)
    dead = OUTBOX_DELIVERIES.labels(transport="default", outcome="dead")
    before = dead._value.get()
    assert await Dispatcher(engine, transport, clock=Clock(T0)).run_once() == 0
    [row] = await _rows(engine)
    assert (row["status"], row["last_error"]) == ("dead", "platform says no")
    assert dead._value.get() == before + 1


async def test_a_worker_that_lost_its_lease_does_not_send(engine: AsyncEngine) -> None:
    await _queue(engine, "a")
    now = datetime.fromtimestamp(T0, UTC)
    async with engine.begin() as conn:
        [first] = await claim(conn, now=now, lease=LEASE)
    async with engine.begin() as conn:  # the first worker stalled past its lease
        [second] = await claim(conn, now=now + LEASE * 2, lease=LEASE)
    async with engine.begin() as conn:
        assert not await start(conn, first, until=now + LEASE * 3)
        assert await start(conn, second, until=now + LEASE * 3)
    async with engine.begin() as conn:
        assert not await mark_sent(conn, first, now=now + LEASE * 3)
    [row] = await _rows(engine)
    assert (row["status"], row["attempts"], row["unsure"]) == ("sending", 2, True)


async def test_an_unsure_alert_whose_post_is_recorded_is_marked_sent_without_a_send(
    engine: AsyncEngine,
) -> None:
    """A crash after the post was recorded and before it was marked sent."""
    await _queue(engine, "a")
    now = datetime.fromtimestamp(T0, UTC)
    async with engine.begin() as conn:
        [claimed] = await claim(conn, now=now, lease=LEASE)
        assert await start(conn, claimed, until=now + LEASE)
    async with session_factory(engine)() as session:
        await record_post(
            session, lead_id="u1", outbox_id=claimed.id, platform="teams", channel="19:c",
            ts="1700", at=now,
        )  # fmt: skip
        await session.commit()
    transport, clock = Recorder(), Clock(T0 + LEASE.total_seconds() + 1)
    assert await Dispatcher(engine, transport, clock=clock).run_once() == 1
    assert transport.attempts == []
    [row] = await _rows(engine)
    assert (row["status"], row["unsure"]) == ("sent", False)


class Hangs:
    """A transport whose send never returns (a platform that stopped answering)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.held: list[float] = []  # seconds each send ran before it was cut off

    async def deliver(self, message: Claimed) -> None:
        self.started.append(message.id)
        began = time.monotonic()
        try:
            await asyncio.Event().wait()
        finally:
            self.held.append(time.monotonic() - began)


async def test_a_send_is_cut_off_inside_its_lease_and_left_unsure(
    sqlite_engine: AsyncEngine,
) -> None:
    await _queue(sqlite_engine, "a", at=time.time())
    # 2 s: the send is cut at 1.5 s, and the claim's and the mark's transactions have the
    # rest, even on a box running four test workers on two cores (0.4 s ran out once).
    lease = timedelta(seconds=2)
    transport = Hangs()
    dispatcher = Dispatcher(sqlite_engine, transport, clock=time.time, lease=lease)
    began = time.monotonic()
    assert await dispatcher.run_once() == 0
    assert time.monotonic() - began < lease.total_seconds()
    [held] = transport.held  # the send itself, from its renewed lease: well inside it
    assert held < lease.total_seconds()
    [row] = await _rows(sqlite_engine)
    assert (row["status"], row["unsure"]) == ("pending", True)


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
    rows: list[dict[str, Any]] = [
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
