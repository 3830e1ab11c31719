"""``leadbot digest``: the same digest as in Slack, on the terminal and as a PNG, with no
Slack at all. Whoever runs it can read the database, so there is no access check: any team
or every lead."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.digest.access import teams_of
from bot.digest.chart import render_chart
from bot.digest.content import Digest, Period, Scope, build_digest
from bot.digest.plain import render_text
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
