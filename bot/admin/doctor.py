"""``leadbot doctor``: check an installation and say what to fix, in the order to fix it.

Each check is a small async function of the shared ``Context`` (``bot/admin/checks.py``) that
returns ``Check`` lines (OK / WARN / FAIL, what was found, what to do); the Slack and Teams
ones are in ``bot/admin/doctor_chat.py``. Every check runs under its own timeout and any exception
becomes a FAIL line, so one broken part never hides the others and doctor never hangs. A
secret is only ever said to be set, not set or malformed; every line is scrubbed of the
secrets' values before it is shown all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from bot.admin.checks import (
    FAIL,
    OK,
    TIMEOUT,
    WARN,
    Check,
    CheckFn,
    Context,
    fail,
    not_checked,
    ok,
    reason,
    warn,
)
from bot.cli_commands import help_of
from bot.crm.doctor import check_crm
from config.errors import ConfigError
from config.loader import DEFAULT_PATH, check_config, load_config
from config.settings import load_settings
from storage.diagnostics import (
    inspect_sqlite_file,
    inspection_engine,
    migration_gap,
    outbox_backlog,
)
from storage.engine import sqlite_path
from storage.migrate import current_revision
from storage.statistics import stale, table_statistics

__all__ = ["Check", "doctor", "register", "run_checks"]

STALE_PENDING = 15 * 60.0  # seconds: an alert older than this should have gone out
UPGRADE = "leadbot db upgrade"
DB_FIX = (
    "check DATABASE_URL (host, port, database name, user and password), that the server is "
    "up, and that no firewall drops the connection"
)
OUTBOX_LIST = "leadbot outbox list"
SECRET_VARIABLES = (
    "LEADBOT_WEBHOOK_SECRET",
    "LEADBOT_SEGMENT_SECRET",
    "LEADBOT_WRITE_KEYS",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_CLIENT_SECRET",
    "SALESFORCE_ACCESS_TOKEN",
    "SALESFORCE_PASSWORD",
    "SALESFORCE_SECURITY_TOKEN",
)


# -- settings and config -------------------------------------------------------------------


async def check_settings(ctx: Context) -> list[Check]:
    try:
        ctx.settings = load_settings(ctx.environ)
    except ConfigError as err:
        ctx.bad = {p.field: p.message for p in err.problems}
        # The rest is checked with what could be read; a check that needs a variable
        # named here says so instead of guessing.
        rest = {k: v for k, v in ctx.environ.items() if k not in ctx.bad}
        try:
            ctx.settings = load_settings(rest)
        except ConfigError:
            ctx.settings = None
    secrets = ", ".join(f"{name} {_secret_state(ctx, name)}" for name in SECRET_VARIABLES)
    if not ctx.bad:
        return ok("settings", f"read from the environment\n{secrets}")
    problems = "\n".join(f"{name}: {message}" for name, message in ctx.bad.items())
    return fail(
        "settings",
        f"{problems}\n{secrets}",
        "correct these environment variables: nothing starts until they are valid",
    )


def _secret_state(ctx: Context, name: str) -> str:
    if name in ctx.bad:
        return "malformed"
    return "set" if ctx.environ.get(name, "").strip() else "not set"


async def check_config_file(ctx: Context) -> list[Check]:
    configured = ctx.settings.config_path if ctx.settings else ctx.environ.get("LEADBOT_CONFIG")
    path = configured or str(DEFAULT_PATH)
    problems = check_config(path)
    if problems:
        return fail(
            "config",
            "\n".join(str(p) for p in problems),
            f"fix the file (`leadbot check-config {path}` checks it again)",
        )
    ctx.config = load_config(path)
    which = "" if configured else " (the bundled default; LEADBOT_CONFIG names your own)"
    rules, name = len(ctx.config.model.rules), ctx.config.model.name
    return ok("config", f"{path}: {rules} rules, model '{name}'{which}")


# -- database ------------------------------------------------------------------------------


def shown_url(url: str) -> str:
    """The database URL with its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


