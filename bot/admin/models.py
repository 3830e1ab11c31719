"""``leadbot model …`` and ``leadbot retrain``: list, show, diff, activate and roll back model
versions, A/B tests, and a refit proposal, on the terminal.

The composition root (``bot/cli.py``) hands in the router, so a rescore's alerts go where
the running bot would send them, without this module knowing any chat platform."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.models.abtest import CohortStats, cohort_stats, start_ab, stop_ab
from bot.models.learning import describe, retrain_now, retrain_summary
from bot.models.rescore import RescoreAlerts
from bot.models.versions import (
    Rescore,
    RetrainResult,
    activate,
    ensure_active,
    metric_lines,
    model_of,
    rollback,
)
from config.errors import ConfigError
from config.loader import load_config
from config.writer import model_yaml
from scoring.model import Model
from storage import abtests, offloop
from storage import models as repo
from storage.abtests import AbTest
from storage.models import Status
from storage.tables import ModelVersion

NOTHING_STORED = 3  # `leadbot retrain --json`: no version to activate


def _auc(metrics: Mapping[str, Any], side: str) -> str:
    value = (metrics.get(side) or {}).get("roc_auc")
    return "—" if value is None else f"{value:.3f}"


def format_versions(versions: Sequence[Any]) -> str:
    """``leadbot model list``: version, status, created, labels, AUC before → after."""
    lines = [f"{'version':>7}  {'status':<9} {'created':<16} {'labels':>6}  AUC before → after"]
    for v in versions:
        created = v.created_at.strftime("%Y-%m-%d %H:%M")
        auc = f"{_auc(v.metrics, 'before')} → {_auc(v.metrics, 'after')}"
        lines.append(f"{v.id:>7}  {v.status:<9} {created:<16} {v.labels:>6}  {auc}")
    return "\n".join(lines) + "\n"


def format_diff(old: Model, new: Model, names: tuple[str, str]) -> str:
    """``leadbot model diff A B``: points per rule, old → new (rules in either model)."""
    ids = [r.id for r in old.rules] + [r.id for r in new.rules if old.find(r.id) is None]
    lines = [f"{'rule':<28} {names[0]:>8} → {names[1]}"]
    for rid in ids:
        a, b = old.find(rid), new.find(rid)
        pa = "—" if a is None else f"{a.points:g}"
        pb = "—" if b is None else f"{b.points:g}"
        mark = "" if pa == pb else "  *"
        lines.append(f"{rid:<28} {pa:>8} → {pb}{mark}")
    for label, x, y in (
        ("intercept", old.intercept, new.intercept),
        ("points_per_logodds", old.points_per_logodds, new.points_per_logodds),
    ):
        lines.append(f"{label:<28} {x:>8g} → {y:g}{'' if x == y else '  *'}")
    return "\n".join(lines) + "\n"


def format_retrain(result: RetrainResult) -> str:
    """``leadbot retrain``: the proposal's changes and metrics, or why nothing changed."""
    p = result.proposal
    if result.version_id is None:
        return f"no new version (refit of v{result.base_id} on {p.labels} labels): {p.reason}\n"
    lines = [f"proposed v{result.version_id} (refit of v{result.base_id} on {p.labels} labels)"]
    lines += [f"  {rid:<28} {a:g} → {b:g}" for rid, (a, b) in p.changes.items()]
    lines.append("held-out labels (the newest), current model → refit on the older ones:")
    lines += [f"  {line}" for line in metric_lines(p.metrics_before, p.metrics_after)]
    lines.append(f"activate with: leadbot model activate {result.version_id}")
    return "\n".join(lines) + "\n"


def rescore_alerts(config: Any, router: Router | None) -> RescoreAlerts:
    """The alerts policy of a rescore, routed as the running bot routes its alerts (the
    composition root's router; without one, the config's rules and the console)."""
    return RescoreAlerts(router=router or Router(config.routing), policy=config.alerts)


