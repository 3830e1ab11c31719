"""Claims over a backlog: the same messages as the rule says, at a cost that does not grow
with the number of messages waiting (after an outage a paced channel can have tens of
thousands)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.ingest import OUTBOX
from storage.outbox import claim

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
DESTINATIONS = ("C01", "C02", "C03", "console", "teams:19:abc")


def _message(i: int, destination: str, status: str, available: timedelta) -> dict[str, Any]:
    return {"kind": "alert", "lead_id": f"u{i}", "destination": destination,
            "dedupe_key": f"k{i}", "payload": {"n": i}, "status": status, "attempts": 0,
            "available_at": NOW + available, "created_at": NOW - timedelta(hours=1)}  # fmt: skip


def _mixed(seed: int, n: int = 120) -> list[dict[str, Any]]:
    """Messages in every state: due, waiting for a retry, sent, dead, sending under a live
    lease (its destination is held) or an expired one (due again)."""
    rng = random.Random(seed)
    states = [("pending", -1), ("pending", 1), ("sent", -1), ("dead", -1), ("sending", -1),
              ("sending", 1)]  # fmt: skip
    weights = [60, 8, 15, 3, 6, 1]
    rows = []
    for i in range(n):
        status, sign = rng.choices(states, weights)[0]
        minutes = sign * rng.randint(1, 30)
        rows.append(_message(i, rng.choice(DESTINATIONS), status, timedelta(minutes=minutes)))
    return rows


def _expected(rows: list[dict[str, Any]], ids: list[int], **kw: Any) -> list[int]:
    """The claim rule, written plainly over the rows (``ids``: their ids in order)."""
    held = {r["destination"] for r in rows if r["status"] == "sending" and r["available_at"] > NOW}
    due = [
        (i, r) for i, r in zip(ids, rows, strict=True)
        if r["status"] in ("pending", "sending") and r["available_at"] <= NOW
        and r["destination"] not in held and r["destination"] not in kw.get("skip", ())
        and kw.get("destination") in (None, r["destination"])
    ]  # fmt: skip
    if kw.get("per_destination") is None:
        return sorted(i for i, _ in due)[: kw["limit"]]
    nth: dict[str, int] = {}
    ranked = []
    for i, r in sorted(due, key=lambda x: x[0]):
        nth[r["destination"]] = nth.get(r["destination"], 0) + 1
        if nth[r["destination"]] <= kw["per_destination"]:
            ranked.append((nth[r["destination"]], i))
    return sorted(i for _, i in sorted(ranked)[: kw["limit"]])


async def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    await conn.execute(insert(OUTBOX), rows)
    keys = [r["dedupe_key"] for r in rows]
    found = await conn.execute(select(OUTBOX.c.dedupe_key, OUTBOX.c.id))
    by_key = {key: message_id for key, message_id in found.all()}
    return [by_key[k] for k in keys]


CLAIMS: list[dict[str, Any]] = [
    {"limit": 10, "per_destination": 1},
    {"limit": 3, "per_destination": 2},
    {"limit": 50, "per_destination": 4, "skip": ("C02", "console")},
    {"limit": 7},
    {"limit": 5, "destination": "C01"},
    {"limit": 5, "destination": "teams:19:abc"},
    {"limit": 5, "destination": "C01", "skip": ("C01",)},  # skipped even when named
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kw", CLAIMS)
async def test_a_claim_takes_the_messages_the_rule_names(
    engine: AsyncEngine, seed: int, kw: dict[str, Any]
) -> None:
    rows = _mixed(seed)
    async with engine.begin() as conn:
        ids = await _insert(conn, rows)
        got = await claim(conn, now=NOW, lease=LEASE, **kw)
        after = {r.id: r for r in (await conn.execute(select(OUTBOX))).all()}
    assert [m.id for m in got] == _expected(rows, ids, **kw)
    for m in got:  # leased and counted
        assert after[m.id].status == "sending"
        assert after[m.id].available_at.replace(tzinfo=UTC) == NOW + LEASE
        assert m.attempts == 1


async def _steps(conn: AsyncConnection, run: Callable[[], Any]) -> int:
    """SQLite virtual-machine steps (in hundreds) that ``run`` costs: rows and index
    entries visited, not seconds, so the count is the same on a slow machine."""
    raw = await conn.get_raw_connection()
    sqlite = raw.driver_connection._conn  # type: ignore[union-attr]
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    sqlite.set_progress_handler(tick, 100)
    try:
        await run()
    finally:
        sqlite.set_progress_handler(None, 100)
    return counted[0]


@pytest.mark.parametrize("kw", [{"per_destination": 1}, {"destination": "C02"}])
async def test_a_claim_costs_the_same_behind_a_backlog(
    sqlite_engine: AsyncEngine, kw: dict[str, Any]
) -> None:
    costs = []
    for waiting in (200, 6_000):
        async with sqlite_engine.begin() as conn:
            await conn.execute(OUTBOX.delete())
            rows = [_message(i, DESTINATIONS[i % 3], "pending", -timedelta(minutes=1))
                    for i in range(waiting)]  # fmt: skip
            await _insert(conn, rows)

            async def run(conn: AsyncConnection = conn) -> None:
                assert await claim(conn, now=NOW, lease=LEASE, limit=3, **kw)

            costs.append(await _steps(conn, run))
            await conn.rollback()
    # Ranking every waiting message made the second claim ~30 times the first.
    assert costs[1] < 2 * costs[0] + 50, costs
