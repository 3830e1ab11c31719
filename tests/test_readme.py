"""The README's shell recipes, run as they are written, against a real ``leadbot serve``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from bot.ingest.signatures import generate_secret
from tests.live_server import LiveServer

README = Path(__file__).resolve().parent.parent / "README.md"
TOOLS = ("bash", "curl", "openssl", "base64", "od")


def recipe(name: str) -> str:
    """The ```sh block after ``<!-- readme-test: name -->``."""
    found = re.search(
        rf"<!-- readme-test: {re.escape(name)} -->\n```sh\n(.*?)```", README.read_text(), re.S
    )
    assert found, f"README has no recipe marked {name!r}"
    return found.group(1)


@pytest.fixture(autouse=True)
def _tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        reason = f"the README's recipes need {', '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def run(script: str, server: LiveServer, **env: str) -> dict[str, int]:
    shell_env = {**os.environ, "LEADBOT_PORT": str(server.port), **env}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=shell_env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(orjson.loads(done.stdout))


@pytest.mark.parametrize("name", ["insecure", "signed"])
def test_each_recipe_stores_a_new_event_every_time_it_is_run(name: str, tmp_path: Path) -> None:
    secret = generate_secret()
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leadbot.db'}"}
    if name == "signed":
        env["LEADBOT_WEBHOOK_SECRET"] = secret
    server = LiveServer(tmp_path, env)
    if name == "insecure":
        server.args = ["serve", "--insecure"]
    server.start()
    try:
        script = recipe(name)
        first = run(script, server, LEADBOT_WEBHOOK_SECRET=secret)
        again = run(script, server, LEADBOT_WEBHOOK_SECRET=secret)
    finally:
        server.stop()
    assert first == {"accepted": 1, "duplicates": 0}
    assert again == {"accepted": 1, "duplicates": 0}  # a new messageId each run