async def check_database(ctx: Context) -> list[Check]:
    if ctx.settings is None:
        return not_checked("database", "the settings could not be read")
    url = ctx.settings.database_url
    try:
        shown, path = shown_url(url), sqlite_path(url)
    except ArgumentError:
        return fail(
            "database",
            "DATABASE_URL is malformed (not shown: it may hold a password)",
            "set DATABASE_URL to e.g. sqlite:///./leadbot.db or "
            "postgresql://user:password@host:5432/leadbot",
        )
    if path is not None and _missing(path):
        return fail(
            "database",
            f"{shown}: no database file at {_missing(path)}",
            f"`{UPGRADE}` creates and migrates it (serve does too at start), or point "
            "DATABASE_URL at the existing file",
        )
    engine = inspection_engine(url)
    try:
        # Inside the check's own timeout, so that the line can name the URL.
        async with asyncio.timeout(ctx.timeout * 0.9):
            async with engine.connect() as conn:
                version = await conn.run_sync(lambda c: c.dialect.server_version_info)
    except (TimeoutError, OSError, DBAPIError) as exc:
        await engine.dispose()
        why = f"no answer within {ctx.timeout:g} s" if isinstance(exc, TimeoutError) else None
        return fail("database", f"{shown} unreachable: {why or reason(exc)}", DB_FIX)
    except BaseException:
        await engine.dispose()
        raise
    ctx.engine = engine
    kind = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(engine.dialect.name, "")
    number = ".".join(str(part) for part in version or ())
    return ok("database", f"{shown} reachable ({kind} {number})")


async def check_migrations(ctx: Context) -> list[Check]:
    if ctx.engine is None:
        return not_checked("migrations", "the database is not reachable")
    ctx.revision = await current_revision(ctx.engine)
    gap = migration_gap(ctx.revision)
    if not gap.known:
        return fail(
            "migrations",
            f"the database is at revision {gap.current}, which "
            f"this leadbot does not ship (its latest is {gap.head}): a newer leadbot "
            "migrated it",
            "run the leadbot version that migrated it",
        )
    if gap.current is None:
        return fail(
            "migrations",
            "the database was never migrated: leadbot's tables do not exist",
            f"run `{UPGRADE}`",
        )
    if gap.pending:
        behind = f"{len(gap.pending)} migration(s) behind: {', '.join(gap.pending)}"
        return fail(
            "migrations",
            f"at revision {gap.current}, {behind}",
            f"run `{UPGRADE}` (serve also applies them at start)",
        )
    ctx.schema_current = True
    return ok("migrations", f"at revision {gap.head}, the latest")


async def check_sqlite(ctx: Context) -> list[Check]:
    path = sqlite_path(ctx.settings.database_url) if ctx.settings and ctx.engine else None
    if path is None:
        return []  # PostgreSQL, or the database check already said why not
    try:
        facts = await asyncio.to_thread(inspect_sqlite_file, path)
    except sqlite3.Error as exc:
        return fail(
            "sqlite",
            f"{path}: cannot be read: {exc}",
            "is it a leadbot SQLite database? restore it or point DATABASE_URL elsewhere",
        )
    where = facts.path
    if not (facts.writable and facts.directory_writable):
        what = "the file" if not facts.writable else "its directory (WAL keeps files beside it)"
        return fail(
            "sqlite",
            f"{where}: {what} is not writable by this user",
            "make the file and its directory writable by the user leadbot runs as",
        )
    summary = f"{where}: {_size(facts.size)}, writable, journal mode {facts.journal_mode}"
    if facts.journal_mode != "wal":
        return warn(
            "sqlite",
            summary + " (not wal: readers and the writer block each other)",
            "serve switches it to WAL at start; if it stays "
            f"{facts.journal_mode}, the file is on a filesystem without shared memory "
            "(e.g. NFS): move it to a local disk",
        )
    return ok("sqlite", summary)


async def check_postgresql(ctx: Context) -> list[Check]:
    """PostgreSQL's planner statistics of the ingest tables: plans made when a table was
    small scan it whole until an ANALYZE (storage/statistics.py)."""
    if ctx.engine is None or ctx.engine.dialect.name != "postgresql" or ctx.revision is None:
        return []  # SQLite, or the database or migrations check already said why not
    async with ctx.engine.connect() as conn:
        tables = await table_statistics(conn)
    off = sorted(t.name for t in tables if not t.autovacuum)
    behind = [t for t in tables if stale(t)]
    if behind:
        listed = ", ".join(
            f"{t.name} ({t.rows:,} rows, never analyzed)" if t.planned is None
            else f"{t.name} ({t.rows:,} rows; its planner counts {t.planned:,})"
            for t in behind
        )  # fmt: skip
        return warn(
            "postgresql",
            f"planner statistics far behind the data: {listed}; statements planned when "
            "these tables were small scan them whole",
            "run `ANALYZE` in psql (servers re-plan at once)"
            + (f"; autovacuum is off for {', '.join(off)}: turn it on" if off else ""),
        )
    if off:
        return warn(
            "postgresql",
            f"autovacuum is off for {', '.join(off)}: their statistics change only by hand",
            "turn autovacuum on (postgresql.conf; a table's own setting: ALTER TABLE … RESET "
            "(autovacuum_enabled)), or run `ANALYZE` after every large load",
        )
    return ok("postgresql", f"autovacuum on; statistics of {len(tables)} ingest tables current")


