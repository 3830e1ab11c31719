"""``leadbot doctor`` against real databases (SQLite and PostgreSQL), the fake Slack Web API,
closed and silent ports: each problem is one FAIL or WARN line naming the fix, one failing
check never stops the others, and no check outlives its timeout."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.doctor import doctor
from bot.cli import chat_checks, main
from bot.ingest.signatures import generate_secret
from config.loader import DEFAULT_PATH
from config.settings import AGENTS_SDK_PREFIXES
from storage.engine import create_engine
from storage.ingest import enqueue
from storage.migrate import current_revision, upgrade
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlack

SECRET = generate_secret()
TEAMS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


@dataclass
class Report:
    code: int
    out: str
    checks: list[dict[str, str]]

    def status(self, name: str) -> str:
        return " ".join(c["status"] for c in self.checks if c["name"] == name)

    def check(self, name: str) -> dict[str, str]:
        [found] = [c for c in self.checks if c["name"] == name]
        return found


async def run(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], per_check: float = 5.0
) -> Report:
    """``leadbot doctor --json`` with the settings read from ``env``; in a thread, so that
    a fake server on this test's loop can answer it."""
    code = await asyncio.to_thread(doctor, env, as_json=True, timeout=per_check, chat=chat_checks())
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["ok"] is (code == 0)
    return Report(code, out, report["checks"])


async def migrated(url: str, revision: str = "head") -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"


