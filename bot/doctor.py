"""``leadbot doctor``: check an installation and say what to fix, in the order to fix it.

Each check is a small async function of the shared :class:`Context` that returns
:class:`Check` lines (OK / WARN / FAIL, what was found, what to do). Every check runs under
its own timeout and any exception becomes a FAIL line, so one broken part never hides the
others and doctor never hangs. A secret is only ever said to be set, not set or malformed;
every line is scrubbed of the secrets' values before it is shown all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import aiohttp
import orjson
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from config.errors import ConfigError
from config.loader import DEFAULT_PATH, LeadbotConfig, check_config, load_config
from config.settings import Settings, check_webhook_secret, load_settings
from storage.diagnostics import (
    inspect_sqlite_file,
    inspection_engine,
    migration_gap,
    outbox_backlog,
    sqlite_path,
)
from storage.migrate import current_revision

Status = Literal["OK", "WARN", "FAIL"]
OK: Status = "OK"
WARN: Status = "WARN"
FAIL: Status = "FAIL"

TIMEOUT = 5.0
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
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report. ``detail`` may span lines; ``fix`` is empty when OK."""

    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Context:
    """What the checks learn as they go, in order: settings, config, then the database."""

    environ: Mapping[str, str]
    timeout: float = TIMEOUT
    now: float = field(default_factory=time.time)
    settings: Settings | None = None
    bad: dict[str, str] = field(default_factory=dict)  # variable → the loader's message
    config: LeadbotConfig | None = None
    engine: AsyncEngine | None = None  # set once the database answered
    revision: str | None = None
    schema_current: bool = False


CheckFn = Callable[[Context], Awaitable[list[Check]]]


def ok(name: str, detail: str) -> list[Check]:
    return [Check(name, OK, detail)]


def warn(name: str, detail: str, fix: str) -> list[Check]:
    return [Check(name, WARN, detail, fix)]


def fail(name: str, detail: str, fix: str) -> list[Check]:
    return [Check(name, FAIL, detail, fix)]


def not_checked(name: str, why: str) -> list[Check]:
    return [Check(name, WARN, f"not checked: {why}")]


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
        return fail("database", f"{shown} unreachable: {why or _reason(exc)}", DB_FIX)
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


async def check_webhooks(ctx: Context) -> list[Check]:
    secret_fix = (
        "set LEADBOT_WEBHOOK_SECRET to the output of `leadbot webhook-secret` and give the "
        "same value to the sender (LEADBOT_SEGMENT_SECRET for a Segment webhook destination)"
    )
    if "LEADBOT_WEBHOOK_SECRET" in ctx.bad:
        message = ctx.bad["LEADBOT_WEBHOOK_SECRET"]
        return [
            Check("webhooks", FAIL, f"LEADBOT_WEBHOOK_SECRET is malformed: {message}", secret_fix)
        ]
    settings = ctx.settings
    if settings is None:
        return not_checked("webhooks", "the settings could not be read")
    if settings.webhook_secret is None and settings.segment_secret is None:
        return fail(
            "webhooks",
            "neither LEADBOT_WEBHOOK_SECRET nor "
            "LEADBOT_SEGMENT_SECRET is set: serve refuses to start without "
            "--insecure",
            secret_fix,
        )
    if settings.webhook_secret is not None:
        check_webhook_secret(settings.webhook_secret.get_secret_value())
    kinds = [
        "Standard Webhooks (LEADBOT_WEBHOOK_SECRET)" if settings.webhook_secret else "",
        "Segment X-Signature (LEADBOT_SEGMENT_SECRET)" if settings.segment_secret else "",
    ]
    return ok("webhooks", "signed: " + " and ".join(k for k in kinds if k))


# -- Slack ---------------------------------------------------------------------------------

SLACK_TOKEN_ERRORS = (
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
)


