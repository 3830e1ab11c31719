"""``leadbot``: serve the bot, replay the demo, look leads up, check a config."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from bot.cli_commands import COMMANDS
from bot.log_privacy import quiet_chat_logs

# Imported where used: a command loads what it needs, not what every other one does (the
# whole stack took ~1 s to import at each start, ``leadbot --help`` included).
if TYPE_CHECKING:
    from bot.admin.doctor import ChatChecks
    from bot.admin.privacy import Erasers
    from config.loader import LeadbotConfig
    from config.settings import Settings

USAGE_ERROR = 2
DATABASE_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE
DESCRIPTION = "leadbot: serve the bot, replay the demo, look leads up, check a config."


def _fail(message: str, code: int = USAGE_ERROR) -> int:
    sys.stderr.write(f"leadbot: {message}\n")
    return code


def _load(args: argparse.Namespace) -> tuple[Settings, LeadbotConfig]:
    from config.loader import load_config
    from config.settings import load_settings

    settings = load_settings()
    logging.getLogger().setLevel(settings.log_level)
    path = getattr(args, "config", None) or settings.config_path
    return settings, load_config(path)


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    settings, config = _load(args)
    return serve(settings, config, insecure=args.insecure, host=args.host, port=args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.replay import run_demo

    return asyncio.run(
        run_demo(seed=args.seed, leads=args.leads, db_path=args.db, force=args.force)
    )


def cmd_check_config(args: argparse.Namespace) -> int:
    from config.loader import check_config, load_config

    problems = check_config(args.file)
    if problems:
        for problem in problems:
            sys.stderr.write(f"{problem}\n")
        return _fail(f"{len(problems)} problem(s) in {args.file}")
    config = load_config(args.file)
    sys.stdout.write(
        f"{args.file}: OK — {len(config.model.rules)} rules, model '{config.model.name}'\n"
    )
    return 0


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    from bot.ingest.signatures import generate_secret

    sys.stdout.write(generate_secret() + "\n")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.admin.leads import db_command
    from config.settings import load_settings

    return asyncio.run(db_command(load_settings(), args.action))


def cmd_lead(args: argparse.Namespace) -> int:
    from bot.admin.leads import read_command, show_lead

    return read_command(args.db, _load(args), show_lead, args.key, as_json=args.json)


def cmd_stats(args: argparse.Namespace) -> int:
    from bot.admin.leads import read_command, show_stats

    return read_command(args.db, _load(args), show_stats, as_json=args.json)


def cmd_top(args: argparse.Namespace) -> int:
    from bot.admin.leads import read_command, show_top

    return read_command(args.db, _load(args), show_top, args.n, band=args.band, as_json=args.json)


def cmd_learn(args: argparse.Namespace) -> int:
    from bot.models.learn_csv import HistoryError, LearnOptions, run_learn
    from config.loader import load_config

    base = load_config(args.model).model if args.model else None
    options = LearnOptions(
        outcome=args.outcome,
        id_column=args.id,
        ignore=tuple(args.ignore),
        allow=tuple(args.allow),
        base=base,
        name=base.name if base is not None else "learned",
        points_per_logodds=base.points_per_logodds if base is not None else 20.0,
        seed=args.seed,
    )
    try:
        run_learn(args.history, args.out, options)
    except HistoryError as err:
        return _fail(str(err))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from bot.models.learn_csv import HistoryError, run_score
    from config.loader import load_config

    model = load_config(args.model).model
    try:
        count = run_score(args.input, model, args.out, args.id)
    except HistoryError as err:
        return _fail(str(err))
    sys.stderr.write(f"wrote {args.out}: {count} scored rows\n")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from bot.admin.models import model_command
    from bot.destinations import running_router

    settings, config = _load(args)
    router = running_router(settings, config)
    try:
        return asyncio.run(model_command(settings, config, args, now=time.time(), router=router))
    except (LookupError, ValueError) as err:
        return _fail(str(err).strip("'\""))


def cmd_retrain(args: argparse.Namespace) -> int:
    from bot.admin.models import retrain_command

    settings, config = _load(args)
    return asyncio.run(retrain_command(settings, config, now=time.time(), as_json=args.json))


def cmd_teams(args: argparse.Namespace) -> int:
    from bot.teams.package import PackageError, build_package

    try:
        manifest = build_package(
            args.out, app_id=args.app_id, name=args.name, domains=tuple(args.domain or ()),
            version=args.version, website=args.website,
        )  # fmt: skip
    except PackageError as exc:
        return _fail(str(exc))
    sys.stdout.write(
        f"{args.out}: Teams app package for bot {manifest['id']} (manifest "
        f"{manifest['manifestVersion']}, {len(manifest['validDomains'])} valid domain(s)); "
        "upload it in Teams: Apps → Manage your apps → Upload an app\n"
    )
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from bot.admin.digest import digest_command

    settings, config = _load(args)
    return asyncio.run(digest_command(settings, config, args, now=time.time()))


def alert_router(settings: Settings, config: LeadbotConfig) -> Any:
    """serve's alert router, for commands that queue alerts outside it."""
    from bot.destinations import running_router

    return running_router(settings, config)


