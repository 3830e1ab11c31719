"""Scheduled digests: build the digest of a schedule and queue it, chart included, through
the outbox to the managers (or the schedule's ``to``).

Everything a chat adapter needs is computed here, at queue time, and stored in the
payload, so delivery is only transport (and a retry re-sends exactly the same digest):

``{"title", "text" (Slack's escaped fallback), "plain" (render_text: any platform can show
it), "blocks" (Slack Block Kit), "chart": {"png_base64", "filename", "title", "alt"},
"period": {"kind", "start", "end"}, "scope": {"kind", "name"}}``

The scheduler runs each slot once (its run keys); the dedupe key — schedule, period end to
the minute, destination — also keeps a repeated call within that minute from doubling it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.access import teams_of
from bot.digest.chart import render_chart
from bot.digest.content import Digest, Period, Scope, build_digest
from bot.digest.plain import render_text, scope_name, title
from bot.models.learning import manager_destinations
from bot.slack.digest_blocks import digest_blocks
from config.loader import LeadbotConfig
from config.schedules import Schedule
from storage import offloop
from storage.ingest import enqueue

KIND = "digest"
FILENAME = "digest.png"
SLACK = "slack:"


def schedule_scope(config: LeadbotConfig, team: str | None) -> Scope:
    """Every lead, or the named team of ``routing.teams`` (any case)."""
    if team is None:
        return Scope.everyone()
    teams = teams_of(config.routing)
    for name, members in teams.items():
        if name.lower() == team.lower():
            return Scope.team(name, members)
    known = ", ".join(sorted(teams)) or "none in the routing config"
    raise ValueError(f"schedule team: no team {team!r} (routing.teams: {known})")


def digest_destinations(
    config: LeadbotConfig, schedule: Schedule, managers: Sequence[str] | None
) -> tuple[str, ...]:
    """The schedule's ``to``, else ``managers`` (the caller's), else the managers' places
    from the config with ``slack.default_channel`` as the last resort."""
    if schedule.to:
        return (f"{SLACK}{schedule.to}",)
    if managers:
        return tuple(managers)
    return manager_destinations(config.learning, config.managers, config.slack.default_channel)


def schedule_key(schedule: Schedule) -> str:
    """A short stable name for a schedule, for dedupe keys."""
    raw = "|".join(str(v) for v in (schedule.cron, schedule.timezone, schedule.period,
                                    schedule.team, schedule.to))  # fmt: skip
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def digest_payload(digest: Digest, png: bytes) -> dict[str, Any]:
    """The stored digest: Slack's blocks and fallback, plain text, and the chart."""
    blocks, text = digest_blocks(digest)
    name = title(digest)
    return {
        "title": name,
        "text": text,
        "plain": render_text(digest),
        "blocks": blocks,
        "chart": {
            "png_base64": base64.b64encode(png).decode("ascii"),
            "filename": FILENAME,
            "title": name,
            "alt": f"Conversion by band and leads turning hot, {scope_name(digest.scope)}",
        },
        "period": {
            "kind": digest.period.name,
            "start": digest.period.start.isoformat(),
            "end": digest.period.end.isoformat(),
        },
        "scope": {"kind": str(digest.scope.kind), "name": digest.scope.name},
    }


async def queue_digest(
    engine: AsyncEngine,
    *,
    config: LeadbotConfig,
    schedule: Schedule,
    now: float,
    managers: Sequence[str] | None = None,
) -> int:
    """Build the schedule's digest for the period up to ``now`` (unix seconds) and queue one
    ``digest`` message per destination; returns the messages added.

    ``managers``: where digests without a ``to`` go — the bot passes
    ``manager_destinations(config.learning, config.managers, default_channel(settings,
    config))`` so that the console (no Slack) and ``LEADBOT_SLACK_CHANNEL`` are honoured;
    without it, the config's managers and ``slack.default_channel``."""
    period = Period.last(schedule.period or "week", now)
    scope = schedule_scope(config, schedule.team)
    digest = await build_digest(
        engine, config=config, period=period, scope=scope, now=now,
        sla_hours=config.sla.escalate_after_hours,
    )  # fmt: skip
    # Drawing is CPU work: off the event loop (the chart never touches pyplot's state).
    png = await asyncio.to_thread(render_chart, digest)
    payload = digest_payload(digest, png)
    end = int(now // 60 * 60)
    rows = [
        {
            "kind": KIND, "lead_id": None, "destination": dest,
            "dedupe_key": f"{KIND}:{schedule_key(schedule)}:{end}:{dest}"[:255],
            "payload": payload, "status": "pending", "attempts": 0,
            "available_at": now, "created_at": now,
        }
        for dest in digest_destinations(config, schedule, managers)
    ]  # fmt: skip

    def write(conn: Connection) -> int:
        return enqueue(conn, rows=rows)

    return await offloop.write(engine, write)
