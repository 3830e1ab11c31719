"""``leadbot customer EMAIL|ID``, ``leadbot rfm`` and ``leadbot import orders FILE.csv``.

``customer`` and ``rfm`` read the last recompute's scores, recomputing first when a
customer changed since (``bot.chat.customers.fresh_scores``). ``import orders`` backfills
order history through the real ingest pipeline (each row an ``Order Completed``, plus an
``Order Cancelled`` or ``Order Refunded`` for its status, with message ids derived from the
order: a second run is all duplicates and changes nothing), then recomputes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import orjson

from bot.admin.leads import NOT_FOUND, USAGE_ERROR, NoDatabase, with_db
from bot.chat.customer_alerts import alerting
from bot.chat.customers import customer_report, fresh_scores, segment_table
from bot.chat.routing import Router
from bot.cli_commands import help_of
from bot.ingest.inbound import to_unix
from bot.jobs.rfm import Recomputed, recompute_rfm
from config.loader import LeadbotConfig, load_config
from config.settings import Settings, load_settings
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade

SCORE_COLUMNS = (
    "id", "email", "r", "f", "m", "cell", "segment", "since", "orders", "revenue", "last_order_at",
)  # fmt: skip


NOW_HELP = "score as of TIME (ISO 8601, e.g. a replayed history's last day): recomputes at it"


def _json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _now(args: argparse.Namespace) -> tuple[float, bool]:
    """The time to score at, and whether it was given (then the recompute runs at it)."""
    if getattr(args, "now", None) is None:
        return time.time(), False
    return to_unix(args.now), True


def _loaded(args: argparse.Namespace) -> tuple[Settings, LeadbotConfig, float, bool]:
    """Settings, config, and ``_now``; NoDatabase or ValueError when they cannot be had."""
    settings = load_settings()
    settings = with_db(settings, getattr(args, "db", None))
    config = load_config(getattr(args, "config", None) or settings.config_path)
    return (settings, config, *_now(args))


RouterFor = Callable[[Settings, LeadbotConfig], Router]


async def _fresh(
    settings: Settings, config: LeadbotConfig, now: float, force: bool, router_for: RouterFor
) -> Any:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        # A move found here is alerted as the scheduled job would (queued in the outbox).
        moves = alerting(config.rfm, router_for(settings, config), now=now)
        done: Recomputed | None
        if force:
            done = await recompute_rfm(engine, config.rfm, now=now, on_moves=moves)
        else:
            done = await fresh_scores(engine, config.rfm, now=now, on_moves=moves)
        if done is not None:
            sys.stderr.write(f"rfm: recomputed: {done.summary()}\n")
    except BaseException:
        await engine.dispose()
        raise
    return engine


def cmd_customer(args: argparse.Namespace) -> int:
    try:
        settings, config, now, given = _loaded(args)
    except (NoDatabase, ValueError) as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return USAGE_ERROR

    async def run() -> int:
        engine = await _fresh(settings, config, now, given, args.router_for)
        try:
            async with session_factory(engine)() as session:
                report = await customer_report(session, key=args.key, rfm=config.rfm, now=now)
        finally:
            await engine.dispose()
        if report is None:
            sys.stderr.write(f"leadbot: no lead or customer '{args.key}'\n")
            return NOT_FOUND
        if args.json:
            _json(report)
        else:
            sys.stdout.write(render_customer(report))
        return 0

    return asyncio.run(run())


def render_customer(report: dict[str, Any]) -> str:
    who = report["email"] or report["id"]
    if report["segment"] is None:
        return f"{who}: no counted orders yet (a lead, not a customer)\n"
    lines = [
        f"{who}: {report['segment']} (cell {report['cell']}: R {report['r']}, F {report['f']}, "
        f"M {report['m']}) since {report['since']}",
        f"  last order {report['recency_days']} days ago; {report['orders']} orders, "
        f"{report['revenue']:,.2f} {report['currency']} in the last {report['window_days']:g} days",
    ]
    if report["usual_interval_days"] is not None:
        lines.append(f"  usually every {report['usual_interval_days']} days")
    for currency, amount in report["unconverted"].items():
        lines.append(f"  + {amount:,.2f} {currency} not counted (no rate for {currency})")
    lines.append("  orders:")
    for o in report["order_list"][:20]:
        amount = f"{o['amount']:,.2f} {o['currency'] or report['currency']}"
        refunded = f", refunded {o['refunded']:,.2f}" if o["refunded"] else ""
        lines.append(f"    {o['at']}  {o['order_id']}  {amount}  {o['status']}{refunded}")
    lines.append("  segments:")
    for h in report["segment_history"]:
        lines.append(f"    {h['at']}  {h['from'] or '-'} → {h['to']} ({h['cell']})")
    return "\n".join(lines) + "\n"


def cmd_rfm(args: argparse.Namespace) -> int:
    try:
        settings, config, now, given = _loaded(args)
    except (NoDatabase, ValueError) as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return USAGE_ERROR
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        sys.stderr.write(f"leadbot: {out} exists: not overwritten (--force to replace it)\n")
        return USAGE_ERROR

    async def run() -> dict[str, Any]:
        engine = await _fresh(settings, config, now, args.recompute or given, args.router_for)
        try:
            async with session_factory(engine)() as session:
                return await segment_table(session, rfm=config.rfm, now=now)
        finally:
            await engine.dispose()

    table = asyncio.run(run())
    if out is not None:
        write_scores_csv(out, table["scores"], force=args.force)
        sys.stderr.write(f"wrote {out}: {len(table['scores'])} customers\n")
    if args.json:
        _json(table)
    else:
        sys.stdout.write(render_table(table))
    return 0


def render_table(table: dict[str, Any]) -> str:
    currency = table["currency"]
    head = (
        f"{'segment':<20} {'customers':>9} {'revenue ' + currency:>16} "
        f"{'new':>5} {'in':>5} {'out':>5}"
    )
    lines = [
        f"RFM segments as of {table['as_of'] or 'never'} (window {table['window_days']:g} days; "
        "new customers and moves in and out over the last 7 days)",
        head,
    ]
    for row in table["segments"]:
        lines.append(
            f"{row['segment']:<20} {row['customers']:>9} {row['revenue']:>16,.2f} "
            f"{row['new']:>5} {row['moved_in']:>5} {row['moved_out']:>5}"
        )
    lines.append(f"{'total':<20} {table['customers']:>9} {table['revenue']:>16,.2f}")
    for code, amount in table["unconverted"].items():
        lines.append(f"not counted: {amount:,.2f} {code} (no rate for {code} in rfm.rates)")
    return "\n".join(lines) + "\n"


def write_scores_csv(path: Path, scores: list[dict[str, Any]], *, force: bool) -> None:
    """Every customer's scores; an existing file is replaced only with ``force``."""
    with path.open("w" if force else "x", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SCORE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(scores)


def cmd_import_orders(args: argparse.Namespace) -> int:
    """``leadbot import orders FILE`` (dispatched from ``bot.crm.csvimport.command``)."""
    from bot.admin.order_import import OrderFileError, import_orders

    settings = load_settings()
    config = load_config(args.config or settings.config_path)
    url = f"sqlite+aiosqlite:///{Path(args.db).resolve()}" if args.db else settings.database_url

    async def run(err: TextIO) -> int:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            return await import_orders(engine, config, Path(args.file), now=time.time(), err=err)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run(sys.stderr))
    except OrderFileError as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return USAGE_ERROR


