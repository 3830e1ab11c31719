"""``leadbot import hubspot|salesforce FILE``: a CRM export's contacts or leads, scored, their
won and lost records as labels (see :mod:`bot.crm.csvimport.importer`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from bot.cli_commands import help_of

SKIPPED = 1  # exit status when some rows were skipped
USAGE_ERROR = 2

EPILOG = """\
HubSpot: a contacts export (Record ID, First Name, Last Name, Email, Job Title, Company Name,
Number of Employees, Industry, Country/Region, Lifecycle Stage, Lead Status, Create Date;
any other column becomes a custom trait). Salesforce: a Leads report (Lead ID, First Name,
Last Name, Email, Title, Company, No. of Employees, Industry, Country, Lead Source, Lead
Status, Converted, Created Date). crm.hubspot.columns / crm.salesforce.columns in the config
add or override columns. Importing the same file again changes nothing, and an import never
sends alerts.

exit status: 0 when every row was imported, 1 when some rows were skipped (each reported on
stderr as FILE:LINE: COLUMN: what is wrong; the others are imported), 2 when the file cannot
be read as that CRM's export."""


def cmd_import(args: argparse.Namespace) -> int:
    if args.crm == "events":  # a backfill of past calls (JSON lines): bot/admin/event_import.py
        from bot.admin.event_import import cmd_import_events

        return cmd_import_events(args)
    if args.crm == "orders":  # order history for RFM: bot/admin/order_import.py
        from bot.admin.customers import cmd_import_orders

        return cmd_import_orders(args)
    from bot.crm.csvimport.importer import Options, import_file
    from bot.crm.csvimport.layouts import LAYOUTS
    from bot.crm.csvimport.reader import FileProblem
    from config.loader import load_config
    from config.settings import load_settings
    from storage.engine import create_engine
    from storage.migrate import upgrade

    settings = load_settings()
    config = load_config(args.config or settings.config_path)
    url = f"sqlite+aiosqlite:///{Path(args.db).resolve()}" if args.db else settings.database_url
    options = Options(order=args.date_order, record_url=_record_url(args.crm, settings))
    path = Path(args.file)

    async def run() -> int:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            tally = await import_file(engine, config, LAYOUTS[args.crm], path, now=time.time(),
                                      err=sys.stderr, options=options)  # fmt: skip
        finally:
            await engine.dispose()
        sys.stdout.write(
            f"{path}: {tally.rows} rows — {tally.created} leads created, {tally.updated} "
            f"updated, {tally.unchanged} unchanged; {tally.won} won and {tally.lost} lost "
            f"labels stored; {tally.skipped} rows skipped\n"
        )
        return SKIPPED if tally.skipped else 0

    try:
        return asyncio.run(run())
    except FileProblem as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return USAGE_ERROR


def _record_url(crm: str, settings: Any) -> str | None:
    """A Lead's page in Salesforce, when its instance is configured; a HubSpot contact's
    needs the portal id, which an export does not carry (the score syncer fills it)."""
    instance = settings.salesforce_instance_url if crm == "salesforce" else None
    return f"{instance.rstrip('/')}/lightning/r/Lead/{{id}}/view" if instance else None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help=help_of("import"),
        description="Import a CRM export: each row a lead (keyed by e-mail) scored by the\n"
        "model, linked to its CRM record; won and lost records become labels.\n"
        "`import orders FILE.csv`: order history (RFM). `import events FILE.jsonl`: past\n"
        "calls, one Segment call or batch a line (- reads standard input).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "crm", choices=("hubspot", "salesforce", "orders", "events"),
        help="what FILE holds (orders: order history, see leadbot customer; events: "
        "Segment calls as JSON lines)",
    )  # fmt: skip
    p.add_argument(
        "file",
        metavar="FILE",
        help="the CSV export (UTF-8 or Windows-1252; comma, semicolon or tab)",
    )
    p.add_argument(
        "--date-order", choices=("mdy", "dmy"),
        help="read 3/5/2024 as March 5 (mdy) or 3 May (dmy); default: as the file's other "
        "dates show, else such a date is a row error",
    )  # fmt: skip
    p.add_argument(
        "--strict", action="store_true",
        help="events: import nothing unless every call in FILE passes (read twice)",
    )  # fmt: skip
    p.add_argument(
        "--group", type=_positive, default=5_000, metavar="N",
        help="events: calls per transaction (default 5,000; larger is faster, but holds "
        "SQLite's write lock longer while a server ingests beside it)",
    )  # fmt: skip
    p.add_argument("--config", help="scoring model YAML (LEADBOT_CONFIG, default: bundled)")
    p.add_argument(
        "--db", metavar="FILE", help="SQLite file to import into, not DATABASE_URL (created)"
    )
    p.set_defaults(func=cmd_import)
