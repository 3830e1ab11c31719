"""Every command, subcommand and argument of ``leadbot`` says what it is for in ``--help``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from bot.cli import parser


def _walk(p: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    """Each action of ``p`` and of its subparsers, named by the command line that reaches it."""
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._get_subactions()}
            for name, child in action.choices.items():
                yield f"{path} {name}", _Subcommand(name, helps.get(name))
                yield from _walk(child, f"{path} {name}")


class _Subcommand(argparse.Action):
    """A subcommand as an action, so its ``help=`` is checked like an argument's."""

    def __init__(self, name: str, help: str | None) -> None:
        super().__init__(option_strings=[], dest=name, help=help)


def _missing_help() -> list[str]:
    return [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, action in _walk(parser(), "leadbot")
        if not (action.help or "").strip()
    ]


def test_every_argument_and_subcommand_has_help() -> None:
    assert _missing_help() == []


def test_the_walk_sees_nested_subcommands_and_their_arguments() -> None:
    seen = {(path, action.dest) for path, action in _walk(parser(), "leadbot")}
    assert ("leadbot model ab start", "share") in seen
    assert ("leadbot demo", "force") in seen
    assert ("leadbot top", "n") in seen


def test_top_level_help_is_plain_text() -> None:
    text = parser().format_help()
    assert "``" not in text
    assert text.startswith("usage: leadbot")
    assert "demo" in text
    assert "serve" in text