async def check_slack(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None:
        return not_checked("slack", "the settings could not be read")
    if settings.slack_bot_token is None:
        return ok("slack", "off (SLACK_BOT_TOKEN not set)")
    base_url = _api_url(settings.slack_api_url) or AsyncWebClient.BASE_URL
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url,
        timeout=max(1, int(ctx.timeout)),
    )
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        fix = (
            "SLACK_BOT_TOKEN is wrong or revoked: copy the Bot User OAuth Token (xoxb-…) "
            "from the Slack app's OAuth & Permissions page"
            if error in SLACK_TOKEN_ERRORS
            else "see Slack's documentation of this error"
        )
        return fail("slack", f"auth.test at {base_url} answered {error}", fix)
    except (aiohttp.ClientError, OSError) as exc:
        return fail(
            "slack",
            f"Slack Web API at {base_url} unreachable: {_reason(exc)}",
            "check this host's network and proxy (and SLACK_API_URL if set)",
        )
    who = f"bot {answer.get('user')} ({answer.get('user_id')})"
    return [
        Check("slack", OK, f"auth.test: {who} in {answer.get('team')} ({answer.get('team_id')})")
    ]


def _api_url(url: str | None) -> str | None:
    if not url:
        return None
    return url if url.endswith("/") else url + "/"


