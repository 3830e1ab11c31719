"""``leadbot doctor`` on a CRM: it answers (and how much API allowance is used), it refuses
the token, or scores have waited too long; the token never shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert

from bot.admin.doctor import run_checks
from bot.ingest.signatures import generate_secret
from storage.crm import LINKS
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.fakes.hubspot_api import FakeHubSpot

TOKEN = "pat-na1-doctor-secret"
NOW = 1_790_000_000.0


@pytest.fixture
def hubspot_token() -> str:
    return TOKEN  # the fake HubSpot (tests/bot/crm/conftest.py) takes this one


def environ(tmp: Path, hub: FakeHubSpot, token: str = TOKEN) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'doc.db'}",
            "LEADBOT_WEBHOOK_SECRET": generate_secret(),
            "HUBSPOT_ACCESS_TOKEN": token, "HUBSPOT_API_URL": hub.url}  # fmt: skip


async def crm_lines(env: dict[str, str]) -> list[tuple[str, str, str]]:
    checks = await run_checks(env, now=NOW)
    lines: list[tuple[str, str, str]] = [
        (c.name, c.status, c.detail) for c in checks if c.name.startswith("crm")
    ]
    assert all(TOKEN not in c.detail + c.fix for c in checks)
    return lines


async def migrated(env: dict[str, str]) -> None:
    engine = create_engine(env["DATABASE_URL"])
    await upgrade(engine)
    await engine.dispose()


async def test_a_crm_that_answers_says_its_usage_and_backlog(
    tmp_path: Path, hub: FakeHubSpot
) -> None:
    env = environ(tmp_path, hub)
    await migrated(env)
    [(name, status, detail)] = await crm_lines(env)
    assert (name, status) == ("crm hubspot", "OK")
    assert "API calls today" in detail
    assert "0 score(s) waiting" in detail


async def test_a_refused_token_fails_with_the_reason(tmp_path: Path, hub: FakeHubSpot) -> None:
    [(name, status, detail)] = await crm_lines(environ(tmp_path, hub, token="pat-wrong"))
    assert (name, status) == ("crm hubspot", "FAIL")
    assert "token" in detail.lower()


async def test_scores_waiting_too_long_warn(tmp_path: Path, hub: FakeHubSpot) -> None:
    env = environ(tmp_path, hub)
    engine = create_engine(env["DATABASE_URL"])
    await upgrade(engine)
    from datetime import UTC, datetime

    async with engine.begin() as conn:
        await conn.execute(insert(LINKS).values(
            lead_id="u1", crm="hubspot", dirty_at=datetime.fromtimestamp(NOW - 3600, UTC),
            attempts=4, last_error="HubSpot answered 500",
        ))  # fmt: skip
    await engine.dispose()
    [(_, status, detail)] = await crm_lines(env)
    assert status == "WARN"
    assert "1 score(s) waiting" in detail
    assert "the oldest for 60 min (last error: HubSpot answered 500)" in detail


async def test_no_crm_configured_adds_no_line(tmp_path: Path, hub: FakeHubSpot) -> None:
    env = environ(tmp_path, hub)
    del env["HUBSPOT_ACCESS_TOKEN"]
    assert await crm_lines(env) == []
