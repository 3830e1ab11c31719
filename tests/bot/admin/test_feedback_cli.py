"""``leadbot feedback`` end to end on real databases: the rows are the chat path's rows
(same feature snapshot), unknown leads and bad outcomes store nothing, a labels CSV stores
what matches, reports the rest by line, and a second run adds nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.chat.commands import run_command
from bot.chat.messages import Actor
from bot.cli import main
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig
from storage.engine import session_factory
from storage.tables import Feedback
from tests.bot.conftest import IDEAL, SMALL_MODEL, T0, events, identify, track

DANA, SAM = IDEAL["email"], "sam@gmail.com"


@pytest.fixture
async def leads(
    engine: AsyncEngine, db_url: str, config: LeadbotConfig, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncEngine:  # fmt: skip
    """Dana (an ideal lead who asked for a demo) and Sam (free mail), and the CLI's
    environment pointing at the same database and model."""
    async with Pipeline(engine, config) as pipeline:
        calls = [
            identify("u-dana", T0, **IDEAL),
            track("u-dana", "Demo Requested", T0),
            identify("u-sam", T0, email=SAM, name="Sam Ortiz"),
        ]
        await pipeline.ingest(events(*calls), now=T0)
    model = tmp_path / "small.yaml"
    model.write_text(SMALL_MODEL)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("LEADBOT_CONFIG", str(model))
    monkeypatch.setenv("USER", "ana")
    return engine


async def _rows(engine: AsyncEngine) -> list[Feedback]:
    async with session_factory(engine)() as session:
        return list(await session.exec(select(Feedback).order_by(col(Feedback.id))))


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_one_label_is_the_chat_buttons_row(
    leads: AsyncEngine, config: LeadbotConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("feedback", DANA, "won", "--note", "signed in March") == 0
    assert "recorded won (signed in March) for Dana Reyes (AcmeSoft) by cli:ana" in (
        capsys.readouterr().out
    )
    reply = await run_command(
        f"feedback {SAM} lost", actor=Actor("slack", "U1"), engine=leads, model=config.model,
        now=T0 + 60,
    )  # fmt: skip
    assert not reply.error
    cli, chat = await _rows(leads)
    assert (cli.outcome, cli.reason, cli.by) == ("won", "signed in March", "cli:ana")
    assert cli.features.keys() == chat.features.keys()
    assert cli.features["rules"].keys() == chat.features["rules"].keys()
    assert cli.features["rules"]["leader"] == 1.0
    assert abs(cli.features["at"] - time.time()) < 60  # read now: March's demo has decayed
    assert 0 < cli.features["rules"]["demo"] < 0.01
    assert cli.features["model"] == "test-model"

    assert await _cli("feedback", SAM, "disqualified", "--reason", "No-Budget", "--by", "bo") == 0
    assert (await _rows(leads))[-1].reason == "no budget"
    assert (await _rows(leads))[-1].by == "cli:bo"


async def test_unknown_lead_stores_nothing_and_names_the_closest(
    leads: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("feedback", "dana@acmesfot.com", "won") == 1  # mistyped
    err = capsys.readouterr().err
    assert "no lead 'dana@acmesfot.com' (closest: dana@acmesoft.com" in err
    assert DANA in err
    assert await _rows(leads) == []


@pytest.mark.parametrize(
    "argv",
    [("maybe",), ("disqualified",), ("disqualified", "--reason", "too pricey")],
    ids=["bad-outcome", "no-reason", "unknown-reason"],
)
async def test_bad_outcome_or_reason_is_a_usage_error(
    leads: AsyncEngine, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        await _cli("feedback", DANA, *argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: leadbot feedback")
    assert ("qualified, disqualified, won, lost" if argv == ("maybe",) else "no budget") in err
    assert await _rows(leads) == []


LABELS = f"""email,outcome,reason,note,at
{DANA},won,,signed,2026-03-03T10:00:00Z
{SAM},disqualified,no budget,,
{SAM},disqualified,,,
nobody@example.com,won,,,
{DANA},maybe,,,
"""


async def test_a_labels_file_stores_what_matches_and_a_rerun_adds_nothing(
    leads: AsyncEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)
    assert await _cli("feedback", "--file", str(labels)) == 1
    out, err = capsys.readouterr()
    assert "5 rows — 2 labels stored, 0 already there, 3 not matched" in out
    assert "5/5 rows" in err
    assert f"{labels}:4: a disqualification needs --reason" in err
    assert f"{labels}:5: no lead 'nobody@example.com'" in err
    assert f"{labels}:6: outcome 'maybe'" in err
    won, lost = await _rows(leads)
    assert (won.outcome, won.reason, won.by) == ("won", "signed", "cli:ana")
    assert won.at == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert won.features["at"] == won.at.timestamp()  # the snapshot is read at the label's time
    assert (lost.outcome, lost.reason) == ("disqualified", "no budget")

    assert await _cli("feedback", "--file", str(labels)) == 1
    assert "0 labels stored, 2 already there, 3 not matched" in capsys.readouterr().out
    assert len(await _rows(leads)) == 2

    labels.write_text(LABELS.splitlines()[0] + "\n" + "\n".join(LABELS.splitlines()[1:3]) + "\n")
    assert await _cli("feedback", "--file", str(labels)) == 0


@pytest.mark.parametrize(("won", "lost"), [("1", "0"), ("Yes", "no"), ("TRUE", "false")])
async def test_a_labels_file_reads_an_exports_converted_column(
    leads: AsyncEngine, tmp_path: Path, won: str, lost: str
) -> None:
    # A CRM or spreadsheet export says "converted" as 1/0, yes/no or true/false.
    labels = tmp_path / "labels.csv"
    labels.write_text(f"id,outcome\nu-dana,{won}\nu-sam,{lost}\n")
    assert await _cli("feedback", "--file", str(labels)) == 0
    assert [(r.lead_id, r.outcome) for r in await _rows(leads)] == [
        ("u-dana", "won"),
        ("u-sam", "lost"),
    ]