def _configured(settings: Settings, config: LeadbotConfig) -> Router:
    return Router(config.routing)


def register(sub: Any, router_for: RouterFor = _configured) -> None:
    """``customer`` and ``rfm``; ``router_for`` routes the alerts of moves a recompute they
    run finds (the CLI hands in serve's router, which only the composition root may build)."""
    c = sub.add_parser("customer", help=help_of("customer"))
    c.add_argument("key", help="the lead's id, e-mail, userId or name")
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    c.add_argument("--config", help="config YAML (LEADBOT_CONFIG, default: bundled)")
    c.add_argument("--db", help="SQLite file to read, not DATABASE_URL (never created)")
    c.add_argument("--now", metavar="TIME", help=NOW_HELP)
    c.set_defaults(func=cmd_customer, router_for=router_for)
    r = sub.add_parser("rfm", help=help_of("rfm"))
    r.add_argument("--json", action="store_true", help="print JSON (with every customer)")
    r.add_argument("--out", metavar="FILE.csv", help="write every customer's scores to a CSV")
    r.add_argument("--force", action="store_true", help="let --out replace an existing file")
    r.add_argument(
        "--recompute", action="store_true", help="recompute every customer's scores first"
    )
    r.add_argument("--config", help="config YAML (LEADBOT_CONFIG, default: bundled)")
    r.add_argument("--db", help="SQLite file to read, not DATABASE_URL (never created)")
    r.add_argument("--now", metavar="TIME", help=NOW_HELP)
    r.set_defaults(func=cmd_rfm, router_for=router_for)