async def _engine(settings: Any) -> AsyncEngine:
    from storage.engine import create_engine
    from storage.migrate import upgrade

    engine = create_engine(settings.database_url)
    await upgrade(engine)  # a fresh install lists version 1, not "no such table"
    return engine


async def model_command(
    settings: Any, config: Any, args: Any, *, now: float, router: Router | None = None
) -> int:
    """``leadbot model list|show|diff|activate|rollback|ab``; prints to stdout."""
    engine = await _engine(settings)
    try:
        delta, alerts = config.alerts.history_min_delta, rescore_alerts(config, router)
        if args.action == "ab":
            return await ab_command(engine, config, args, now=now)
        if args.action == "import":
            return await import_command(engine, config, args, now=now, alerts=alerts)
        if args.action == "activate":
            done = await activate(
                engine=engine, version_id=args.version, by="cli", now=now,
                history_delta=delta, alerts=alerts,
            )  # fmt: skip
        elif args.action == "rollback":
            done = await rollback(
                engine=engine, by="cli", now=now, history_delta=delta, alerts=alerts
            )
        else:
            sys.stdout.write(await _read_command(engine, config.model, args, now))
            return 0
        sys.stdout.write(_activated(done))
        return 0
    finally:
        await engine.dispose()


def _activated(done: Rescore) -> str:
    held = (
        f" ({done.held} more turned hot past alerts.rescore_limit: see `leadbot top`)"
        if done.held
        else ""
    )
    return (
        f"v{done.version_id} active (was v{done.previous_id}): {done.leads} leads "
        f"rescored, {done.history} history rows, {done.alerts} alerts queued for leads "
        f"it turned hot{held}. A running `leadbot serve` scores with it from its next event.\n"
    )


def same_model(a: Model, b: Model) -> bool:
    """Whether two models score alike: the same YAML once written (names, rules, points,
    bands), whatever the comments or key order of the files they came from."""
    return model_yaml(a) == model_yaml(b)


def _import(
    conn: Connection, model: Model, source: str, *, configured: Model, now: float
) -> tuple[int, bool]:
    """(version, stored): the new proposed version holding ``model``, or the active one
    when it already holds the same model (then nothing is stored). On first use the
    configured model becomes v1, as for every other model command."""
    active_id, active = ensure_active(conn, config_model=configured, now=now)
    if same_model(active, model):
        return active_id, False
    vid = repo.add_version(
        conn,
        yaml=model_yaml(model, header=f"imported from {source}"),
        status=Status.PROPOSED,
        created_by="import",
        created_at=datetime.fromtimestamp(now, UTC),
        parent_id=active_id,
    )
    return vid, True


async def import_command(
    engine: AsyncEngine, config: Any, args: Any, *, now: float, alerts: RescoreAlerts
) -> int:
    """``leadbot model import FILE [--activate]``: the file's model (validated first: a bad
    file stores nothing) as a new version; with ``--activate`` active, every lead rescored."""
    try:
        model = load_config(args.file).model
        model_yaml(model)  # what the version will hold: a model the format cannot write fails
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"{exc}\nleadbot: {args.file}: not imported, nothing was stored\n")
        return 1
    source = str(args.file)
    vid, stored = await offloop.write(
        engine, lambda conn: _import(conn, model, source, configured=config.model, now=now)
    )
    if not stored:
        sys.stdout.write(f"{source} holds the active model v{vid}: nothing new was stored.\n")
        return 0
    sys.stdout.write(f"stored {source} as model v{vid} (proposed)\n")
    if not args.activate:
        sys.stdout.write(f"activate with: leadbot model activate {vid}\n")
        return 0
    done = await activate(
        engine=engine, version_id=vid, by="cli", now=now,
        history_delta=config.alerts.history_min_delta, alerts=alerts,
    )  # fmt: skip
    sys.stdout.write(_activated(done))
    return 0


