"""The ingest writer child loads what writing needs, not the server's whole stack: it is a
second copy of the interpreter on every install, and its memory counts in ``serve``'s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.ingest.signatures import generate_secret
from config.loader import LeadbotConfig
from tests.bot.ingest.conftest import running_writer
from tests.live_server import LiveServer

# Packages the server needs and the writer must not load: learning and charts (numpy,
# matplotlib), chat SDKs and HTTP (slack_bolt, aiohttp), jobs, metrics, migrations.
HEAVY = ("numpy", "matplotlib", "slack_bolt", "aiohttp", "apscheduler", "prometheus_client",
         "alembic", "hubspot", "bot.cli")  # fmt: skip


def test_the_writer_module_imports_none_of_the_servers_heavy_packages() -> None:
    probe = f"import bot.ingest.writer, sys; print(*(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps")
async def test_a_running_writer_has_not_loaded_the_server_or_numpy(
    tmp_path: Path, config: LeadbotConfig
) -> None:
    """After a commit, the child maps none of numpy's or aiohttp's compiled modules: it did
    not import the server's command line again (as a ``multiprocessing`` spawn would)."""
    async with running_writer(tmp_path, config) as writer:
        assert writer.pid is not None
        maps = _mapped(writer.pid)
        assert "sqlite" in maps  # the probe reads the right process
        assert "numpy" not in maps
        assert "aiohttp" not in maps


SCRIPT = Path(sys.executable).parent / "leadbot"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps")
@pytest.mark.skipif(not SCRIPT.exists(), reason="the leadbot script is not installed")
def test_the_writer_of_the_installed_leadbot_script_loads_no_server_stack(tmp_path: Path) -> None:
    """Started from the console script, as a newcomer runs it: a ``multiprocessing`` child
    would run that script again, and with it the whole command line and its imports."""
    server = LiveServer(tmp_path, {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                                   "LEADBOT_WEBHOOK_SECRET": generate_secret()})  # fmt: skip
    server.program = [str(SCRIPT)]
    server.start()
    try:
        pid = server.writer_pid()
        assert pid is not None
        maps = _mapped(pid)
        assert "sqlite" in maps
        assert "aiohttp" not in maps
        assert "numpy" not in maps
    finally:
        server.stop()
