"""The slipping-customer alert on a real database: queued with the segment change, exactly
once across recomputes and across a crash before the commit, routed on the RFM segment,
silenced by a snooze; its buttons store who did what."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.customer_alerts import (
    CustomerAction,
    apply_customer_action,
    queue_alerts,
    recompute_and_alert,
)
from bot.chat.messages import Actor
from bot.chat.routing import Router
from bot.jobs.rfm import Move, recompute_rfm
from bot.jobs.scheduler import JobContext, jobs_for, run_job
from bot.models.rescore import RescoreAlerts
from bot.outbox.messages import CustomerAtRisk, decode
from config.errors import ConfigError
from config.loader import LeadbotConfig, load_config
from storage.customers import CHANGES, CUSTOMERS
from storage.ingest import OUTBOX
from tests.bot.conftest import DAY, SMALL_MODEL, T0
from tests.bot.jobs.test_rfm import bought, ingest, shop_history

ROUTED = (
    SMALL_MODEL
    + """
routing:
  rules:
    - name: key accounts
      when: {rfm_segment: {one_of: [At risk, "Can't lose them"]}}
      channel: "#key-accounts"
"""
)
LATER = T0 + 150 * DAY


@pytest.fixture
def routed() -> LeadbotConfig:
    return load_config(text=ROUTED, name="routed.yaml")


def router(config: LeadbotConfig) -> Router:
    return Router(config.routing, slack_channel="#sales")


async def alerts(engine: AsyncEngine) -> list[tuple[str, CustomerAtRisk]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(OUTBOX.c.kind, OUTBOX.c.destination, OUTBOX.c.payload).where(
                    OUTBOX.c.kind == "customer_at_risk"
                )
            )
        ).all()
    out = []
    for kind, dest, payload in rows:
        message = decode(kind, payload)
        assert isinstance(message, CustomerAtRisk)
        out.append((dest, message))
    return out


async def drift(engine: AsyncEngine, config: LeadbotConfig) -> None:
    """The star is a Champion at T0; 150 days on the others kept buying and it did not."""
    await ingest(engine, config, *shop_history(T0), now=T0)
    await recompute_and_alert(engine, config.rfm, router=router(config), now=T0)
    fresh = [bought(f"c{i}", f"c{i}-new", LATER - i * DAY, 40.0) for i in range(9)]
    await ingest(engine, config, *fresh, now=LATER)


async def test_a_slipping_champion_is_alerted_once_with_why(
    engine: AsyncEngine, routed: LeadbotConfig
) -> None:
    await drift(engine, routed)
    assert await alerts(engine) == []  # first segments are no news
    first = await recompute_and_alert(engine, routed.rfm, router=router(routed), now=LATER)
    assert [m.lead_id for m in first.moves if m.alert] == ["star"]
    [(dest, message)] = await alerts(engine)
    assert dest == "slack:#key-accounts"  # routed on the segment it moved to
    assert (message.lead.id, message.source) == ("star", "Champions")
    assert message.to in ("At risk", "Can't lose them")
    assert message.text.endswith(
        "last order 151 days ago, usually every 10 days; 9,600 EUR in the last year"
    )
    for hours in (1, 2):  # later runs find no move: no second alert
        again = await recompute_and_alert(
            engine, routed.rfm, router=router(routed), now=LATER + hours * 3600
        )
        assert again.moves == []
    assert len(await alerts(engine)) == 1


class Crash(Exception):
    pass


async def test_a_crash_before_the_commit_loses_neither_change_nor_alert(
    engine: AsyncEngine, routed: LeadbotConfig
) -> None:
    await drift(engine, routed)

    def crash_after_queueing(conn: Connection, moves: Sequence[Move]) -> None:
        queue_alerts(conn, moves, rfm=routed.rfm, router=router(routed), now=LATER)
        raise Crash  # the process dies between the alert rows and the commit

    with pytest.raises(Crash):
        await recompute_rfm(engine, routed.rfm, now=LATER, on_moves=crash_after_queueing)
    assert await alerts(engine) == []
    async with engine.connect() as conn:
        star = (await conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.lead_id == "star"))).one()
        moved = (await conn.execute(select(CHANGES).where(CHANGES.c.lead_id == "star"))).all()
    assert star.segment == "Champions"
    assert len(moved) == 1

    await recompute_and_alert(engine, routed.rfm, router=router(routed), now=LATER + 60)
    await recompute_and_alert(engine, routed.rfm, router=router(routed), now=LATER + 120)
    assert [m.lead.id for _, m in await alerts(engine)] == ["star"]


async def test_a_snooze_silences_the_customer_for_the_configured_days(
    engine: AsyncEngine, routed: LeadbotConfig
) -> None:
    await ingest(engine, routed, *shop_history(T0), now=T0)
    await recompute_rfm(engine, routed.rfm, now=T0)
    riley = Actor("slack", "U0RILEY", "Riley")
    result = await apply_customer_action(
        engine, action=CustomerAction.SNOOZE, lead_id="star", actor=riley, rfm=routed.rfm,
        now=T0,
    )  # fmt: skip
    assert result.state["action"] == "snooze"
    assert result.state["by"] == "slack:U0RILEY"
    assert result.state["snoozed_until"] == pytest.approx(T0 + 14 * DAY)
    move = Move("star", "Champions", "At risk", "155", 40.0, 10.0, 9600.0, True)

    async def queued(now: float) -> int:
        async with engine.begin() as conn:
            return await conn.run_sync(
                lambda c: queue_alerts(c, [move], rfm=routed.rfm, router=router(routed), now=now)
            )

    assert await queued(T0 + 13 * DAY) == 0  # snoozed
    assert await queued(T0 + 15 * DAY) == 1  # the snooze is over


async def test_reached_out_and_not_a_concern_record_who_and_when(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await ingest(engine, config, *shop_history(T0), now=T0)
    riley = Actor("teams", "aad-riley", "Riley")
    for n, action in enumerate((CustomerAction.REACHED_OUT, CustomerAction.NOT_A_CONCERN)):
        result = await apply_customer_action(
            engine, action=action, lead_id="star", actor=riley, rfm=config.rfm, now=T0 + n
        )
        expected: dict[str, Any] = {
            "action": action.value, "by": "teams:aad-riley", "at": T0 + n, "snoozed_until": None
        }  # fmt: skip
        assert result.state == expected
    with pytest.raises(ValueError, match="no lead with id 'ghost'"):
        await apply_customer_action(
            engine, action=CustomerAction.SNOOZE, lead_id="ghost", actor=riley,
            rfm=config.rfm, now=T0,
        )  # fmt: skip


async def test_the_scheduled_rfm_job_queues_the_alert_and_wakes_the_outbox(
    engine: AsyncEngine, routed: LeadbotConfig
) -> None:
    await drift(engine, routed)
    [job] = [j for j in jobs_for(routed) if j.schedule.job == "rfm"]
    woken: list[bool] = []
    context = JobContext(
        alerts=RescoreAlerts(router=router(routed), policy=routed.alerts),
        on_queued=lambda: woken.append(True),
    )
    result = await run_job(job, engine=engine, config=routed, now=LATER, context=context)
    assert result.outcome.startswith("ok: ")
    assert "(1 to alert)" in result.outcome
    assert [d for d, _ in await alerts(engine)] == ["slack:#key-accounts"]
    assert woken == [True]


def test_snooze_days_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"rfm\.snooze_days"):
        load_config(text=SMALL_MODEL + "rfm: {snooze_days: 0}\n", name="bad.yaml")