def chat_erasers() -> Erasers:
    """How ``leadbot forget`` deletes the bot's posts on each chat platform."""
    from bot.slack import erase as slack
    from bot.teams import erase as teams

    return {"slack": slack.erase_posts, "teams": teams.erase_posts}


def chat_checks() -> ChatChecks:
    """The Slack and Teams checks ``leadbot doctor`` runs beside its own."""
    from bot.admin.doctor import ChatChecks
    from bot.slack import doctor as slack
    from bot.teams import doctor as teams

    return ChatChecks(
        checks=(*slack.CHECKS, *teams.CHECKS),
        timeout_fix={**slack.TIMEOUT_FIX, **teams.TIMEOUT_FIX},
    )


def parser(real: Collection[str] | None = None) -> argparse.ArgumentParser:
    """``leadbot``'s parser. Of the commands defined beside their code (``bot.cli_commands``),
    only those in ``real`` (None: all) get their arguments, which imports their modules;
    the others are listed with their help, for ``leadbot --help``."""
    p = argparse.ArgumentParser(prog="leadbot", description=DESCRIPTION)
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND -h for more)"
    )

    s = sub.add_parser("serve", help="run the bot (webhooks, alerts)")
    s.add_argument(
        "--insecure",
        action="store_true",
        help="accept unsigned webhooks when no secret is set (never in production)",
    )
    s.add_argument(
        "--host",
        help="listen address (LEADBOT_HOST; default 0.0.0.0, or 127.0.0.1 with --insecure)",
    )
    s.add_argument("--port", type=int, help="listen port (LEADBOT_PORT, default 8080)")
    s.add_argument("--config", help="scoring model YAML (LEADBOT_CONFIG, default: bundled)")
    s.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="replay a sample stream through the pipeline and show alerts")
    d.add_argument("--seed", type=int, default=7, help="seed of the sample stream (7)")
    d.add_argument("--leads", type=int, default=200, help="how many leads to simulate (200)")
    d.add_argument(
        "--db",
        metavar="FILE",
        help="keep the demo database in FILE (default: a temp file); an existing FILE is "
        "refused unless it is a demo database and --force is given",
    )
    d.add_argument(
        "--force", action="store_true", help="replace FILE if it is a demo database (only then)"
    )
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("check-config", help="validate a scoring model YAML file")
    c.add_argument("file", help="the YAML file to check")
    c.set_defaults(func=cmd_check_config)

    w = sub.add_parser("webhook-secret", help="print a fresh LEADBOT_WEBHOOK_SECRET")
    w.set_defaults(func=cmd_webhook_secret)

    db = sub.add_parser("db", help="database migrations")
    db.add_argument(
        "action",
        choices=("upgrade", "current"),
        help="upgrade: migrate DATABASE_URL to the latest schema; current: print its revision",
    )
    db.set_defaults(func=cmd_db)

    lead = sub.add_parser("lead", help="show one lead: score, reasons, history, feedback")
    lead.add_argument("key", help="lead id, userId, e-mail or name")
    lead.add_argument("--json", action="store_true", help="print JSON instead of text")
    lead.add_argument("--config", help="scoring model YAML")
    lead.add_argument("--db", help="SQLite file to read, not DATABASE_URL (never created)")
    lead.set_defaults(func=cmd_lead)

    st = sub.add_parser("stats", help="lead, event and band counts")
    st.add_argument("--json", action="store_true", help="print JSON instead of text")
    st.add_argument("--db", help="SQLite file to read, not DATABASE_URL (never created)")
    st.set_defaults(func=cmd_stats)

    top = sub.add_parser("top", help="the hottest leads")
    top.add_argument("n", nargs="?", type=int, default=10, help="how many leads (10)")
    top.add_argument("--band", choices=("hot", "warm", "cold"), help="only leads of this band")
    top.add_argument("--json", action="store_true", help="print JSON instead of text")
    top.add_argument("--db", help="SQLite file to read, not DATABASE_URL (never created)")
    top.set_defaults(func=cmd_top)

    le = sub.add_parser("learn", help="learn a scoring model from a history CSV")
    le.add_argument("history", help="CSV of past leads, one row each, with an outcome column")
    le.add_argument("--outcome", required=True, help="column of 1/0, yes/no, true/false, won/lost")
    le.add_argument("--id", help="column that identifies a lead (never a rule)")
    le.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column not to learn from (repeat for several)",
    )
    le.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="COLUMN",
        help="learn from a column flagged as an id or a likely leak (repeat for several)",
    )
    le.add_argument("--model", help="base model YAML: its points are the prior, its bands kept")
    le.add_argument("--out", required=True, help="where to write the learned model YAML")
    le.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    le.set_defaults(func=cmd_learn)

    sc = sub.add_parser("score", help="score every row of a CSV with a model")
    sc.add_argument("input", help="CSV of leads, one row each")
    sc.add_argument("--model", required=True, help="scoring model YAML")
    sc.add_argument("--id", help="column to copy into the output as the row's id")
    sc.add_argument("--out", required=True, help="where to write the scores CSV")
    sc.set_defaults(func=cmd_score)
    _model_parsers(sub)
    _digest_parser(sub)
    _teams_parser(sub)
    _registered(sub, real)
    return p