def _missing(path: str) -> str | None:
    """The absolute path of a SQLite file that does not exist; None when it does."""
    file = Path(path)
    return None if file.is_file() else str(file.absolute())


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# -- webhook auth --------------------------------------------------------------------------


WRITE_KEYS_FIX = (
    "set LEADBOT_WRITE_KEYS to comma-separated keys from `leadbot write-key` and give each "
    "SDK one as its write key"
)


async def check_webhooks(ctx: Context) -> list[Check]:
    secret_fix = (
        "set LEADBOT_WEBHOOK_SECRET to the output of `leadbot webhook-secret` and give the "
        "same value to the sender (LEADBOT_SEGMENT_SECRET for a Segment webhook destination; "
        "LEADBOT_WRITE_KEYS, from `leadbot write-key`, for Segment and RudderStack SDKs)"
    )
    if "LEADBOT_WEBHOOK_SECRET" in ctx.bad:
        message = ctx.bad["LEADBOT_WEBHOOK_SECRET"]
        return [
            Check("webhooks", FAIL, f"LEADBOT_WEBHOOK_SECRET is malformed: {message}", secret_fix)
        ]
    settings = ctx.settings
    if settings is None:
        return not_checked("webhooks", "the settings could not be read")
    secrets = len(settings.webhook_secrets)
    if not secrets and settings.segment_secret is None:
        neither = "neither LEADBOT_WEBHOOK_SECRET nor LEADBOT_SEGMENT_SECRET is set"
        if settings.write_key_list:  # an SDK-only setup: serve starts
            return ok("webhooks", f"{neither}: /webhooks/events refuses every call (401)")
        return fail(
            "webhooks",
            f"{neither}, nor LEADBOT_WRITE_KEYS: serve refuses to start without --insecure",
            secret_fix,
        )
    standard = "Standard Webhooks" if secrets == 1 else f"{secrets} Standard Webhooks secrets"
    kinds = [
        f"{standard}{' (rotation)' if secrets > 1 else ''} (LEADBOT_WEBHOOK_SECRET)"
        if secrets
        else "",
        "Segment X-Signature (LEADBOT_SEGMENT_SECRET)" if settings.segment_secret else "",
    ]
    return ok("webhooks", "signed: " + " and ".join(k for k in kinds if k))


async def check_write_keys(ctx: Context) -> list[Check]:
    """The SDK routes' keys, by count only: a key is as secret as a webhook secret."""
    if "LEADBOT_WRITE_KEYS" in ctx.bad:
        message = ctx.bad["LEADBOT_WRITE_KEYS"]
        return fail("write keys", f"LEADBOT_WRITE_KEYS is malformed: {message}", WRITE_KEYS_FIX)
    if ctx.settings is None:
        return not_checked("write keys", "the settings could not be read")
    count = len(ctx.settings.write_key_list)
    if not count:
        return ok("write keys", "none (LEADBOT_WRITE_KEYS not set): no SDK can send events")
    rotation = " (rotation)" if count > 1 else ""
    return ok("write keys", f"{count} set{rotation} (LEADBOT_WRITE_KEYS): SDKs may send events")


# -- outbox --------------------------------------------------------------------------------


async def check_outbox(ctx: Context) -> list[Check]:
    if ctx.engine is None or ctx.revision is None:
        return not_checked("outbox", "the database is not reachable or not migrated")
    async with ctx.engine.connect() as conn:
        backlog = await outbox_backlog(conn)
    summary = f"{backlog.pending} pending, {backlog.sending} sending, {backlog.dead} dead"
    age = None
    if backlog.oldest_pending is not None:
        age = max(0.0, ctx.now - backlog.oldest_pending.timestamp())
        summary += f"; the oldest pending was queued {_ago(age)} ago"
    problems = []
    if backlog.dead:
        problems.append(f"{backlog.dead} message(s) were given up on (dead)")
    if age is not None and age > STALE_PENDING:
        problems.append(
            f"a message has waited over {_ago(STALE_PENDING)}: a transport may be "
            "down, or no bot is running"
        )
    if problems:
        return warn(
            "outbox",
            f"{summary}\n" + "\n".join(problems),
            f"`{OUTBOX_LIST}` shows them with their last error",
        )
    return ok("outbox", summary)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


# -- running -------------------------------------------------------------------------------

Checks = Sequence[tuple[str, CheckFn]]

CORE_CHECKS: Checks = (
    ("settings", check_settings),
    ("config", check_config_file),
    ("database", check_database),
    ("migrations", check_migrations),
    ("sqlite", check_sqlite),
    ("postgresql", check_postgresql),
    ("webhooks", check_webhooks),
    ("write keys", check_write_keys),
)
LAST_CHECKS: Checks = (("crm", check_crm), ("outbox", check_outbox))


