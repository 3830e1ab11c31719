"""``leadbot crm …``: one parser group for the CRM commands (``crm setup hubspot|salesforce``,
and more as they come: each adds its subparser in ``register``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from bot.cli_commands import help_of
from bot.crm.base import CRMS
from config.settings import Settings, load_settings

Setup = Callable[[Settings], int]


def _setups() -> dict[str, Setup]:
    """Each CRM's setup, imported only when run (the CRM clients are slow to import)."""
    from bot.crm.setup_hubspot import setup_hubspot
    from bot.crm.setup_salesforce import setup_salesforce

    return {"hubspot": setup_hubspot, "salesforce": setup_salesforce}


def cmd_setup(args: argparse.Namespace) -> int:
    setup = _setups().get(args.crm)
    if setup is None:
        sys.stderr.write(f"leadbot: crm setup {args.crm} is not available yet\n")
        return 2
    return setup(load_settings())


def cmd_pull(args: argparse.Namespace) -> int:
    from bot.crm.pull import pull_command
    from config.loader import load_config

    settings = load_settings()
    config = load_config(getattr(args, "config", None) or settings.config_path)
    return asyncio.run(
        pull_command(settings, config, crm=args.crm, since=args.since, now=time.time())
    )


def register(subparsers: Any) -> None:
    """``leadbot crm``."""
    crm = subparsers.add_parser("crm", help=help_of("crm"))
    sub = crm.add_subparsers(dest="crm_command", required=True, metavar="ACTION", help="what to do")
    setup = sub.add_parser(
        "setup",
        help="create the properties/fields leadbot writes scores to, or print what an admin "
        "must create",
    )
    setup.add_argument("crm", choices=CRMS, help="which CRM")
    setup.set_defaults(func=cmd_setup)
    pull = sub.add_parser("pull", help="store the won and lost records changed since the last pull")
    pull.add_argument("--crm", choices=CRMS, help="only this CRM (default: each one configured)")
    pull.add_argument("--since", metavar="ISO", help="from this time (default: the last pull, "
                      "else 30 days back)")  # fmt: skip
    pull.set_defaults(func=cmd_pull)
