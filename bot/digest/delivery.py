"""Scheduled digests: build the digest of a schedule and queue it, chart included, through
the outbox to the managers (or the schedule's ``to``).

The digest is read and its chart drawn here, at queue time, and stored as data
(``bot.outbox.messages.DigestMessage``: the ``Digest`` through ``bot.digest.codec``, and the
chart as base64 PNG), so a retry re-sends exactly the same digest; each platform renders
it at send time (Slack Block Kit, a Teams Adaptive Card, the console's plain text).

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
from bot.digest.plain import scope_name, title
from bot.models.learning import manager_destinations
from bot.outbox.messages import Chart, DigestMessage, Kind, outbox_row
from config.loader import LeadbotConfig
from config.schedules import Schedule
from storage import offloop
from storage.ingest import enqueue

KIND = Kind.DIGEST
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
    """The schedule's ``to`` (Slack or Teams destinations), else ``managers`` (the
    caller's), else the managers' places from the config with ``slack.default_channel`` as
    the last resort."""
    if schedule.to:
        return schedule.to
    if managers:
        return tuple(managers)
    return manager_destinations(config.learning, config.managers, config.slack.default_channel)


def schedule_key(schedule: Schedule) -> str:
    """A short stable name for a schedule, for dedupe keys."""
    raw = "|".join(str(v) for v in (schedule.cron, schedule.timezone, schedule.period,
                                    schedule.team, _to_key(schedule.to)))  # fmt: skip
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _to_key(to: tuple[str, ...]) -> str:
    """``to`` as keys were written when it could only be one Slack place (``#sales``, or
    None), so a schedule's key, and its dedupe keys, stay what they were."""
    if not to:
        return "None"
    if len(to) == 1 and to[0].startswith(SLACK):
        return to[0].removeprefix(SLACK)
    return ",".join(to)


def digest_message(digest: Digest, png: bytes) -> DigestMessage:
    """The stored digest: its data and its chart (each platform renders it at send time)."""
    return DigestMessage(
        digest=digest,
        chart=Chart(
            png_base64=base64.b64encode(png).decode("ascii"), filename=FILENAME,
            title=title(digest),
            alt=f"Conversion by band and leads turning hot, {scope_name(digest.scope)}",
        ),
    )  # fmt: skip


def digest_payload(digest: Digest, png: bytes) -> dict[str, Any]:
    """``digest_message`` as the outbox row stores it."""
    return digest_message(digest, png).to_payload()


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
        sla_hours=config.sla.escalate_after_hours, timezone=schedule.timezone,
    )  # fmt: skip
    # Drawing is CPU work: off the event loop (the chart never touches pyplot's state).
    png = await asyncio.to_thread(render_chart, digest)
    message = digest_message(digest, png)
    end = int(now // 60 * 60)
    rows = [
        outbox_row(message, destination=dest, now=now,
                   dedupe_key=f"{KIND}:{schedule_key(schedule)}:{end}:{dest}")
        for dest in digest_destinations(config, schedule, managers)
    ]  # fmt: skip

    def write(conn: Connection) -> int:
        return enqueue(conn, rows=rows)

    return await offloop.write(engine, write)
