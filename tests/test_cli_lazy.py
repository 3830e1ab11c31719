"""``leadbot`` imports the module of the command it runs and no other's: ``--help`` lists
every command without importing any of them."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from bot.cli import _REGISTER_ARGS, parser
from bot.cli_commands import COMMANDS

MODULES = sorted({module for module, _ in COMMANDS.values()})


def _loaded(code: str) -> set[str]:
    """The modules of ``bot.cli_commands`` (and the config's loader) that a fresh interpreter
    has imported after running ``code``."""
    report = f"{[*MODULES, 'config.loader']!r}"
    shown = f"print(*(m for m in {report} if m in sys.modules), file=sys.stderr)"
    probe = f"{code}\nimport sys\n{shown}"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(run.stderr.split())


def _loaded_after(argv: list[str]) -> set[str]:
    """What ``leadbot argv`` imported by the time its parser exited (``-h``)."""
    run = f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    return _loaded(f"from bot.cli import main\n{run}")


def test_top_level_help_lists_every_command_and_imports_none_of_them() -> None:
    assert _loaded_after(["--help"]) == set()
    text = parser(real=()).format_help()
    for command, (_, line) in COMMANDS.items():
        assert command in text
        assert line.split()[0] in text


@pytest.mark.parametrize("argv", [["doctor", "-h"], ["forget", "-h"], ["rfm", "-h"]])
def test_a_command_imports_its_own_module_and_what_that_needs_only(argv: list[str]) -> None:
    module = COMMANDS[argv[0]][0]
    loaded = _loaded_after(argv)
    assert module in loaded
    assert loaded - {"config.loader"} == _loaded(f"import {module}") - {"config.loader"}


def test_a_built_in_command_imports_no_command_module() -> None:
    assert _loaded_after(["top", "-h"]) == set()


@pytest.mark.parametrize("module", MODULES)
def test_each_module_registers_exactly_the_commands_listed_for_it(module: str) -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(sub, *_REGISTER_ARGS.get(module, ()))
    listed = {command for command, (owner, _) in COMMANDS.items() if owner == module}
    assert set(sub.choices) == listed
    helps = {action.dest: action.help for action in sub._get_subactions()}
    assert helps == {command: COMMANDS[command][1] for command in listed}


def test_a_command_parses_the_same_with_every_module_loaded() -> None:
    argv = ["forget", "a@example.com", "--yes"]
    lazy = parser(real=("forget",)).parse_args(argv)
    full = parser().parse_args(argv)
    assert (lazy.key, lazy.yes) == (full.key, full.yes) == ("a@example.com", True)
