"""``leadbot write-key``: a fresh write key for the SDK routes (``LEADBOT_WRITE_KEYS``)."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from bot.cli_commands import help_of

KEY_BYTES = 24  # 192 random bits: 32 URL-safe characters, nothing to escape in a header


def generate_write_key() -> str:
    """A random write key: URL-safe base64, so it needs no quoting in an environment file,
    an HTTP Basic user name or a JSON body."""
    return secrets.token_urlsafe(KEY_BYTES)


def cmd_write_key(args: argparse.Namespace) -> int:
    sys.stdout.write(generate_write_key() + "\n")
    return 0


def register(subparsers: Any) -> None:
    """``leadbot write-key``."""
    w = subparsers.add_parser("write-key", help=help_of("write-key"))
    w.set_defaults(func=cmd_write_key)
