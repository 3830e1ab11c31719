"""``leadbot outbox list|retry``: see what waits or gave up, and send a dead message again.

``list [--status dead|pending|sending] [--json]`` shows messages oldest first (all three
statuses by default) with their destination, attempts, next try and last error; ``retry
ID…|--all-dead`` puts dead messages back to pending with a fresh give-up budget. A message
already sent is never re-sent: retry touches dead rows only and says what it skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from bot.chat.plain import clean
from bot.cli_commands import help_of
from config.settings import Settings, load_settings
from storage import outbox as repo
from storage.engine import create_engine
from storage.migrate import upgrade

WAITING = ("dead", "pending", "sending")
USAGE = 2
ERROR_MAX = 160  # characters of the last error in the table (--json has all of it)


def register(subparsers: Any) -> None:
    """Add ``outbox list`` and ``outbox retry`` to the ``leadbot`` parser."""
    o = subparsers.add_parser("outbox", help=help_of("outbox"))
    osub = o.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    ls = osub.add_parser("list", help="messages not sent yet (dead, pending, sending)")
    ls.add_argument("--status", choices=WAITING, help="only this status (default: all three)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of text")
    rt = osub.add_parser("retry", help="put dead messages back to pending (never a sent one)")
    rt.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox message ids")
    rt.add_argument("--all-dead", action="store_true", help="every dead message")
    o.set_defaults(func=outbox_command)


def outbox_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "list":
        statuses = (args.status,) if args.status else WAITING
        return asyncio.run(list_command(settings, statuses, as_json=args.json))
    if bool(args.ids) == bool(args.all_dead):
        sys.stderr.write("leadbot: usage: leadbot outbox retry ID [ID …] | --all-dead\n")
        return USAGE
    return asyncio.run(retry_command(settings, None if args.all_dead else args.ids))


async def list_command(
    settings: Settings, statuses: Sequence[str], *, as_json: bool, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = await repo.listing(conn, statuses=statuses)
    finally:
        await engine.dispose()
    if as_json:
        out.write(orjson.dumps([_as_dict(r) for r in rows], option=orjson.OPT_INDENT_2).decode())
        out.write("\n")
        return 0
    if not rows:
        out.write(f"no {'/'.join(statuses)} messages in the outbox\n")
        return 0
    for row in rows:
        out.write(_line(row) + "\n")
    return 0


async def retry_command(
    settings: Settings, ids: Sequence[int] | None, *, out: TextIO | None = None
) -> int:
    """Dead messages back to pending; ids that are not dead are named and left alone."""
    out = out or sys.stdout
    engine = create_engine(settings.database_url)
    now = datetime.fromtimestamp(time.time(), UTC)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            retried = await repo.retry(conn, ids=ids, now=now)
            others = await repo.statuses_of(conn, [i for i in ids or () if i not in retried])
    finally:
        await engine.dispose()
    out.write(f"{len(retried)} message(s) back to pending: {_ids(retried)}\n")
    for i in sorted(set(ids or ()) - set(retried)):
        status = others.get(i)
        why = "no such message" if status is None else f"it is {status}, not dead"
        out.write(f"  {i} left alone: {why}\n")
    return 0 if retried or ids is None else 1


def dead_line(count: int, oldest: datetime | None) -> str:
    """What ``leadbot stats`` and the digest's health section say when messages gave up."""
    since = f" (oldest queued {oldest:%Y-%m-%d %H:%M} UTC)" if oldest else ""
    return f"Outbox: {count} dead{since} — run leadbot outbox list"


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(map(str, ids)) if ids else "none"


def _line(row: repo.Listed) -> str:
    when = f"next try {row.available_at:%Y-%m-%d %H:%M} UTC" if row.status != "dead" else "dead"
    unsure = ", may have been posted" if row.unsure else ""
    error = clean(row.last_error or "")[:ERROR_MAX]
    return (
        f"{row.id:>6}  {row.status:<7} {row.kind:<10} {clean(row.destination)}  "
        f"queued {row.created_at:%Y-%m-%d %H:%M} UTC, {row.attempts} attempt(s), {when}"
        f"{unsure}" + (f"\n        last error: {error}" if error else "")
    )


def _as_dict(row: repo.Listed) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "lead_id": row.lead_id, "destination": row.destination,
        "status": row.status, "attempts": row.attempts, "created_at": row.created_at.isoformat(),
        "available_at": row.available_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "last_error": row.last_error, "may_have_been_posted": row.unsure,
    }  # fmt: skip
