"""``leadbot import events FILE.jsonl``: a backfill scores leads as the webhooks would, a
second run stores nothing, bad calls are named by file, line and field (lenient: the rest is
stored; ``--strict``: nothing is), standard input works, no alert is queued, and a run killed
with -9 midway then run again stores every event once."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from config.loader import load_config
from storage.engine import create_engine
from storage.ingest import EVENTS
from storage.migrate import upgrade
from storage.statistics import INGEST_TABLES, LOAD_ROWS, refresh_statistics
from storage.tables import Lead, OutboxMessage
from tests.bot.rfm_client import DAY, cli, iso, post, shop

LEADS = Lead.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def _calls(now: float) -> list[dict[str, Any]]:
    """Three people over the last ten days: one ends hot (a demo request, pricing pages)."""
    calls: list[dict[str, Any]] = []
    people = (("VP Sales", 400), ("Intern", 5), ("Head of Revenue", 900))
    for n, (title, size) in enumerate(people):
        user, at = f"u{n}", now - 10 * DAY + n * 3600
        traits = {"email": f"p{n}@acme{n}.example", "title": title,
                  "company": {"employee_count": size, "industry": "Software"}}  # fmt: skip
        calls.append({"type": "identify", "userId": user, "timestamp": iso(at),
                      "messageId": f"id-{n}", "traits": traits})  # fmt: skip
        for k in range(3 + 2 * n):
            page = {"path": "/pricing"}
            calls.append({"type": "page", "userId": user, "name": "pricing",
                          "properties": page, "timestamp": iso(at + k * DAY)})  # fmt: skip
        if n != 1:
            calls.append({"type": "track", "userId": user, "event": "Demo Requested",
                          "timestamp": iso(now - DAY), "messageId": f"demo-{n}"})  # fmt: skip
    return calls


async def _rows(url: str, query: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def _leads(url: str) -> dict[str, tuple[float, str]]:
    rows = await _rows(url, select(LEADS.c.id, LEADS.c.score, LEADS.c.band, LEADS.c.anonymous))
    return {r.id: (r.score, r.band) for r in rows if not r.anonymous}


async def _count(url: str, table: Any) -> int:
    return int((await _rows(url, select(func.count()).select_from(table)))[0][0])


def _jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"".join((orjson.dumps(x) if not isinstance(x, bytes) else x) + b"\n"
                              for x in lines))  # fmt: skip
    return path


async def test_a_backfill_scores_as_the_webhooks_would_and_a_second_run_stores_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import time

    calls = _calls(time.time())
    # One call a line, and the same calls again as one batch line: duplicates within the file.
    path = _jsonl(tmp_path / "past.jsonl", [*calls, {"batch": calls[:4]}])
    code, out, err = await cli(  # groups of 4: a lead's events span several transactions
        monkeypatch, capsys, db_url, "import", "events", str(path), "--group", "4"
    )
    assert code == 0, err
    assert f"{len(calls) + 4} calls — {len(calls)} events stored, 4 duplicates" in out
    imported = await _leads(db_url)

    reference = f"sqlite+aiosqlite:///{tmp_path}/webhooks.db"
    async with shop(reference, load_config()) as client:
        status, _ = await post(client, calls)
        assert status == 202
    sent = await _leads(reference)
    assert set(imported) == set(sent)
    assert len(imported) == 3
    for lead_id, (score, band) in sent.items():
        assert imported[lead_id][0] == pytest.approx(score, abs=0.05), lead_id
        assert imported[lead_id][1] == band, lead_id
    assert "hot" in {band for _, band in imported.values()}
    assert await _count(reference, OUTBOX) > 0  # live, the hot lead is announced
    assert await _count(db_url, OUTBOX) == 0  # history is not news: no alert

    events = await _count(db_url, EVENTS)
    code, out, err = await cli(monkeypatch, capsys, db_url, "import", "events", str(path))
    assert code == 0, err
    assert f"0 events stored, {len(calls) + 4} duplicates" in out
    assert await _count(db_url, EVENTS) == events
    again = await _leads(db_url)
    assert {k: v[1] for k, v in again.items()} == {k: v[1] for k, v in imported.items()}


BAD_LINES: list[Any] = [
    {"type": "identify", "userId": "u1", "traits": {"email": "a@x.example"}, "messageId": "m1"},
    b"",
    b"{not json",
    {"type": "track", "userId": "u1", "event": "Demo Requested", "timestamp": "yesterday",
     "messageId": "m2"},
    {"batch": [{"type": "page", "userId": "u1", "name": "pricing", "messageId": "m3"},
               {"type": "track", "userId": "u2", "messageId": "m4"}]},
]  # fmt: skip


async def test_bad_calls_are_named_by_line_and_field_and_the_rest_is_stored(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = _jsonl(tmp_path / "mixed.jsonl", BAD_LINES)
    code, out, err = await cli(monkeypatch, capsys, db_url, "import", "events", str(path))
    assert code == 1
    lines = err.splitlines()
    assert any(line.startswith(f"{path}:3: line: invalid JSON at column 2") for line in lines)
    assert f"{path}:4: timestamp: not an ISO 8601 time: 'yesterday'" in lines
    assert f"{path}:5: batch[1].event: track needs a non-empty event name" in lines
    assert "5 calls — 2 events stored, 0 duplicates (already stored), 3 rejected" in out
    assert await _count(db_url, EVENTS) == 2


async def test_strict_imports_nothing_from_a_file_with_a_bad_call(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = _jsonl(tmp_path / "mixed.jsonl", BAD_LINES)
    code, out, err = await cli(
        monkeypatch, capsys, db_url, "import", "events", str(path), "--strict"
    )
    assert code == 1
    assert f"{path}:4: timestamp: not an ISO 8601 time: 'yesterday'" in err.splitlines()
    assert "nothing imported (--strict): 3 of 5 calls have problems" in out
    assert await _count(db_url, EVENTS) == 0
    good = _jsonl(tmp_path / "good.jsonl", [BAD_LINES[0], BAD_LINES[4]["batch"][0]])
    code, out, err = await cli(
        monkeypatch, capsys, db_url, "import", "events", str(good), "--strict"
    )
    assert (code, await _count(db_url, EVENTS)) == (0, 2), err


async def test_standard_input_and_a_missing_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    body = _jsonl(tmp_path / "in.jsonl", [BAD_LINES[0]]).read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    code, out, err = await cli(monkeypatch, capsys, db_url, "import", "events", "-")
    assert code == 0, err
    assert "1 events stored" in out
    code, _, err = await cli(
        monkeypatch, capsys, db_url, "import", "events", str(tmp_path / "nope.jsonl")
    )
    assert code == 2
    assert "nope.jsonl: no such file" in err


def _many_calls(n: int, now: float) -> list[dict[str, Any]]:
    """``n`` calls from 300 people over the last 30 days, each with a messageId."""
    calls: list[dict[str, Any]] = []
    for i in range(n):
        user, at = f"p{i % 300}", now - 30 * DAY + i * 60
        if i < 300:
            calls.append({"type": "identify", "userId": user, "timestamp": iso(at),
                          "messageId": f"m{i}", "traits": {"email": f"{user}@x.example",
                                                           "title": "VP Sales"}})  # fmt: skip
        else:
            calls.append({"type": "page", "userId": user, "name": "pricing", "messageId": f"m{i}",
                          "properties": {"path": "/pricing"}, "timestamp": iso(at)})  # fmt: skip
    return calls


def test_a_backfill_killed_midway_and_run_again_stores_every_event_once(tmp_path: Path) -> None:
    import os
    import signal
    import sqlite3
    import subprocess
    import time

    from tests.bench.servers import leadbot_command

    calls = _many_calls(12_000, time.time())
    path = _jsonl(tmp_path / "big.jsonl", calls)
    killed, whole = tmp_path / "killed.db", tmp_path / "whole.db"
    command = [*leadbot_command(), "import", "events", str(path), "--group", "200"]
    env = {k: v for k, v in os.environ.items() if k != "LEADBOT_CONFIG"}  # the bundled model

    def events_in(db: Path) -> int:
        try:
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:  # not created or migrated yet
            return 0

    first = subprocess.Popen([*command, "--db", str(killed)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while events_in(killed) < 1_000:
        assert first.poll() is None, "the import ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    stored = events_in(killed)
    assert 0 < stored < len(calls)  # killed midway, each group committed whole or not at all
    assert stored % 200 == 0

    again = subprocess.run([*command, "--db", str(killed)], env=env, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"{len(calls) - stored:,} events stored, {stored:,} duplicates" in again.stdout
    once = subprocess.run([*command, "--db", str(whole)], env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert events_in(killed) == events_in(whole) == len(calls)

    def leads(db: Path) -> dict[str, tuple[str, int]]:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT id, band, state FROM leads").fetchall()
        counted = {i: orjson.loads(state)["intent"]["pricing_page"][2] for i, _, state in rows}
        return {i: (band, counted[i]) for i, band, _ in rows}

    assert leads(killed) == leads(whole)  # the same bands and pricing-page counts, once each


def _pages(now: float, users: range) -> list[dict[str, Any]]:
    return [{"type": "page", "userId": f"u{i}", "messageId": f"m{i}",
             "properties": {"path": "/pricing"}, "timestamp": iso(now - DAY)}
            for i in users]  # fmt: skip


@pytest.mark.postgres
async def test_a_server_that_planned_on_a_small_table_plans_again_after_an_import(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A running server's prepared statements keep the plan made when the table was small
    (a scan of the whole table) until PostgreSQL's statistics change; the import refreshes
    them at its end."""
    engine = create_engine(postgres_url)
    await upgrade(engine)
    try:
        async with engine.connect() as server:  # a connection that lives through the import
            raw = (await server.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.executemany(  # a new deployment's first rows, analyzed as autovacuum
                "INSERT INTO identities (key, lead_id) VALUES ($1, $2)",  # does past 50
                [(f"user:first{i}", f"first{i}") for i in range(60)],
            )
            await raw.execute("ANALYZE identities")
            await raw.execute("SET plan_cache_mode = force_generic_plan")  # as after 5 runs
            await raw.execute(  # the ingest's look-up (storage.ingest.resolve_identities)
                "PREPARE lookup(varchar, varchar) AS "
                "SELECT key, lead_id FROM identities WHERE key IN ($1, $2)"
            )
            plan = "EXPLAIN EXECUTE lookup('user:u1', 'user:u2')"
            assert "Seq Scan" in "\n".join(r[0] for r in await raw.fetch(plan))
            path = _jsonl(tmp_path / "many.jsonl", _pages(time.time(), range(LOAD_ROWS)))
            args = ("import", "events", str(path))
            code, _, err = await cli(monkeypatch, capsys, postgres_url, *args)
            assert code == 0, err
            assert "Index" in "\n".join(r[0] for r in await raw.fetch(plan))
            analyzed = await raw.fetch(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
            )
    finally:
        await engine.dispose()
    assert {r[0] for r in analyzed} >= set(INGEST_TABLES)


async def test_statistics_are_postgresql_s_alone(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        await upgrade(engine)
        assert await refresh_statistics(engine, LOAD_ROWS) is False
        async with engine.connect() as conn:  # no sqlite_stat1: SQLite plans by its indexes
            names = (await conn.execute(text("SELECT name FROM sqlite_master"))).scalars().all()
    finally:
        await engine.dispose()
    assert "sqlite_stat1" not in names
