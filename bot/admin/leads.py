"""The read-only CLI commands: ``lead``, ``stats``, ``top`` and ``db``.

``lead``, ``top`` and ``stats`` all read scores *now*: each lead's stored feature state is
scored at the moment of the command (decay included) with the active model version, so a
lead ``top`` ranks hot is hot in ``lead`` and counted hot in ``stats``. The stored score
(as of the lead's last event or rescore) is never shown: a stale hot lead is not hot.
``top`` and ``stats`` score only the leads whose stored score could still place them
(``bot.chat.ranked``), so they answer in milliseconds at a million leads.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.admin.outbox import dead_line
from bot.chat.lookup import closest, lead_report, named_lead, render_report
from bot.chat.plain import clean, render_top
from bot.chat.ranked import band_counts_now, edges_now, top_now
from bot.models.versions import active_model
from config.loader import LeadbotConfig
from config.settings import Settings
from scoring import LeadState, Model, Score, score
from scoring.bands import Thresholds
from storage import outbox
from storage.engine import create_engine, session_factory
from storage.leads import counts as lead_counts
from storage.leads import leads_by_ids
from storage.migrate import current_revision, head_revision, upgrade

NOT_FOUND = 1
USAGE_ERROR = 2


class NoDatabase(Exception):
    """``--db`` names a file that does not exist (never created: a typo must not look empty)."""


def with_db(settings: Settings, db: str | None) -> Settings:
    """The settings reading the SQLite file ``db`` instead of DATABASE_URL, when given."""
    if db is None:
        return settings
    path = Path(db)
    if not path.is_file():
        raise NoDatabase(f"--db {db}: no such database file (it is never created)")
    url = f"sqlite+aiosqlite:///{path.resolve()}"
    return settings.model_copy(update={"database_url": url})


def _json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@asynccontextmanager
async def _session(
    settings: Settings, configured: Model
) -> AsyncIterator[tuple[AsyncSession, Model]]:
    """A session and the model to score with: the active stored version, if any, else the
    configured one (as ``serve`` does)."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)  # a fresh install answers "no leads", not "no such table"
        active = await active_model(engine)
        async with session_factory(engine)() as session:
            yield session, configured if active is None else active[1]
    finally:
        await engine.dispose()


def _not_found(key: str, close: list[Any]) -> int:
    hint = ", ".join(clean(lead.email or lead.id) for lead in close)
    sys.stderr.write(
        f"leadbot: no lead '{clean(key)}'" + (f"; closest: {hint}\n" if hint else "\n")
    )
    return NOT_FOUND


async def show_lead(
    settings: Settings, config: LeadbotConfig, key: str, *, as_json: bool, now: float
) -> int:
    """One lead scored at ``now``; ``key`` is an id, userId, e-mail or a name."""
    async with _session(settings, config.model) as (session, model):
        edges = await edges_now(session, model=model)
        report = await lead_report(session, key=key, model=model, now=now, thresholds=edges)
        if report is None and (named := await named_lead(session, key=key)) is not None:
            report = await lead_report(
                session, key=named.id, model=model, now=now, thresholds=edges
            )
        if report is None:
            return _not_found(key, await closest(session, key=key))
    if as_json:
        _json(report)
    else:
        sys.stdout.write(render_report(report) + "\n")
    return 0


async def show_stats(
    settings: Settings, config: LeadbotConfig, *, as_json: bool, now: float
) -> int:
    """Counts, with bands counted from the scores at ``now`` (as ``top`` and ``lead`` read)."""
    async with _session(settings, config.model) as (session, model):
        counts: dict[str, Any] = dict(await lead_counts(session))
        edges = await edges_now(session, model=model)
        counts["bands"] = await band_counts_now(session, model=model, now=now, thresholds=edges)
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


def lead_summary(lead: Any, now: Score | None = None) -> dict[str, Any]:
    """A ranked list's row; with ``now``, the score read now instead of the stored one."""
    s = now or lead
    return {
        "id": lead.id, "email": lead.email, "name": lead.name, "company": lead.company,
        "score": round(now.total if now else lead.score, 2), "band": str(s.band),
        "grade": s.grade, "engagement": s.engagement, "probability": round(s.probability, 4),
    }  # fmt: skip


def summaries_now(
    leads: list[Any], *, model: Model, now: float, thresholds: Thresholds | None = None
) -> list[dict[str, Any]]:
    """``lead_summary`` of each lead with its score at ``now`` (as a look-up reads it),
    highest first: chat's ``/lead top`` lists what ``/lead score`` would say."""
    rows = [
        lead_summary(
            lead, score(LeadState.from_dict(lead.state), model, now, thresholds, explain=False)
        )
        for lead in leads
    ]
    return sorted(rows, key=lambda row: (-row["score"], row["id"]))


async def show_top(
    settings: Settings, config: LeadbotConfig, n: int, *, band: str | None, as_json: bool,
    now: float,
) -> int:  # fmt: skip
    """The ``n`` highest scores at ``now`` (of ``band`` at ``now``, when given)."""
    if n < 1:
        sys.stderr.write(f"leadbot: n must be at least 1, got {n}\n")
        return USAGE_ERROR
    async with _session(settings, config.model) as (session, model):
        edges = await edges_now(session, model=model)
        chosen = await top_now(session, model=model, now=now, n=n, band=band, thresholds=edges)
        rows = {lead.id: lead for lead in await leads_by_ids(session, ids=[i for i, _ in chosen])}
        leads = [lead_summary(rows[i], result) for i, result in chosen if i in rows]
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


def read_command(
    db: str | None, loaded: tuple[Settings, LeadbotConfig], show: Any, *args: Any, **kw: Any
) -> int:
    """Run ``show`` (``show_lead``, ``show_top``, ``show_stats``) on the database ``--db``
    names (else DATABASE_URL), scoring now; a missing ``--db`` file is an error, not created."""
    settings, config = loaded
    try:
        settings = with_db(settings, db)
    except NoDatabase as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return USAGE_ERROR
    return asyncio.run(show(settings, config, *args, **kw, now=time.time()))
