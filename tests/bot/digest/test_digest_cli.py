"""``leadbot digest`` through the real CLI, on a seeded SQLite file, with no Slack."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.cli import main
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bot.conftest import SMALL_MODEL
from tests.bot.digest.test_digest_content import NOW, seed

TEAMS = """
routing:
  teams: {east: [U0EAST1, U0BOTH2], west: [U0WEST3]}
  rules:
    - {name: east, when: {region: {equals: east}}, team: east}
    - {name: west, when: {region: {equals: west}}, team: west}
"""


@pytest.fixture
async def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A seeded database (the week ends now), its URL and a config file in the environment."""
    url = f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
    engine = create_engine(url)
    await upgrade(engine)
    await seed(engine)
    await engine.dispose()
    config = tmp_path / "model.yaml"
    config.write_text(SMALL_MODEL + TEAMS)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LEADBOT_CONFIG", str(config))
    # The seed's week ends at NOW; the CLI reads the clock.
    monkeypatch.setattr(time, "time", lambda: NOW)
    return tmp_path


def _run(*argv: str) -> int:
    return main(["digest", *argv])


@pytest.mark.usefixtures("seeded")
def test_print_renders_the_digest(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--period", "week", "--print") == 0
    out = capsys.readouterr().out
    assert out.startswith("Weekly digest — all leads\n2026-03-02 09:00 → 2026-03-09 09:00 UTC\n")
    assert "⚠ hot leads converted less than warm ones (17 % vs 40 %)" in out
    assert _run("--period", "day") == 0  # printing is the default
    assert capsys.readouterr().out.startswith("Daily digest — all leads\n")


@pytest.mark.usefixtures("seeded")
def test_a_team_digest(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--team", "EAST", "--print") == 0
    out = capsys.readouterr().out
    assert out.startswith("Weekly digest — team east\n")
    assert "Wes Waiting" in out
    assert "Old Hot" not in out  # routed to west
    assert _run("--team", "north") == 2
    assert "--team: no team 'north' (teams: east, west)" in capsys.readouterr().err


def test_png_writes_the_chart_and_prints_only_when_asked(
    seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = seeded / "digest.png"
    assert _run("--png", str(png)) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote {png}" in captured.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _run("--png", str(png), "--print") == 0
    assert capsys.readouterr().out.startswith("Weekly digest")
    assert _run("--png", str(seeded / "no" / "such" / "dir.png")) == 1
    assert "cannot write it" in capsys.readouterr().err


def test_a_bad_period_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _run("--period", "month")
    assert exit_.value.code == 2
    assert "invalid choice: 'month'" in capsys.readouterr().err


@pytest.mark.usefixtures("seeded")
def test_now_takes_an_iso_time_and_refuses_anything_else(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run("--period", "week", "--now", "2026-03-10T09:00:00Z") == 0
    out = capsys.readouterr().out
    assert out.startswith("Weekly digest — all leads\n2026-03-03 09:00 → 2026-03-10 09:00 UTC\n")
    assert _run("--now", "next tuesday") == 2
    assert "--now: expected an ISO 8601 time" in capsys.readouterr().err


def test_now_latest_digests_a_demo_database_as_of_its_last_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    chart = tmp_path / "chart.png"
    assert _run("--now", "latest", "--print", "--png", str(chart)) == 0
    out = capsys.readouterr().out
    hot = int(out.split("New hot leads: ", 1)[1].split("\n", 1)[0])
    assert hot > 0  # as of the clock, the demo's March weeks would be empty
    assert chart.read_bytes().startswith(b"\x89PNG")