@dataclass(frozen=True)
class ChatChecks:
    """What the chat adapters add (``bot/slack/doctor.py``, ``bot/teams/doctor.py``), handed
    in by the composition root: their checks, and the fix to print when one times out."""

    checks: Checks = ()
    timeout_fix: Mapping[str, str] = field(default_factory=dict)


async def run_checks(
    environ: Mapping[str, str],
    *,
    per_check: float = TIMEOUT,
    now: float | None = None,
    chat: ChatChecks = ChatChecks(),
) -> list[Check]:
    """Every check, in order; each within ``per_check`` seconds."""
    ctx = Context(environ=environ, timeout=per_check, now=time.time() if now is None else now)
    fixes = {"database": DB_FIX, **chat.timeout_fix}
    out: list[Check] = []
    try:
        for name, check in (*CORE_CHECKS, *chat.checks, *LAST_CHECKS):
            out.extend(await _guarded(name, check, ctx, fixes))
    finally:
        if ctx.engine is not None:
            await ctx.engine.dispose()
    return [_scrubbed(c, _secret_values(environ)) for c in out]


async def _guarded(
    name: str, check: CheckFn, ctx: Context, fixes: Mapping[str, str]
) -> list[Check]:
    try:
        async with asyncio.timeout(ctx.timeout):
            return await check(ctx)
    except TimeoutError:
        fix = fixes.get(name, "run doctor again; if it recurs, this part is stuck")
        return fail(name, f"no answer within {ctx.timeout:g} s", fix)
    except Exception as exc:
        fix = fixes.get(name, "fix what the error says, then run doctor again")
        return fail(name, f"the check failed: {reason(exc)}", fix)


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    names = [*SECRET_VARIABLES, *(k for k in environ if k.endswith(("SECRET", "PASSWORD")))]
    values = [environ.get(name, "").strip() for name in names]
    # Each of several secrets or keys in one variable, so that one alone is scrubbed too.
    values += [part for value in values for part in value.replace(",", " ").split()]
    try:
        values.append(make_url(environ.get("DATABASE_URL", "sqlite://")).password or "")
    except ArgumentError:
        values.append(environ.get("DATABASE_URL", ""))
    # Shorter values are words the report itself may use ("leadbot" as a test password).
    return sorted({v for v in values if len(v) >= 8}, key=len, reverse=True)


def _scrubbed(check: Check, secrets: list[str]) -> Check:
    detail, fix = check.detail, check.fix
    for secret in secrets:
        detail, fix = detail.replace(secret, "***"), fix.replace(secret, "***")
    return Check(check.name, check.status, detail, fix)


# -- output and the command ----------------------------------------------------------------


def render(checks: list[Check]) -> str:
    width = max((len(c.name) for c in checks), default=0)
    pad = " " * (6 + width + 1)
    lines = []
    for c in checks:
        first, *rest = c.detail.splitlines() or [""]
        lines.append(f"{c.status:<5} {c.name:<{width}} {first}")
        lines.extend(pad + line for line in rest)
        if c.fix:
            lines.append(f"{pad}fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in (FAIL, WARN, OK)}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines) + "\n"


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def doctor(
    environ: Mapping[str, str],
    *,
    as_json: bool = False,
    timeout: float = TIMEOUT,
    chat: ChatChecks = ChatChecks(),
) -> int:
    """Run every check, print the report; 0 when nothing FAILs, 1 otherwise. Library logs
    are silenced meanwhile: the report is the output, and an SDK's error log would repeat
    it with a traceback."""
    logging.disable(logging.CRITICAL)
    try:
        checks = asyncio.run(run_checks(environ, per_check=timeout, chat=chat))
    finally:
        logging.disable(logging.NOTSET)
    if as_json:
        report = {"ok": exit_code(checks) == 0, "checks": [asdict(c) for c in checks]}
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render(checks))
    return exit_code(checks)


def register(subparsers: Any, chat: Callable[[], ChatChecks]) -> None:
    """``leadbot doctor [--json] [--timeout S]``."""
    p = subparsers.add_parser("doctor", help=help_of("doctor"))
    p.add_argument("--json", action="store_true", help="the checks as JSON")
    p.add_argument(
        "--timeout", type=_seconds, default=TIMEOUT, help=f"seconds per check ({TIMEOUT:g})"
    )

    def cmd_doctor(args: argparse.Namespace) -> int:
        return doctor(os.environ, as_json=args.json, timeout=args.timeout, chat=chat())

    p.set_defaults(func=cmd_doctor)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value