async def _read_command(engine: AsyncEngine, config_model: Model, args: Any, now: float) -> str:
    def run(conn: Connection) -> str:
        ensure_active(conn, config_model=config_model, now=now)
        if args.action == "list":
            return format_versions(repo.list_versions(conn))
        wanted = [args.version] if args.action == "show" else [args.a, args.b]
        found: list[ModelVersion] = []
        for n in wanted:
            version = repo.get_version(conn, n)
            if version is None:
                raise LookupError(f"model version {n}: no such version")
            found.append(version)
        if args.action == "show":
            return str(found[0].yaml)
        return format_diff(model_of(found[0]), model_of(found[1]), (f"v{args.a}", f"v{args.b}"))

    async with engine.begin() as conn:
        return await conn.run_sync(run)


async def retrain_command(settings: Any, config: Any, *, now: float, as_json: bool = False) -> int:
    """``leadbot retrain [--json]`` with the config's labels and guardrails, as the bot's own
    refit (``retrain_now``: with ``auto_apply`` a better proposal is activated at once; no
    message is queued for the managers). Prints the proposal, or with ``as_json`` one JSON
    object (``retrain_summary``). Exit status: 0, and with ``--json`` 3 when no version was
    stored (``version`` null: not enough labels, or no change)."""
    engine = await _engine(settings)
    try:
        result, decision = await retrain_now(
            engine=engine, config=config, destinations=(), now=now, created_by="cli"
        )
    finally:
        await engine.dispose()
    if not as_json:
        sys.stdout.write(format_retrain(result))
        if decision is not None:
            sys.stdout.write(describe(decision) + "\n")
        return 0
    labels = {r.id: r.label for r in config.model.rules}
    summary = retrain_summary(result, decision, labels)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if summary["version"] is not None else NOTHING_STORED


def format_ab(test: AbTest | None, stats: list[CohortStats]) -> str:
    """``leadbot model ab``: the test and its cohorts."""
    if test is None:
        return "no A/B test has run; start one with: leadbot model ab start VERSION\n"
    state = "running" if test.running else f"stopped {test.stopped_at:%Y-%m-%d %H:%M}"
    lines = [
        f"A/B test {test.id}: v{test.challenger_id} (B, {test.share:.0%} of leads) against "
        f"v{test.champion_id} (A), started {test.started_at:%Y-%m-%d %H:%M} by "
        f"{test.started_by}, {state}",
        f"{'cohort':<7} {'version':>7} {'labels':>6} {'converted':>9} {'AUC':>6}",
    ]
    for s in stats:
        conv = "—" if math.isnan(s.conversion) else f"{s.conversion:.0%}"
        auc = "—" if math.isnan(s.roc_auc) else f"{s.roc_auc:.3f}"
        lines.append(f"{s.name:<7} {'v' + str(s.version_id):>7} {s.labels:>6} {conv:>9} {auc:>6}")
    return "\n".join(lines) + "\n"


async def ab_command(engine: AsyncEngine, config: Any, args: Any, *, now: float) -> int:
    """``leadbot model ab start VERSION [--share F] | stop | status``; prints to stdout."""
    delta = config.alerts.history_min_delta
    if args.ab == "start":
        test, leads = await start_ab(
            engine=engine, config_model=config.model, challenger_id=args.version,
            share=args.share, by="cli", now=now, history_delta=delta,
        )  # fmt: skip
        sys.stdout.write(
            f"A/B test {test} started: v{args.version} scores {args.share:.0%} of the leads "
            f"({leads} rescored now). Report: leadbot model ab status\n"
        )
        return 0
    if args.ab == "stop":
        stopped, leads = await stop_ab(engine=engine, by="cli", now=now, history_delta=delta)
        sys.stdout.write(f"A/B test {stopped.id} stopped; {leads} leads back on the champion.\n")
        return 0

    def read(conn: Connection) -> str:
        test = abtests.latest_test(conn)
        labels = config.learning.labels
        return format_ab(test, cohort_stats(conn, test, labels) if test else [])

    async with engine.connect() as conn:
        sys.stdout.write(await conn.run_sync(read))
    return 0
