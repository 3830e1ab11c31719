"""The rescore's helper process (``bot.models.rescore_helper``): it is used from
``helper_from`` leads on a SQLite file, and whatever happens to it — killed between pages,
unable to open the database, never started — the rescore stores what every lead scores
alone, working out itself what the helper did not send. Its state keys are the same in
every process."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.models.rescore import Ahead, Rescored, prepare, rescore
from bot.models.rescore_helper import ALL_ROWIDS, PointsHelper, code_stamp
from bot.models.rescore_points import state_key
from scoring.engine import score
from scoring.state import LeadState
from storage import offloop
from storage.ingest import upsert_leads
from storage.tables import Lead
from tests.bot.models.test_versions import MODEL, NOW, _row, _state

LEADS = Lead.__table__  # type: ignore[attr-defined]
BUMPED = replace(MODEL, rules=tuple(replace(r, points=r.points + 5) for r in MODEL.rules))


async def _seed(engine: AsyncEngine, count: int) -> None:
    rng = random.Random(5)
    rows = [_row(f"lead-{i:03}", _state(rng, MODEL), MODEL) for i in range(count)]
    await offloop.write(engine, lambda c: upsert_leads(c, rows=rows))


async def _rescore(engine: AsyncEngine, ahead: Ahead) -> Rescored:
    def run(conn: Connection) -> Rescored:
        return rescore(
            conn, model=BUMPED, now=NOW, history_delta=5.0, cause="t", ahead=ahead, chunk=5
        )

    try:
        return await offloop.write(engine, run)
    finally:
        ahead.close()


async def _assert_each_scores_alone(engine: AsyncEngine, count: int) -> None:
    async with engine.connect() as conn:
        stored = (await conn.execute(select(LEADS.c.id, LEADS.c.state, LEADS.c.score))).all()
    assert len(stored) == count
    for lead_id, state, points in stored:
        expected = score(LeadState.from_dict(state), BUMPED, NOW, explain=False).total
        assert points == pytest.approx(expected), lead_id


async def test_prepare_hands_the_points_to_a_helper_from_helper_from_leads(
    sqlite_engine: AsyncEngine,
) -> None:
    await _seed(sqlite_engine, 12)
    for helper_from, used in ((13, False), (12, True), (None, False)):
        ahead = await offloop.read(
            sqlite_engine,
            lambda c, h=helper_from: prepare(c, model=BUMPED, now=NOW, chunk=5, helper_from=h),
        )
        try:
            assert (ahead.helper is not None) == used, helper_from
            assert len(ahead.whole()) == 12  # the helper's pages, or worked out here
        finally:
            ahead.close()


async def test_a_helper_killed_between_pages_leaves_the_rest_to_the_rescore(
    sqlite_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await _seed(sqlite_engine, 40)
    ahead = await offloop.read(
        sqlite_engine, lambda c: prepare(c, model=BUMPED, now=NOW, chunk=5, helper_from=0)
    )
    assert ahead.helper is not None
    assert ahead.helper.running
    ahead.helper._process.kill()  # it has sent its first page of 5 at most
    with caplog.at_level(logging.WARNING, logger="bot.models.rescore_helper"):
        done = await _rescore(sqlite_engine, ahead)
    assert done.leads == 40
    await _assert_each_scores_alone(sqlite_engine, 40)
    assert "the rescore works the rest out itself" in caplog.text
    assert ahead.helper._process.returncode is not None  # reaped, not left behind


def test_a_helper_that_cannot_open_the_database_says_why_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "not-there.db")
    with caplog.at_level(logging.WARNING, logger="bot.models.rescore_helper"):
        helper = PointsHelper.start(missing, BUMPED, NOW, 5)
    assert helper is not None
    assert not helper.running
    assert len(helper.known_for(-1, ALL_ROWIDS)) == 0
    assert "unable to open database file" in caplog.text
    assert not Path(missing).exists()  # it created no empty database


def test_a_helper_whose_code_differs_from_the_rescores_declines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As after an upgrade on disk under a running ``leadbot serve``: another stamp."""
    older = tuple((name, size + 1, mtime) for name, size, mtime in code_stamp())
    with caplog.at_level(logging.WARNING, logger="bot.models.rescore_helper"):
        helper = PointsHelper.start(str(tmp_path / "x.db"), BUMPED, NOW, 5, stamp=older)
        assert helper is not None
        assert len(helper.known_for(-1, ALL_ROWIDS)) == 0
    assert not helper.running
    assert "scoring code on disk is not the code of the rescore" in caplog.text


def test_a_helper_whose_interpreter_cannot_run_is_no_helper(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.models.rescore_helper"):
        helper = PointsHelper.start(
            str(tmp_path / "x.db"), BUMPED, NOW, 5, python=str(tmp_path / "no-python")
        )
    assert helper is None
    assert "cannot start the rescore's helper process" in caplog.text


async def test_a_helper_finishes_and_exits_by_itself(sqlite_engine: AsyncEngine) -> None:
    await _seed(sqlite_engine, 23)
    ahead = await offloop.read(
        sqlite_engine, lambda c: prepare(c, model=BUMPED, now=NOW, chunk=5, helper_from=0)
    )
    assert ahead.helper is not None
    done = await _rescore(sqlite_engine, ahead)
    assert done.leads == 23
    assert not ahead.helper.running
    assert ahead.helper._process.returncode == 0
    await _assert_each_scores_alone(sqlite_engine, 23)


def test_state_keys_are_the_same_in_another_process() -> None:
    """Python's ``hash`` of a str differs between processes; the helper's keys must not."""
    texts = ['{"fit":["a"],"intent":{}}', '{"traits":{"title":"VP"}}', "é" * 40]
    code = (
        "import json, sys; from bot.models.rescore_points import state_key; "
        "print(json.dumps([state_key(t) for t in json.loads(sys.argv[1])]))"
    )
    for seed in ("1", "2"):
        env = os.environ | {"PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, json.dumps(texts)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(out.stdout) == [state_key(t) for t in texts]
    assert len({state_key(t) for t in texts}) == 3