# What a command module's ``register`` needs besides the parser: the composition root's
# pieces (chat checks and erasers, serve's alert router), which only this module may build.
_REGISTER_ARGS: dict[str, tuple[Any, ...]] = {
    "bot.admin.doctor": (chat_checks,),
    "bot.admin.privacy": (chat_erasers,),
    "bot.admin.customers": (alert_router,),
}


def _registered(sub: Any, real: Collection[str] | None) -> None:
    """Each module of ``bot.cli_commands`` adds its commands for real when one of them is in
    ``real`` (None: all); otherwise each of its commands is a bare line of the help."""
    modules: dict[str, list[str]] = {}
    for command, (module, _) in COMMANDS.items():
        modules.setdefault(module, []).append(command)
    for module, commands in modules.items():
        if real is None or any(c in real for c in commands):
            importlib.import_module(module).register(sub, *_REGISTER_ARGS.get(module, ()))
        else:
            for command in commands:
                sub.add_parser(command, help=COMMANDS[command][1])


def _teams_parser(sub: Any) -> None:
    t = sub.add_parser("teams", help="Microsoft Teams: the app package to install")
    tsub = t.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    pk = tsub.add_parser("package", help="write the Teams app package (manifest.json + icons)")
    pk.add_argument("--app-id", required=True, help="the Azure Bot's Microsoft App ID (a GUID)")
    pk.add_argument("--name", default="leadbot", help="the app's name in Teams (leadbot)")
    pk.add_argument(
        "--domain", action="append", help="a host the app uses, e.g. bot.example.com (repeatable)"
    )
    pk.add_argument("--version", default="1.0.0", help="the package version (1.0.0)")
    pk.add_argument(
        "--website", help="your https site for the developer, privacy and terms links "
        "(default: https:// + the first --domain)",
    )  # fmt: skip
    pk.add_argument("--out", required=True, help="the zip to write, e.g. leadbot.zip")
    t.set_defaults(func=cmd_teams)


