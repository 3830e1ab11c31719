"""The read-only CLI commands: ``lead``, ``stats``, ``top`` and ``db``."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.admin.outbox import dead_line
from bot.chat.lookup import lead_report, render_report, suggestions
from bot.chat.plain import clean, render_top
from config.loader import LeadbotConfig
from config.settings import Settings
from storage import outbox
from storage.engine import create_engine, session_factory
from storage.leads import stats, top_leads
from storage.migrate import current_revision, head_revision, upgrade

NOT_FOUND = 1


def _json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)  # a fresh install answers "no leads", not "no such table"
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def show_lead(
    settings: Settings, config: LeadbotConfig, key: str, *, as_json: bool, now: float
) -> int:
    async with _session(settings) as session:
        report = await lead_report(session, key=key, model=config.model, now=now)
        if report is None:
            close = await suggestions(session, key=key)
            hint = ", ".join(clean(lead.email or lead.id) for lead in close)
            sys.stderr.write(
                f"leadbot: no lead '{clean(key)}'" + (f"; closest: {hint}\n" if hint else "\n")
            )
            return NOT_FOUND
    if as_json:
        _json(report)
    else:
        sys.stdout.write(render_report(report) + "\n")
    return 0


async def show_stats(settings: Settings, *, as_json: bool) -> int:
    async with _session(settings) as session:
        counts = await stats(session)
        conn = await session.connection()
        messages, dead = await outbox.counts(conn), await outbox.dead_summary(conn)
    by_status = {status: messages.get(status, 0) for status in outbox.STATUSES}
    oldest = dead.oldest.isoformat() if dead.oldest else None
    counts["outbox"] = {**by_status, "oldest_dead": oldest}
    if as_json:
        _json(counts)
    else:
        bands = counts["bands"]
        sys.stdout.write(
            f"{counts['leads']} leads ({counts['anonymous']} anonymous visitors), "
            f"{counts['events']} events; hot {bands['hot']}, warm {bands['warm']}, "
            f"cold {bands['cold']}\n"
            f"outbox: {by_status['pending']} pending, {by_status['sending']} sending, "
            f"{by_status['sent']} sent, {by_status['dead']} dead\n"
        )
        if dead.count:
            sys.stdout.write(dead_line(dead.count, dead.oldest) + "\n")
    return 0


def lead_summary(lead: Any) -> dict[str, Any]:
    return {
        "id": lead.id, "email": lead.email, "name": lead.name, "company": lead.company,
        "score": round(lead.score, 2), "band": lead.band, "grade": lead.grade,
        "engagement": lead.engagement, "probability": round(lead.probability, 4),
    }  # fmt: skip


async def show_top(settings: Settings, n: int, *, band: str | None, as_json: bool) -> int:
    async with _session(settings) as session:
        leads = [lead_summary(lead) for lead in await top_leads(session, limit=n, band=band)]
    if as_json:
        _json(leads)
    else:
        sys.stdout.write(render_top(leads) + "\n")
    return 0


async def db_command(settings: Settings, action: str) -> int:
    engine = create_engine(settings.database_url)
    try:
        if action == "upgrade":
            await upgrade(engine)
        current = await current_revision(engine)
    finally:
        await engine.dispose()
    sys.stdout.write(f"database at revision {current} (latest: {head_revision()})\n")
    return 0
