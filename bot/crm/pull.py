"""The scheduled pull of CRM outcomes: records changed since the last pull that are won or
lost, stored as labels (``leadbot crm pull``, the ``crm_pull`` job). HubSpot's webhooks
deliver the same outcomes sooner; the pull catches what a webhook missed, and is the only
way for Salesforce.

The cursor moves only after the labels are committed: a crash in between reads the same
records again (their refs store them once), it never skips one. A CRM that fails leaves
its cursor where it was, and the next pull tries again.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.base import Connector, CrmRefused, CrmUnavailable
from bot.crm.outcomes import store_outcomes
from bot.models.live import ActiveModel
from config.loader import LeadbotConfig
from config.settings import Settings
from scoring import Model
from storage import crm as repo
from storage.engine import create_engine
from storage.migrate import upgrade

log = logging.getLogger(__name__)

CURSOR_KIND = "outcomes"  # one cursor per CRM: a connector reads its objects in one pull
FIRST_PULL_DAYS = 30.0
"""How far back the first pull (no cursor yet) reads, unless ``--since`` says."""
CREDENTIALS = {
    "hubspot": "HUBSPOT_ACCESS_TOKEN",
    "salesforce": "SALESFORCE_INSTANCE_URL with SALESFORCE_ACCESS_TOKEN, or "
    "SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN",
}


def crm_connectors(settings: Settings, config: LeadbotConfig) -> dict[str, Connector]:
    """The CRMs whose credentials are set, by name."""
    from bot.crm.hubspot import hubspot_from_settings  # the clients load only when used
    from bot.crm.salesforce import salesforce_from_settings

    found: dict[str, Connector | None] = {
        "hubspot": hubspot_from_settings(settings, config.crm),
        "salesforce": salesforce_from_settings(settings, config.crm),
    }
    return {name: connector for name, connector in found.items() if connector is not None}


@dataclass
class Pulled:
    """One CRM's pull: what it read, what was new, and where the cursor now is."""

    crm: str
    since: float
    outcomes: int = 0
    stored: int = 0
    unmatched: int = 0
    cursor: float | None = None  # None: the pull failed and the cursor did not move
    error: str | None = None


@dataclass
class PullReport:
    pulls: list[Pulled] = field(default_factory=list)

    @property
    def failed(self) -> list[Pulled]:
        return [p for p in self.pulls if p.error is not None]

    def summary(self) -> str:
        if not self.pulls:
            return "no CRM configured"
        return "; ".join(_line(p) for p in self.pulls)


def _line(pull: Pulled) -> str:
    if pull.error is not None:
        return f"{pull.crm}: failed, cursor kept ({pull.error})"
    return (f"{pull.crm}: {pull.outcomes} outcomes, {pull.stored} new labels, "
            f"{pull.unmatched} matching no lead")  # fmt: skip


async def pull_outcomes(
    engine: AsyncEngine,
    connectors: Mapping[str, Connector],
    *,
    model: Model,
    now: float,
    since: float | None = None,
) -> PullReport:
    """Pull each CRM in turn from its cursor (``since`` overrides it; without either,
    ``FIRST_PULL_DAYS`` back). One CRM failing does not stop the others."""
    report = PullReport()
    for name, connector in connectors.items():
        start = since if since is not None else await _cursor(engine, name, now)
        pulled = Pulled(crm=name, since=start)
        report.pulls.append(pulled)
        try:
            changes = await connector.changed_outcomes(start, now)
        except (CrmUnavailable, CrmRefused) as exc:
            pulled.error = str(exc)[:300]
            log.warning("CRM pull from %s failed; the cursor stays: %s", name, exc)
            continue
        stored = await store_outcomes(engine, changes.outcomes, model=model)
        # Only now, the labels committed: a crash before this line re-reads, never skips.
        async with engine.begin() as conn:
            await conn.run_sync(_set_cursor, name, changes.cursor, now)
        pulled.outcomes, pulled.stored = len(changes.outcomes), stored.stored
        pulled.unmatched, pulled.cursor = len(stored.unmatched), changes.cursor
    return report


async def _cursor(engine: AsyncEngine, crm: str, now: float) -> float:
    async with engine.connect() as conn:
        since = await conn.run_sync(lambda c: repo.cursor(c, crm=crm, kind=CURSOR_KIND))
    return since if since is not None else now - FIRST_PULL_DAYS * 86400


def _set_cursor(conn: Connection, crm: str, since: float, now: float) -> None:
    repo.set_cursor(conn, crm=crm, kind=CURSOR_KIND, since=since, now=now)


def parse_since(text: str) -> float:
    """``--since``: an ISO 8601 date or time (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since: not an ISO 8601 date or time: {text!r} (e.g. 2026-03-01 or "
            "2026-03-01T09:00:00+01:00)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def pull_command(
    settings: Settings, config: LeadbotConfig, *, crm: str | None, since: str | None, now: float
) -> int:
    """``leadbot crm pull``: 0 when every CRM pulled, 1 when one failed (its cursor kept),
    2 when there is nothing to pull from."""
    try:
        start = None if since is None else parse_since(since)
    except ValueError as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return 2
    connectors = crm_connectors(settings, config)
    if crm is not None:
        connectors = {name: c for name, c in connectors.items() if name == crm}
    if not connectors:
        names = [CREDENTIALS[crm]] if crm in CREDENTIALS else list(CREDENTIALS.values())
        sys.stderr.write(f"leadbot: no CRM to pull from: set {' or '.join(names)}\n")
        return 2
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        model = await ActiveModel(config.model).current(engine)
        report = await pull_outcomes(engine, connectors, model=model, now=now, since=start)
    finally:
        await engine.dispose()
    for pulled in report.pulls:
        out = sys.stderr if pulled.error else sys.stdout
        out.write(_line(pulled) + "\n")
    return 1 if report.failed else 0