async def test_a_healthy_install_passes_every_check(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(db_url)
    report = await run({"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys)
    assert report.code == 0, report.out
    names = [c["name"] for c in report.checks]
    expected = ["settings", "config", "database", "migrations", "webhooks", "slack", "teams"]
    expected.append("outbox")
    assert [n for n in names if n in expected] == expected
    assert all(c["status"] == "OK" for c in report.checks), report.out
    assert "LEADBOT_WEBHOOK_SECRET set" in report.check("settings")["detail"]
    assert "the latest" in report.check("migrations")["detail"]
    assert report.check("outbox")["detail"] == "0 pending, 0 sending, 0 dead"
    if db_url.startswith("sqlite"):
        assert "journal mode wal" in report.check("sqlite")["detail"]
    else:
        assert "sqlite" not in names
        assert report.check("postgresql")["detail"].startswith("autovacuum on; statistics")
        shown = make_url(db_url).render_as_string(hide_password=True)
        assert report.check("database")["detail"].startswith(f"{shown} reachable (PostgreSQL ")
        assert f":{make_url(db_url).password}@" not in report.out
    assert SECRET not in report.out


async def test_the_cli_prints_one_line_per_check_and_exits_0(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    for name in os.environ:
        if name.startswith(("LEADBOT_", "SLACK_", "DATABASE_URL", *AGENTS_SDK_PREFIXES)):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEADBOT_WEBHOOK_SECRET", SECRET)
    code = await asyncio.to_thread(main, ["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    checks = [line for line in lines if not line.startswith(" ")][:-1]
    assert checks[0].split() == ["OK", "settings", "read", "from", "the", "environment"]
    assert any(line.split()[:4] == ["OK", "migrations", "at", "revision"] for line in checks)
    assert all(line.startswith("OK ") for line in checks)
    assert lines[-1] == f"0 FAIL, 0 WARN, {len(checks)} OK"


async def test_migrations_behind_fail_naming_the_upgrade_command(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(db_url, "0003")
    report = await run({"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys)
    assert report.code == 1
    check = report.check("migrations")
    assert check["status"] == "FAIL"
    assert check["detail"].startswith("at revision 0003, ")
    assert "behind: 0004, 0005" in check["detail"]
    assert "`leadbot db upgrade`" in check["fix"]
    assert report.status("database") == report.status("webhooks") == "OK"
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == "0003"  # doctor only looks
    finally:
        await engine.dispose()


async def test_a_database_never_migrated_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()
    url = f"sqlite:///{tmp_path}/empty.db"
    report = await run({"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys)
    assert report.check("migrations")["status"] == "FAIL"
    assert "never migrated" in report.check("migrations")["detail"]
    assert report.check("migrations")["fix"] == "run `leadbot db upgrade`"


async def test_a_missing_sqlite_file_fails_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/nowhere.db"
    report = await run({"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys)
    assert report.code == 1
    assert report.check("database")["status"] == "FAIL"
    assert f"no database file at {tmp_path}/nowhere.db" in report.check("database")["detail"]
    assert "leadbot db upgrade" in report.check("database")["fix"]
    assert not (tmp_path / "nowhere.db").exists()
    assert report.status("webhooks") == "OK"  # the other checks still ran


async def test_no_webhook_secret_fails_as_serve_would(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    report = await run({"DATABASE_URL": sqlite_url}, capsys)
    assert report.code == 1
    check = report.check("webhooks")
    assert check["status"] == "FAIL"
    assert "serve refuses to start without --insecure" in check["detail"]
    assert "leadbot webhook-secret" in check["fix"]
    assert [c["name"] for c in report.checks if c["status"] == "FAIL"] == ["webhooks"]


async def test_a_malformed_secret_is_named_never_shown(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    bad = "not-a-standard-webhooks-secret-9f3a"
    env = {"DATABASE_URL": sqlite_url, "LEADBOT_WEBHOOK_SECRET": bad, "LEADBOT_PORT": "eighty"}
    report = await run(env, capsys)
    assert report.code == 1
    settings = report.check("settings")
    assert settings["status"] == "FAIL"
    assert (
        "LEADBOT_WEBHOOK_SECRET: expected a signing secret starting with whsec_"
        in (settings["detail"])
    )
    assert "LEADBOT_PORT: " in settings["detail"]
    assert "LEADBOT_WEBHOOK_SECRET malformed" in settings["detail"]
    assert report.check("webhooks")["detail"].startswith("LEADBOT_WEBHOOK_SECRET is malformed")
    assert report.status("database") == report.status("migrations") == "OK"
    assert bad not in report.out


async def test_a_config_problem_is_named_by_file_line_and_field(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    config = tmp_path / "model.yaml"
    config.write_text(
        "model: {name: t, points_per_logodds: 20, intercept: -3, bands: {warm: 20, hot: 50}}\n"
        "fit:\n  - id: a\n    label: A\n    points: lots\n    when: {title: {pattern: x}}\n"
    )
    env = {
        "DATABASE_URL": sqlite_url,
        "LEADBOT_WEBHOOK_SECRET": SECRET,
        "LEADBOT_CONFIG": str(config),
    }
    report = await run(env, capsys)
    assert report.code == 1
    check = report.check("config")
    assert check["status"] == "FAIL"
    assert check["detail"] == f"{config}:5: fit[0].points: expected a number, got 'lots'"
    assert f"leadbot check-config {config}" in check["fix"]
    assert report.status("database") == report.status("outbox") == "OK"


def slack_env(url: str, fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
        "SLACK_API_URL": fake.url, "SLACK_SIGNING_SECRET": "signing-secret-for-tests",
        "LEADBOT_SLACK_CHANNEL": "#alerts", **extra,
    }  # fmt: skip


async def test_slack_auth_test_names_the_bot_and_team(
    sqlite_url: str, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    report = await run(slack_env(sqlite_url, slack), capsys)
    assert report.code == 0, report.out
    assert report.check("slack") == {
        "name": "slack", "status": "OK", "fix": "",
        "detail": f"auth.test: bot leadbot ({BOT_USER_ID}) in Leadbot Test ({TEAM_ID})",
    }  # fmt: skip
    assert report.check("slack mode")["detail"].startswith("HTTP at /slack/events")
    assert report.check("slack channel")["detail"] == "#alerts (LEADBOT_SLACK_CHANNEL)"
    [call] = slack.calls_to("auth.test")
    assert call.headers["Authorization"] == f"Bearer {slack.token}"
    assert slack.token not in report.out
    assert "signing-secret-for-tests" not in report.out


async def test_slack_invalid_auth_fails_with_slacks_error(
    sqlite_url: str, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    slack.error_next("auth.test", "invalid_auth")
    report = await run(slack_env(sqlite_url, slack), capsys)
    assert report.code == 1
    check = report.check("slack")
    assert check["status"] == "FAIL"
    assert check["detail"] == f"auth.test at {slack.url} answered invalid_auth"
    assert "SLACK_BOT_TOKEN is wrong or revoked" in check["fix"]
    assert report.status("slack mode") == report.status("outbox") == "OK"


async def test_slack_half_configured_fails_and_no_channel_warns(
    sqlite_url: str, slack: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    config = tmp_path / "model.yaml"
    config.write_text("\n".join(
        line for line in DEFAULT_PATH.read_text().splitlines()
        if "default_channel" not in line
    ))  # fmt: skip
    env = slack_env(sqlite_url, slack, SLACK_SIGNING_SECRET="", LEADBOT_SLACK_CHANNEL="")
    report = await run({**env, "LEADBOT_CONFIG": str(config)}, capsys)
    assert report.status("slack") == "OK"
    assert report.status("slack mode") == "FAIL"
    assert "neither SLACK_SIGNING_SECRET" in report.check("slack mode")["detail"]
    channel = report.check("slack channel")
    assert channel["status"] == "WARN"
    assert channel["detail"].endswith("go to #sales-alerts, leadbot's built-in default")
    assert "LEADBOT_SLACK_CHANNEL" in channel["fix"]


async def test_an_unreachable_postgresql_fails_and_the_rest_still_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql+asyncpg://leadbot:pg-password-77@127.0.0.1:{closed_port()}/leadbot"
    started = time.monotonic()
    report = await run({"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys, 2.0)
    assert time.monotonic() - started < 2.0
    check = report.check("database")
    assert check["status"] == "FAIL"
    assert check["detail"].startswith("postgresql+asyncpg://leadbot:***@127.0.0.1:")
    assert "unreachable" in check["detail"]
    assert "DATABASE_URL" in check["fix"]
    assert "pg-password-77" not in report.out
    assert report.status("webhooks") == "OK"
    assert report.check("outbox")["detail"].startswith("not checked")


async def test_a_silent_database_server_fails_within_the_timeout(
    silent_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql+asyncpg://leadbot:pw@127.0.0.1:{silent_port}/leadbot"
    started = time.monotonic()
    report = await run({"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys, 0.5)
    assert time.monotonic() - started < 3.0
    assert report.check("database")["status"] == "FAIL"
    assert "no answer within 0.5 s" in report.check("database")["detail"]
    assert report.status("config") == report.status("webhooks") == "OK"


def outbox_row(key: str, status: str, created: float) -> dict[str, Any]:
    return {
        "kind": "alert", "lead_id": "u1", "destination": "console", "dedupe_key": key,
        "payload": {}, "status": status, "attempts": 0, "available_at": created,
        "created_at": created,
    }  # fmt: skip


async def add_outbox(url: str, *rows: dict[str, Any]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: enqueue(c, rows=list(rows)))
    finally:
        await engine.dispose()


async def test_a_dead_outbox_message_warns_with_the_command_to_see_it(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(db_url)
    now = time.time()
    await add_outbox(db_url, outbox_row("a", "dead", now - 60), outbox_row("b", "pending", now))
    report = await run({"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys)
    assert report.code == 0  # a warning, not a failure
    check = report.check("outbox")
    assert check["status"] == "WARN"
    assert check["detail"].startswith("1 pending, 0 sending, 1 dead")
    assert "given up on" in check["detail"]
    assert "`leadbot outbox list`" in check["fix"]


async def test_an_old_pending_message_warns(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    await add_outbox(sqlite_url, outbox_row("old", "pending", time.time() - 3600))
    report = await run({"DATABASE_URL": sqlite_url, "LEADBOT_WEBHOOK_SECRET": SECRET}, capsys)
    check = report.check("outbox")
    assert check["status"] == "WARN"
    assert "the oldest pending was queued 60 min ago" in check["detail"]
    assert "waited over 15 min" in check["detail"]


async def test_teams_credentials_without_a_reachable_identity_service_fail_clearly(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No network here (and a made-up tenant anywhere): the token request fails, and the
    line says why, with no traceback and no secret."""
    await migrated(sqlite_url)
    env = {
        "DATABASE_URL": sqlite_url, "LEADBOT_WEBHOOK_SECRET": SECRET,
        f"{TEAMS}CLIENTID": "11111111-2222-3333-4444-555555555555",
        f"{TEAMS}CLIENTSECRET": "teams-client-secret-value",
        f"{TEAMS}TENANTID": "66666666-7777-8888-9999-000000000000",
    }  # fmt: skip
    report = await run(env, capsys, 2.0)
    assert report.status("teams") == "OK"
    token = report.check("teams token")
    assert token["status"] == "FAIL"
    assert token["detail"].startswith(
        "no token from Entra ID for app 11111111-2222-3333-4444-555555555555: "
    )
    assert "CLIENTSECRET" in token["fix"]
    assert "Traceback" not in report.out
    assert "teams-client-secret-value" not in report.out
    reach = report.check("teams reach")
    assert reach["status"] == "WARN"
    assert "teams:default: no default Teams channel is known yet" in reach["detail"]


async def test_teams_anonymous_mode_warns_and_half_configured_fails(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(sqlite_url)
    base = {"DATABASE_URL": sqlite_url, "LEADBOT_WEBHOOK_SECRET": SECRET}
    anonymous = await run({**base, f"{TEAMS}ANONYMOUS_ALLOWED": "true"}, capsys)
    assert anonymous.code == 0
    assert anonymous.status("teams") == "WARN"
    assert "anonymous mode" in anonymous.check("teams")["detail"]
    assert anonymous.status("teams token") == ""  # no credentials, no token to try
    half = await run({**base, f"{TEAMS}CLIENTID": "app-1"}, capsys)
    assert half.code == 1
    assert half.status("teams") == "FAIL"
    assert f"{TEAMS}TENANTID" in half.check("teams")["detail"]


async def _sql(engine: AsyncEngine, *statements: str) -> None:
    """Run ``statements`` in one transaction, then publish this session's table counts
    (PostgreSQL reports them to the statistics views within a second otherwise)."""
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))


async def _postgresql_after(
    engine: AsyncEngine, env: dict[str, str], capsys: pytest.CaptureFixture[str], *sql: str
) -> tuple[Report, dict[str, str]]:
    """Doctor's report, and its ``postgresql`` check, once ``sql`` has run."""
    await _sql(engine, *sql)
    report = await run(env, capsys)
    return report, report.check("postgresql")


@pytest.mark.postgres
async def test_postgresql_statistics_far_behind_the_data_warn_with_analyze(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table loaded without an ANALYZE (a restore, autovacuum off) is named, with the fix,
    and again once it grew past twice what its planner counts; after ANALYZE, autovacuum
    off for the table still warns; on again, OK. Rows rewritten in place never warn."""
    await migrated(postgres_url)
    env = {"DATABASE_URL": postgres_url, "LEADBOT_WEBHOOK_SECRET": SECRET}
    engine = create_engine(postgres_url)
    try:
        report, check = await _postgresql_after(
            engine, env, capsys,
            "ALTER TABLE identities SET (autovacuum_enabled = false)",
            "INSERT INTO identities (key, lead_id) "
            "SELECT 'user:u' || g, 'u' || g FROM generate_series(1, 12000) g",
        )  # fmt: skip
        assert check["status"] == "WARN", report.out
        assert "identities (12,000 rows, never analyzed)" in check["detail"]
        assert "leads" not in check["detail"]  # empty: nothing to plan wrong
        assert "run `ANALYZE` in psql" in check["fix"]
        assert "autovacuum is off for identities" in check["fix"]
        report, check = await _postgresql_after(
            engine, env, capsys,
            "ANALYZE identities",
            "INSERT INTO identities (key, lead_id) "
            "SELECT 'user:v' || g, 'v' || g FROM generate_series(1, 12001) g",
        )  # fmt: skip
        assert "identities (24,001 rows; its planner counts 12,000)" in check["detail"]
        report, check = await _postgresql_after(
            engine, env, capsys,
            "ANALYZE identities", "UPDATE identities SET lead_id = lead_id || 'x'",
        )  # fmt: skip
        assert check["status"] == "WARN", report.out
        assert check["detail"].startswith("autovacuum is off for identities:")
        report, check = await _postgresql_after(
            engine, env, capsys, "ALTER TABLE identities RESET (autovacuum_enabled)"
        )
        assert check["status"] == "OK", report.out
    finally:
        await engine.dispose()
