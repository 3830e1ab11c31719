"""``leadbot model import FILE [--activate]`` on real databases: a model with a rule added
goes live in one command and explains the lead; a bad file stores nothing; re-importing
the active model stores nothing; a config file other than the active version is warned
about at start-up, naming the command that imports it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import with_active_model
from bot.chat.lookup import lead_report
from bot.cli import main
from bot.ingest.pipeline import Pipeline
from bot.models.versions import active_model
from bot.serve import _model_drift
from config.loader import LeadbotConfig, load_config
from config.settings import load_settings
from storage import models as repo
from storage.engine import session_factory
from storage.tables import Lead
from tests.bot.conftest import IDEAL, SMALL_MODEL, T0, events, identify

NAMED_RULE = """  - id: named_contact
    label: Named contact
    points: 7
    when: {name: {exists: true}}
"""
WITH_RULE = SMALL_MODEL.replace("fit:\n", "fit:\n" + NAMED_RULE, 1)


@pytest.fixture
async def dana(
    engine: AsyncEngine, db_url: str, config: LeadbotConfig, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncEngine:  # fmt: skip
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(identify("u-dana", T0, **IDEAL)), now=T0)
    (tmp_path / "small.yaml").write_text(SMALL_MODEL)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("LEADBOT_CONFIG", str(tmp_path / "small.yaml"))
    return engine


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def _versions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [v.status for v in await conn.run_sync(repo.list_versions)]


async def test_an_imported_model_goes_live_and_explains_the_lead(
    dana: AsyncEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "learned.yaml"
    path.write_text(WITH_RULE)
    assert await _cli("model", "import", str(path), "--activate") == 0
    out = capsys.readouterr().out
    assert f"stored {path} as model v2 (proposed)" in out
    assert "v2 active (was v1): 1 leads rescored" in out
    assert await _versions(dana) == ["retired", "active"]

    active = await active_model(dana)
    assert active is not None
    async with session_factory(dana)() as session:
        report = await lead_report(session, key=IDEAL["email"], model=active[1], now=T0)
        lead = await session.get(Lead, report["id"] if report else "")
    assert report is not None
    assert lead is not None
    assert {c["rule"] for c in report["contributions"]} >= {"named_contact", "leader"}
    assert lead.score == 37.0  # rescored: leader 20 + software 10 + the new rule's 7

    assert await _cli("model", "import", str(path), "--activate") == 0
    assert "holds the active model v2: nothing new was stored" in capsys.readouterr().out
    assert await _versions(dana) == ["retired", "active"]


async def test_a_bad_file_stores_nothing(
    dana: AsyncEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(WITH_RULE.replace("points: 7", "points: seven"))
    assert await _cli("model", "import", str(path), "--activate") == 1
    err = capsys.readouterr().err
    assert f"{path}:10: fit[0].points: expected a number, got 'seven'" in err  # file:line: field
    assert "nothing was stored" in err
    assert await _versions(dana) == []


async def test_a_config_file_other_than_the_active_version_is_warned_about(
    dana: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "learned.yaml"
    path.write_text(WITH_RULE)
    assert await _cli("model", "import", str(path), "--activate") == 0
    settings = load_settings()
    small = load_config(tmp_path / "small.yaml")
    with caplog.at_level(logging.INFO, logger="bot.app"):
        live = await with_active_model(dana, small)
    assert live.model.find("named_contact") is not None  # the active version is scored with
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    command = f"leadbot model import {tmp_path / 'small.yaml'} --activate"
    assert command in warning.getMessage()
    assert command in (await _model_drift(settings, small) or "")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await with_active_model(dana, load_config(path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert await _model_drift(settings, load_config(path)) is None
