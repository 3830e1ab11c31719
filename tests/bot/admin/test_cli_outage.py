"""An admin's command while the database cannot be reached: one line naming the cause, exit
status 69 (sysexits' "service unavailable"), no traceback and nothing created."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bot.cli import main


@pytest.mark.parametrize("command", [["stats"], ["top"], ["lead", "dana@acmesoft.com"],
                                     ["outbox", "list"]])  # fmt: skip
def test_a_command_on_a_database_that_cannot_be_opened_says_so_in_one_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    missing = tmp_path / "gone"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{missing / 'leadbot.db'}")
    assert main(command) == 69
    err = capsys.readouterr().err
    assert err == (
        "leadbot: the database is unreachable (OperationalError: unable to open database "
        "file); nothing was changed. `leadbot doctor` checks DATABASE_URL and the "
        "connection\n"
    )
    assert not missing.exists()


def test_a_postgresql_server_that_refuses_connections_is_named_in_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://leadbot:s3cret@127.0.0.1:{port}/x")
    assert main(["stats"]) == 69
    err = capsys.readouterr().err
    assert err.startswith("leadbot: the database is unreachable (ConnectionRefusedError: ")
    assert f"127.0.0.1', {port})" in err
    assert "Traceback" not in err
    assert "s3cret" not in err