def _digest_parser(sub: Any) -> None:
    dg = sub.add_parser("digest", help="a manager digest on the terminal, its chart as a PNG")
    dg.add_argument(
        "--period", choices=("day", "week"), default="week", help="the span covered (week)"
    )
    dg.add_argument("--team", help="a team of the routing config (default: every lead)")
    dg.add_argument(
        "--print", action="store_true", help="print the digest (the default without --png)"
    )
    dg.add_argument("--png", metavar="FILE", help="write the chart to FILE")
    dg.add_argument(
        "--now",
        metavar="TIME",
        help="the digest as of TIME (ISO 8601), or 'latest': the newest lead activity (a demo "
        "database's last day); default: the clock",
    )
    dg.add_argument("--config", help="scoring model YAML (LEADBOT_CONFIG, default: bundled)")
    dg.set_defaults(func=cmd_digest)


def _model_parsers(sub: Any) -> None:
    m = sub.add_parser("model", help="scoring model versions: list, show, diff, activate")
    m.add_argument("--config", help="scoring model YAML (the version 1 on first use)")
    msub = m.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    msub.add_parser("list", help="every version: status, labels, AUC before → after")
    show = msub.add_parser("show", help="a version's model YAML")
    show.add_argument("version", type=int, help="the version number (see model list)")
    diff = msub.add_parser("diff", help="points per rule, version A → version B")
    diff.add_argument("a", type=int, help="the version to compare from")
    diff.add_argument("b", type=int, help="the version to compare to")
    act = msub.add_parser("activate", help="activate a version and rescore every lead")
    act.add_argument("version", type=int, help="the version number to activate")
    msub.add_parser("rollback", help="re-activate the previous version and rescore")
    imp = msub.add_parser("import", help="store a model YAML file as a new version")
    imp.add_argument("file", help="scoring model YAML (checked first: a bad file stores nothing)")
    imp.add_argument("--activate", action="store_true", help="make it active and rescore")
    ab = msub.add_parser("ab", help="A/B test a version on a share of the leads")
    absub = ab.add_subparsers(dest="ab", required=True, metavar="ab", help="start, stop or status")
    start = absub.add_parser("start", help="score a hashed share of the leads with VERSION")
    start.add_argument("version", type=int, help="the challenger version")
    start.add_argument("--share", type=float, default=0.5, help="the challenger's share (0.5)")
    absub.add_parser("stop", help="stop the test; its leads go back to the active version")
    absub.add_parser("status", help="the test and conversion per cohort")
    m.set_defaults(func=cmd_model)

    r = sub.add_parser("retrain", help="refit the active model on feedback; propose a version")
    r.add_argument("--config", help="scoring model YAML (the version 1 on first use)")
    r.add_argument("--json", action="store_true", help="one JSON object; exit 3: no version")
    r.set_defaults(func=cmd_retrain)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The command is the first word that is not an option (leadbot's own are -h only):
    # only its module is imported.
    named = next((word for word in argv if not word.startswith("-")), None)
    args = parser(real=(named,) if named in COMMANDS else ()).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Migrations say what they change at WARNING; their plugin chatter is noise at start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # bot.jobs.scheduler logs each job and its next run itself; APScheduler repeats it per job.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    quiet_chat_logs()  # no lead e-mail in the log, even at DEBUG
    from config.errors import ConfigError

    try:
        return int(args.func(args))
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return _fail("configuration error: nothing was started")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from storage.health import is_database_outage

        if not is_database_outage(exc):
            raise
        return _unreachable(exc)


def _unreachable(exc: Exception) -> int:
    """A database that cannot be reached is the admin's to fix, not a bug: one line naming
    the cause, and sysexits' "service unavailable" (69)."""
    from bot.admin.checks import reason

    return _fail(
        f"the database is unreachable ({reason(exc)}); nothing was changed. "
        "`leadbot doctor` checks DATABASE_URL and the connection",
        DATABASE_UNAVAILABLE,
    )


if __name__ == "__main__":
    sys.exit(main())
