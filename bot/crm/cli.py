"""``leadbot crm …``: one parser group for the CRM commands (``crm setup hubspot|salesforce``,
and more as they come: each adds its subparser in ``register``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bot.crm.base import CRMS
from config.settings import Settings, load_settings

Setup = Callable[[Settings], int]


def _setups() -> dict[str, Setup]:
    """Each CRM's setup, imported only when run (the CRM clients are slow to import).
    Salesforce's setup adds itself here: ``"salesforce": setup_salesforce.setup_salesforce``."""
    from bot.crm.setup_hubspot import setup_hubspot

    return {"hubspot": setup_hubspot}


def cmd_setup(args: argparse.Namespace) -> int:
    setup = _setups().get(args.crm)
    if setup is None:
        sys.stderr.write(f"leadbot: crm setup {args.crm} is not available yet\n")
        return 2
    return setup(load_settings())


def register(subparsers: Any) -> None:
    """``leadbot crm``."""
    crm = subparsers.add_parser("crm", help="CRM (HubSpot, Salesforce): set up, pull outcomes")
    sub = crm.add_subparsers(dest="crm_command", required=True, metavar="ACTION", help="what to do")
    setup = sub.add_parser(
        "setup",
        help="create the properties/fields leadbot writes scores to, or print what an admin "
        "must create",
    )
    setup.add_argument("crm", choices=CRMS, help="which CRM")
    setup.set_defaults(func=cmd_setup)