async def check_slack_mode(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or settings.slack_bot_token is None:
        return []
    from bot.slack.runtime import SlackConfigError, check_slack_settings

    try:
        check_slack_settings(settings)
    except SlackConfigError as exc:
        return fail("slack mode", str(exc), "serve refuses to start until one is set")
    modes = []
    if settings.slack_signing_secret is not None:
        modes.append("HTTP at /slack/events (SLACK_SIGNING_SECRET set)")
    if settings.slack_app_token is not None:
        modes.append("Socket Mode (SLACK_APP_TOKEN set)")
        if not settings.slack_app_token.get_secret_value().startswith("xapp-"):
            return warn(
                "slack mode",
                "SLACK_APP_TOKEN does not start with xapp-, as an app-level token does",
                "create one under Basic Information → App-Level Tokens (scope connections:write)",
            )
    return ok("slack mode", " and ".join(modes))


async def check_slack_channel(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or settings.slack_bot_token is None:
        return []
    if settings.slack_channel:
        return ok("slack channel", f"{settings.slack_channel} (LEADBOT_SLACK_CHANNEL)")
    if ctx.config is None:
        return not_checked(
            "slack channel", "LEADBOT_SLACK_CHANNEL is not set and the config could not be read"
        )
    channel = ctx.config.slack.default_channel
    if "default_channel" in ctx.config.slack.model_fields_set:
        return ok("slack channel", f"{channel} (slack.default_channel in the config)")
    return warn(
        "slack channel",
        f"not set: alerts no route claims go to {channel}, leadbot's built-in default",
        f"set LEADBOT_SLACK_CHANNEL (or slack.default_channel in the config) to the channel "
        f"for them, or create {channel}; invite the bot to it",
    )


# -- Teams ---------------------------------------------------------------------------------


async def check_teams(ctx: Context) -> list[Check]:
    if ctx.settings is None:
        return not_checked("teams", "the settings could not be read")
    from bot.teams import runtime

    try:
        mode = runtime.teams_mode(ctx.settings)
    except runtime.TeamsConfigError as exc:
        return fail("teams", str(exc), "serve refuses to start until it is complete")
    if mode is None:
        return ok("teams", f"off ({runtime.CLIENT_ID} not set)")
    checks = []
    if mode.app_id is not None:
        env = ctx.settings.agents_sdk
        auth = env.get(runtime.AUTH_TYPE, "ClientSecret")
        checks.append(
            Check(
                "teams",
                OK,
                f"on, app {mode.app_id}, tenant {env.get(runtime.TENANT_ID)}, auth {auth}",
            )
        )
    if mode.anonymous:
        checks.append(
            Check(
                "teams",
                WARN,
                runtime.ANONYMOUS_WARNING,
                f"unset {runtime.ANONYMOUS} "
                "outside the Agents Playground and set the app's credentials",
            )
        )
    return checks


async def check_teams_token(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or not _teams_credentials(settings):
        return []
    from bot.teams import runtime

    mode = runtime.teams_mode(settings)
    assert mode is not None
    try:
        # Inside the check's own timeout, so that the line says what timed out.
        async with asyncio.timeout(ctx.timeout * 0.9):
            await _off_loop(lambda: _bot_framework_token(settings))
    except TimeoutError:
        return fail(
            "teams token",
            f"no token from Entra ID for app {mode.app_id}: no answer within {ctx.timeout:g} s",
            TIMEOUT_FIX["teams token"],
        )
    except Exception as exc:
        return fail(
            "teams token",
            f"no token from Entra ID for app {mode.app_id}: {_reason(exc)}",
            f"check {runtime.CLIENT_ID}, {runtime.CLIENT_SECRET} "
            f"and {runtime.TENANT_ID} against the Azure Bot's app registration, and "
            "that the identity service is reachable from here",
        )
    return ok("teams token", f"a Bot Framework token for app {mode.app_id} obtained")


def _teams_credentials(settings: Settings) -> bool:
    from bot.teams import runtime

    try:
        mode = runtime.teams_mode(settings)
    except runtime.TeamsConfigError:
        return False  # the teams check says what is missing
    return mode is not None and mode.app_id is not None


async def _bot_framework_token(settings: Settings) -> str:
    """A token as the outbox's Teams transport gets one: MSAL's client-credentials flow
    through the SDK's connection manager, for the Bot Framework scope."""
    from microsoft_agents.hosting.core.authorization import AuthenticationConstants

    from bot.teams.runtime import prepare_teams

    provider = prepare_teams(settings).connections.get_default_connection()
    scope = AuthenticationConstants.AGENTS_SDK_SCOPE
    return await provider.get_access_token(scope, [f"{scope}/.default"])


async def check_teams_destinations(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or not _teams_on(settings):
        return []
    if ctx.engine is None or ctx.config is None or not ctx.schema_current:
        return not_checked("teams reach", "needs the config and a current database (see above)")
    from bot.teams.runtime import configured_destinations
    from bot.teams.transport import missing_reference_advice
    from storage.teams import missing_destinations

    wanted = configured_destinations(ctx.config)
    async with ctx.engine.connect() as conn:
        missing = await missing_destinations(conn, wanted, default=ctx.config.teams.default_channel)
    if not missing:
        return ok(
            "teams reach", f"every configured destination ({len(wanted)}) has a stored conversation"
        )
    lines = "\n".join(f"{d}: {missing_reference_advice(d)}" for d in missing)
    return warn(
        "teams reach",
        f"{len(missing)} destination(s) the bot cannot post to yet:\n{lines}",
        "messages for them wait in the outbox until then",
    )


def _teams_on(settings: Settings) -> bool:
    from bot.teams.runtime import TeamsConfigError, teams_mode

    try:
        return teams_mode(settings) is not None
    except TeamsConfigError:
        return False


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

CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("settings", check_settings),
    ("config", check_config_file),
    ("database", check_database),
    ("migrations", check_migrations),
    ("sqlite", check_sqlite),
    ("webhooks", check_webhooks),
    ("slack", check_slack),
    ("slack mode", check_slack_mode),
    ("slack channel", check_slack_channel),
    ("teams", check_teams),
    ("teams token", check_teams_token),
    ("teams reach", check_teams_destinations),
    ("outbox", check_outbox),
)

TIMEOUT_FIX = {
    "database": DB_FIX,
    "slack": "check this host's network and proxy (and SLACK_API_URL if set)",
    "teams token": "check that the identity service (login.microsoftonline.com) is reachable",
}


async def run_checks(
    environ: Mapping[str, str], *, per_check: float = TIMEOUT, now: float | None = None
) -> list[Check]:
    """Every check, in order; each within ``per_check`` seconds."""
    ctx = Context(environ=environ, timeout=per_check, now=time.time() if now is None else now)
    out: list[Check] = []
    try:
        for name, check in CHECKS:
            out.extend(await _guarded(name, check, ctx))
    finally:
        if ctx.engine is not None:
            await ctx.engine.dispose()
    return [_scrubbed(c, _secret_values(environ)) for c in out]


async def _guarded(name: str, check: CheckFn, ctx: Context) -> list[Check]:
    try:
        async with asyncio.timeout(ctx.timeout):
            return await check(ctx)
    except TimeoutError:
        fix = TIMEOUT_FIX.get(name, "run doctor again; if it recurs, this part is stuck")
        return fail(name, f"no answer within {ctx.timeout:g} s", fix)
    except Exception as exc:
        return fail(name, f"the check failed: {_reason(exc)}", TIMEOUT_FIX.get(name, ""))


def _reason(exc: BaseException) -> str:
    """The innermost useful error, on one line: a driver's error rather than SQLAlchemy's
    wrapper, the cause a requests or urllib3 error carries."""
    for _ in range(5):
        if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException):
            exc = exc.orig
        elif isinstance(getattr(exc, "reason", None), BaseException):
            exc = exc.reason  # type: ignore[attr-defined]
        elif exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        else:
            break
    text = " ".join(str(exc).split()) or "no message"
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}"


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    names = [*SECRET_VARIABLES, *(k for k in environ if k.endswith(("SECRET", "PASSWORD")))]
    values = [environ.get(name, "").strip() for name in names]
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


# -- off the event loop --------------------------------------------------------------------

P = ParamSpec("P")
T = TypeVar("T")


class _DaemonThreads(ThreadPoolExecutor):
    """A default executor whose threads never hold up the process's exit: the Agents SDK
    hands MSAL's blocking HTTP to ``asyncio.to_thread``, and a check given up at its
    timeout must not keep doctor waiting for it."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def work() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)

        threading.Thread(target=work, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


async def _off_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` on its own event loop in a daemon thread: MSAL also blocks the loop
    it is called on (it builds its client synchronously), which no timeout could cut."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def settle(apply: Callable[[], None]) -> None:
        # RuntimeError: doctor finished and closed its loop meanwhile.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lambda: None if result.done() else apply())

    def run() -> None:
        own = asyncio.new_event_loop()
        own.set_default_executor(_DaemonThreads())
        try:
            value = own.run_until_complete(make())
        except Exception as exc:
            error = exc
            settle(lambda: result.set_exception(error))
        else:
            settle(lambda: result.set_result(value))
        finally:
            own.close()

    threading.Thread(target=run, daemon=True, name="leadbot-doctor").start()
    return await result


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


def doctor(environ: Mapping[str, str], *, as_json: bool = False, timeout: float = TIMEOUT) -> int:
    """Run every check, print the report; 0 when nothing FAILs, 1 otherwise. Library logs
    are silenced meanwhile: the report is the output, and an SDK's error log would repeat
    it with a traceback."""
    logging.disable(logging.CRITICAL)
    try:
        checks = asyncio.run(run_checks(environ, per_check=timeout))
    finally:
        logging.disable(logging.NOTSET)
    if as_json:
        report = {"ok": exit_code(checks) == 0, "checks": [asdict(c) for c in checks]}
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render(checks))
    return exit_code(checks)


def cmd_doctor(args: argparse.Namespace) -> int:
    return doctor(os.environ, as_json=args.json, timeout=args.timeout)


def register(subparsers: Any) -> None:
    """``leadbot doctor [--json] [--timeout S]``."""
    p = subparsers.add_parser(
        "doctor", help="check settings, config, database, webhooks, Slack, Teams and outbox"
    )
    p.add_argument("--json", action="store_true", help="the checks as JSON")
    p.add_argument(
        "--timeout", type=float, default=TIMEOUT, help=f"seconds per check ({TIMEOUT:g})"
    )
    p.set_defaults(func=cmd_doctor)
