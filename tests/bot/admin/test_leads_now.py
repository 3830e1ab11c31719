"""``lead``, ``top`` and ``stats`` read the same scores at the same moment: decayed to now."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.leads import NoDatabase, show_lead, show_stats, show_top, with_db
from bot.chat.commands import run_command
from bot.chat.messages import Actor
from config.loader import LeadbotConfig, load_config
from config.settings import Settings, load_settings
from scoring import LeadState, score
from storage.engine import session_factory
from storage.tables import Lead

DAY = 86400.0
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC).timestamp()
NOW = T0 + 42 * DAY  # six weeks after the events: the demo requests have decayed
SALES_VP = {"email": "fatima@tidaldesk.io", "name": "Fatima Hansen", "title": "VP Sales"}


def _state(config: LeadbotConfig, traits: dict[str, str], demos: int) -> LeadState:
    state = LeadState()
    state.identify(traits, config.model, T0)
    signals = ("Demo Requested", "Contact Sales Submitted", "Trial Started")
    for name in signals[:demos]:  # each capped at 1: 30 + 25 + 25 points, fresh
        state.event("track", name, {}, config.model, T0)
    return state


async def _seed(engine: AsyncEngine, config: LeadbotConfig) -> None:
    """Leads stored hot at T0 (the stored score), and one cold lead."""
    people = [("u-fatima", SALES_VP, 3), ("u-karin", {"email": "karin@pinnacle.io"}, 2)]
    people.append(("u-cold", {"email": "cold@example.org"}, 0))
    async with session_factory(engine)() as session:
        for lead_id, traits, demos in people:
            state = _state(config, traits, demos)
            stored = score(state, config.model, T0 + 3600)
            at = datetime.fromtimestamp(T0, UTC)
            session.add(
                Lead(
                    id=lead_id, email=traits["email"], name=traits.get("name"),
                    state=state.to_dict(), score=stored.total, band=str(stored.band),
                    grade=stored.grade, engagement=stored.engagement,
                    probability=stored.probability, first_seen_at=at, last_event_at=at,
                    scored_at=at,
                )
            )  # fmt: skip
        await session.commit()


@pytest.fixture
def config() -> LeadbotConfig:
    return load_config()


@pytest.fixture
async def settings(engine: AsyncEngine, db_url: str, config: LeadbotConfig) -> Settings:
    await _seed(engine, config)
    return load_settings().model_copy(update={"database_url": db_url})


def _out(capsys: pytest.CaptureFixture[str]) -> object:
    return orjson.loads(capsys.readouterr().out)


async def test_top_lead_and_stats_agree_on_decayed_scores(
    settings: Settings, config: LeadbotConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await show_top(settings, config, 8, band=None, as_json=True, now=NOW) == 0
    top = _out(capsys)
    assert isinstance(top, list)
    stored_hot = score(_state(config, SALES_VP, 3), config.model, T0 + 3600)
    assert str(stored_hot.band) == "hot"  # what the stored row says
    for row in top:
        assert await show_lead(settings, config, row["id"], as_json=True, now=NOW) == 0
        report = _out(capsys)
        assert isinstance(report, dict)
        assert (report["score"], report["band"]) == (row["score"], row["band"])
    fatima = next(row for row in top if row["id"] == "u-fatima")
    assert fatima["score"] < stored_hot.total
    assert fatima["band"] != "hot"
    assert await show_stats(settings, config, as_json=True, now=NOW) == 0
    counts = _out(capsys)
    assert isinstance(counts, dict)
    bands = {b: sum(row["band"] == b for row in top) for b in ("hot", "warm", "cold")}
    assert counts["bands"] == bands


async def test_top_ranks_and_filters_by_the_score_now(
    settings: Settings, config: LeadbotConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await show_top(settings, config, 8, band="hot", as_json=True, now=NOW) == 0
    assert _out(capsys) == []  # stored hot, but six weeks later nobody is
    assert await show_top(settings, config, 8, band="hot", as_json=True, now=T0 + 3600) == 0
    hot = _out(capsys)
    assert isinstance(hot, list)
    assert next(row["id"] for row in hot) == "u-fatima"


async def test_a_mistyped_email_and_a_cut_off_id_get_suggestions(
    settings: Settings, config: LeadbotConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await show_lead(settings, config, "fatma@tidaldesk.io", as_json=True, now=NOW) == 1
    assert "closest: fatima@tidaldesk.io" in capsys.readouterr().err
    assert await show_lead(settings, config, "u-kar", as_json=True, now=NOW) == 1
    assert "closest: karin@pinnacle.io" in capsys.readouterr().err


async def test_a_name_finds_its_lead(
    settings: Settings, config: LeadbotConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await show_lead(settings, config, "fatima hansen", as_json=True, now=NOW) == 0
    report = _out(capsys)
    assert isinstance(report, dict)
    assert report["id"] == "u-fatima"


def test_db_names_a_missing_file_and_never_creates_it(tmp_path: Path) -> None:
    missing = tmp_path / "leadbot.db"
    with pytest.raises(NoDatabase, match=str(missing)):
        with_db(load_settings(), str(missing))
    assert not missing.exists()
    missing.write_bytes(b"")
    assert with_db(load_settings(), str(missing)).database_url.endswith(str(missing))


async def test_chat_top_shows_the_score_a_look_up_gives(
    engine: AsyncEngine, settings: Settings, config: LeadbotConfig
) -> None:
    actor = Actor(platform="slack", user_id="U1", name="Pat")
    top = await run_command("top", engine=engine, model=config.model, now=NOW, actor=actor)
    assert top.leads
    for row in top.leads:
        look = await run_command(
            f"score {row['id']}", engine=engine, model=config.model, now=NOW, actor=actor
        )
        assert look.lead is not None
        assert (look.lead["score"], look.lead["band"]) == (row["score"], row["band"])
