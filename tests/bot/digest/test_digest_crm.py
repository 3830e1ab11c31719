"""Digests show reps' labels and CRM outcomes apart: conversion by band and the ranking
check (AUC) of each, in the text, Slack's blocks and Teams' card; without CRM outcomes the
digest is as before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.chart import render_chart
from bot.digest.codec import digest_from_json, digest_to_json
from bot.digest.content import Digest
from bot.digest.delivery import digest_payload
from bot.digest.plain import SOURCES_TITLE, render_text
from bot.outbox.messages import DigestMessage
from bot.slack.digest_blocks import digest_blocks
from bot.teams.digest_card import digest_message_card
from config.loader import LeadbotConfig
from tests.bot.conftest import DAY, T0
from tests.bot.digest.test_digest_content import FEEDBACK, at, digest_of, seed, seed_rows
from tests.bot.teams.test_teams_cards import _body, _validate

REPS = (
    "  Rep labels: 16 labels · AUC 0.60 · hot 17 % (1 of 6) · warm 40 % (2 of 5) · "
    "cold 0 % (0 of 5)"
)
HUBSPOT = (
    "  HubSpot outcomes: 4 labels · AUC 1.00 · hot 100 % (2 of 2) · warm 0 % (0 of 1) · "
    "cold 0 % (0 of 1)"
)


def _crm_rows(conn: Connection) -> None:
    """HubSpot closed two of the hot leads and lost a warm and a cold one."""
    seed_rows(conn)
    for lead, outcome, band, score in (
        ("lh1", "won", "hot", 45.0), ("lh2", "won", "hot", 45.0),
        ("lw2", "lost", "warm", 42.0), ("lc0", "lost", "cold", 30.0),
    ):  # fmt: skip
        features = {"model": "test-model", "band": band, "fit": score, "score": score}
        conn.execute(
            insert(FEEDBACK).values(
                lead_id=lead, outcome=outcome, by="crm:hubspot", at=at(T0 + 4 * DAY),
                features=features, source="crm:hubspot", ref=f"{lead}:{outcome}",
            )
        )  # fmt: skip


async def _with_crm(engine: AsyncEngine, config: LeadbotConfig) -> Digest:
    async with engine.begin() as conn:
        await conn.run_sync(_crm_rows)
    return await digest_of(engine, config)


def _slack_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str(b.get("text", {}).get("text", "")) for b in blocks)


async def test_reps_and_crm_are_checked_apart(engine: AsyncEngine, config: LeadbotConfig) -> None:
    digest = await _with_crm(engine, config)
    rep, hubspot = digest.by_source
    assert (rep.source, rep.labels, hubspot.source, hubspot.labels) == ("rep", 16, "crm:hubspot", 4)
    assert [(c.group, c.converted, c.labels) for c in hubspot.by_band] == [
        ("hot", 2, 2),
        ("warm", 0, 1),
        ("cold", 0, 1),
    ]
    assert rep.auc is not None
    assert round(rep.auc, 4) == round(23.5 / 39, 4)  # ties at 42 and 45 count half
    assert hubspot.auc == 1.0
    assert digest_from_json(digest_to_json(digest)).by_source == digest.by_source  # stored


async def test_text_slack_and_teams_show_both_sources(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    digest = await _with_crm(sqlite_engine, config)
    lines = render_text(digest).splitlines()
    at_title = lines.index(SOURCES_TITLE)
    assert lines[at_title + 1 : at_title + 3] == [REPS, HUBSPOT]

    blocks, _ = digest_blocks(digest)
    slack = _slack_text(blocks)
    assert f"*{SOURCES_TITLE}*" in slack
    assert f"*Rep labels*: {REPS.split(': ', 1)[1]}" in slack
    assert f"*HubSpot outcomes*: {HUBSPOT.split(': ', 1)[1]}" in slack

    # Teams renders the stored digest, as the outbox sends it.
    payload = digest_payload(digest, render_chart(digest))
    card = digest_message_card(DigestMessage.from_payload(payload))
    _validate(card)
    body = _body(card).replace("\\", "")  # Teams' markdown escapes, read as shown
    assert SOURCES_TITLE in body
    assert REPS.split(": ", 1)[1] in body
    assert HUBSPOT.split(": ", 1)[1] in body


async def test_without_crm_outcomes_the_digest_is_as_before(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    assert digest.by_source == ()
    assert "by_source" not in digest_to_json(digest)
    assert SOURCES_TITLE not in render_text(digest)
    assert "CRM" not in _slack_text(digest_blocks(digest)[0])
    card = digest_message_card(DigestMessage.from_payload(digest_payload(digest, b"")))
    assert "CRM" not in _body(card)
