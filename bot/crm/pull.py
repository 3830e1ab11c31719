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
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.base import Connector, CrmRefused, CrmUnavailable
from bot.crm.outcomes import store_outcomes
from config.loader import LeadbotConfig
from config.settings import Settings
from scoring import Model
from storage import crm as repo

log = logging.getLogger(__name__)

CURSOR_KIND = "outcomes"  # one cursor per CRM: a connector reads its objects in one pull
FIRST_PULL_DAYS = 30.0
"""How far back the first pull (no cursor yet) reads, unless ``--since`` says."""


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
