"""``leadbot doctor``'s CRM line: each configured CRM answers with the credentials given, how
much of its API allowance is used, and how many scores still wait to be written."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from bot.admin.checks import FAIL, OK, WARN, Check, Context
from bot.crm.base import CrmRefused, CrmUnavailable
from bot.crm.pull import crm_connectors
from config.errors import ConfigError
from storage.crm import LINKS

NAME = "crm"
STALE = 15 * 60.0  # seconds: a score waiting longer means writes are failing


async def check_crm(ctx: Context) -> list[Check]:
    if ctx.settings is None or ctx.config is None:
        return []  # the settings or config line already said why
    try:
        connectors = crm_connectors(ctx.settings, ctx.config)
    except ConfigError as err:
        fix = "set the missing variable, or unset the others (README: Connect your CRM)"
        return [Check(NAME, FAIL, str(err), fix)]
    checks = []
    for name, connector in connectors.items():
        try:  # a read every pull does: proves the token, the scopes and the address
            await connector.changed_outcomes(ctx.now - 60, ctx.now)
        except CrmRefused as exc:
            checks.append(Check(f"{NAME} {name}", FAIL, str(exc), "see README: Connect your CRM"))
            continue
        except CrmUnavailable as exc:
            fix = "check the API URL and the network; writes wait meanwhile"
            checks.append(Check(f"{NAME} {name}", WARN, f"not reachable now: {exc}", fix))
            continue
        detail = "answers" + (f"; {usage}" if (usage := connector.usage()) else "")
        checks.append(await _backlog(ctx, name, detail))
    return checks


async def _backlog(ctx: Context, name: str, detail: str) -> Check:
    if ctx.engine is None or not ctx.schema_current:
        return Check(f"{NAME} {name}", OK, detail)
    query = select(func.count(), func.min(LINKS.c.dirty_at), func.max(LINKS.c.last_error)).where(
        LINKS.c.crm == name, LINKS.c.dirty_at.is_not(None)
    )
    async with ctx.engine.connect() as conn:
        waiting, oldest, error = (await conn.execute(query)).one()
    detail += f"; {waiting} score(s) waiting to be written"
    if not waiting or oldest is None:
        return Check(f"{NAME} {name}", OK, detail)
    age = (ctx.now or time.time()) - oldest.timestamp()
    if age > STALE:
        detail += f", the oldest for {age / 60:.0f} min" + (
            f" (last error: {error})" if error else ""
        )
        return Check(
            f"{NAME} {name}",
            WARN,
            detail,
            "is `leadbot serve` running? its log says why writes fail",
        )
    return Check(f"{NAME} {name}", OK, detail)
