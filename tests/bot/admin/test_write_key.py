"""``leadbot write-key`` prints a key that ``LEADBOT_WRITE_KEYS`` accepts, fresh each time."""

from __future__ import annotations

import pytest

from bot.cli import main, parser
from config.settings import load_settings


def _write_key(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["write-key"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n")
    assert out.count("\n") == 1
    return out.strip()


def test_the_printed_key_is_valid_and_new_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _write_key(capsys), _write_key(capsys)
    assert first != second
    assert len(first) >= 32
    settings = load_settings({"LEADBOT_WRITE_KEYS": f"{first}, {second}"})
    assert settings.write_key_list == (first, second)


def test_write_key_is_listed_in_help() -> None:
    assert "write-key" in parser().format_help()
