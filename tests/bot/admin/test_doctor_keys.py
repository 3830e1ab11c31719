"""``leadbot doctor`` on rotation secrets and SDK write keys: counts, a malformed key as a
FAIL with the fix, and never a secret or a key in its output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.admin.doctor import doctor
from bot.cli import chat_checks
from bot.ingest.signatures import generate_secret
from storage.engine import create_engine
from storage.migrate import upgrade

OLD, NEW = generate_secret(), generate_secret()
KEYS = ("sdk-key-one-7f3a91", "sdk-key-two-c28e04")


@pytest.fixture
async def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def _doctor(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, dict[str, dict[str, str]]]:
    """Both outputs, the text and the JSON, checked by the caller; the checks by name."""
    code = await asyncio.to_thread(doctor, env, as_json=False, chat=chat_checks())
    text = capsys.readouterr().out
    assert await asyncio.to_thread(doctor, env, as_json=True, chat=chat_checks()) == code
    out = capsys.readouterr().out
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    return code, text + out, checks


def _assert_nothing_secret(out: str, *values: str) -> None:
    for value in values:
        assert value not in out
        assert value.removeprefix("whsec_")[:12] not in out


async def test_rotation_secrets_and_write_keys_are_counted_never_shown(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "DATABASE_URL": db,
        "LEADBOT_WEBHOOK_SECRET": f"{NEW} {OLD}",
        "LEADBOT_WRITE_KEYS": ", ".join(KEYS),
    }
    code, out, checks = await _doctor(env, capsys)
    assert code == 0, out
    assert checks["webhooks"]["detail"] == (
        "signed: 2 Standard Webhooks secrets (rotation) (LEADBOT_WEBHOOK_SECRET)"
    )
    assert checks["write keys"]["status"] == "OK"
    assert checks["write keys"]["detail"].startswith("2 set (rotation) (LEADBOT_WRITE_KEYS)")
    assert "LEADBOT_WRITE_KEYS set" in checks["settings"]["detail"]
    _assert_nothing_secret(out, OLD, NEW, *KEYS)


async def test_one_secret_and_no_write_keys(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, checks = await _doctor({"DATABASE_URL": db, "LEADBOT_WEBHOOK_SECRET": OLD}, capsys)
    assert code == 0, out
    assert checks["webhooks"]["detail"] == "signed: Standard Webhooks (LEADBOT_WEBHOOK_SECRET)"
    assert "LEADBOT_WRITE_KEYS not set" in checks["write keys"]["detail"]


async def test_a_malformed_write_key_fails_with_the_fix_and_is_never_shown(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    short = "k3y-x"
    env = {
        "DATABASE_URL": db,
        "LEADBOT_WEBHOOK_SECRET": OLD,
        "LEADBOT_WRITE_KEYS": f"{KEYS[0]},{short}",
    }
    code, out, checks = await _doctor(env, capsys)
    assert code == 1
    check = checks["write keys"]
    assert check["status"] == "FAIL"
    assert check["detail"].startswith("LEADBOT_WRITE_KEYS is malformed: key 2 of 2: shorter than")
    assert "`leadbot write-key`" in check["fix"]
    assert "LEADBOT_WRITE_KEYS malformed" in checks["settings"]["detail"]
    assert checks["webhooks"]["status"] == "OK"  # the rest is still checked
    failed = [name for name, c in checks.items() if c["status"] == "FAIL"]
    assert failed == ["settings", "write keys"]
    _assert_nothing_secret(out, OLD, KEYS[0], short)


async def test_write_keys_alone_start_serve_and_doctor_says_webhooks_are_refused(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, checks = await _doctor({"DATABASE_URL": db, "LEADBOT_WRITE_KEYS": KEYS[1]}, capsys)
    assert code == 0, out
    assert checks["webhooks"]["status"] == "OK"
    assert "/webhooks/events refuses every call" in checks["webhooks"]["detail"]
    assert checks["write keys"]["detail"].startswith("1 set (LEADBOT_WRITE_KEYS)")
    _assert_nothing_secret(out, KEYS[1])


async def test_nothing_set_fails_naming_the_write_keys_too(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, checks = await _doctor({"DATABASE_URL": db}, capsys)
    assert code == 1
    assert checks["webhooks"]["status"] == "FAIL"
    assert "LEADBOT_WRITE_KEYS" in checks["webhooks"]["detail"]
    assert "leadbot write-key" in checks["webhooks"]["fix"]
