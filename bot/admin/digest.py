"""``leadbot digest``: the same digest as in Slack, on the terminal and as a PNG, with no
Slack at all. Whoever runs it can read the database, so there is no access check: any team
or every lead."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.access import teams_of
from bot.digest.chart import render_chart
from bot.digest.content import Digest, Period, Scope, build_digest
from bot.digest.plain import render_text
from storage.digests import latest_activity
from storage.engine import create_engine
from storage.migrate import upgrade

USAGE_ERROR = 2
CANNOT_WRITE = 1


def _scope(config: Any, team: str | None) -> Scope | str:
    """The scope for ``--team`` (any case), or the problem with it."""
    if team is None:
        return Scope.everyone()
    teams = teams_of(config.routing)
    for name, members in teams.items():
        if name.lower() == team.lower():
            return Scope.team(name, members)
    known = ", ".join(sorted(teams)) or "none in the routing config"
    return f"--team: no team {team!r} (teams: {known})"


async def _moment(engine: AsyncEngine, given: str | None, now: float) -> float | str:
    """``--now``: an ISO 8601 time, or ``latest`` (the newest lead activity: a replayed
    demo or an imported history is digested as of its own last day); else the clock. A
    problem comes back as the message to print."""
    if given is None:
        return now
    if given.strip().lower() == "latest":
        async with engine.connect() as conn:
            newest = await conn.run_sync(latest_activity)
        return now if newest is None else newest.timestamp()
    try:
        moment = datetime.fromisoformat(given.strip().replace("Z", "+00:00"))
    except ValueError:
        return f"--now: expected an ISO 8601 time (2026-03-16T09:00:00Z) or latest, got {given!r}"
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _write_chart(digest: Digest, path: Path) -> None:
    path.write_bytes(render_chart(digest))


async def digest_command(settings: Any, config: Any, args: Any, *, now: float) -> int:
    """Print the digest (``--print``, the default without ``--png``) and write the chart to
    ``--png FILE``. Returns the exit code."""
    scope = _scope(config, args.team)
    if isinstance(scope, str):
        sys.stderr.write(f"leadbot: {scope}\n")
        return USAGE_ERROR
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)  # a fresh install gets an empty digest, not "no such table"
        moment = await _moment(engine, getattr(args, "now", None), now)
        if isinstance(moment, str):
            sys.stderr.write(f"leadbot: {moment}\n")
            return USAGE_ERROR
        now = moment
        digest = await build_digest(
            engine, config=config, period=Period.last(args.period, now), scope=scope, now=now
        )
    finally:
        await engine.dispose()
    if args.png:
        try:
            # Off the event loop: drawing is CPU work and the write blocks. The chart never
            # touches pyplot, so a worker thread may draw it.
            await asyncio.to_thread(_write_chart, digest, Path(args.png))
        except OSError as err:
            sys.stderr.write(f"leadbot: --png {args.png}: cannot write it: {err.strerror}\n")
            return CANNOT_WRITE
        sys.stderr.write(f"wrote {args.png}\n")
    if args.print or not args.png:
        sys.stdout.write(render_text(digest) + "\n")
    return 0
