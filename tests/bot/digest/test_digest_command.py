"""``/lead digest [day|week] [team]`` through ``run_command``, as the Slack adapter calls it,
and the reply rendered as Slack would get it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.commands import USAGE, run_command
from bot.chat.messages import Actor, Reply
from bot.digest.content import ScopeKind
from bot.slack.reply_blocks import reply_message
from config.loader import LeadbotConfig, load_config
from tests.bot.conftest import SMALL_MODEL
from tests.bot.digest.test_digest_cli import TEAMS
from tests.bot.digest.test_digest_content import NOW, seed

BOSS = Actor("slack", "U0BOSS1", "Bo")


@pytest.fixture
def managed() -> LeadbotConfig:
    text = SMALL_MODEL + TEAMS + "managers: [U0BOSS1, S0LEADS]\n"
    return load_config(text=text, name="teams.yaml")


async def in_groups(user_id: str, groups: Collection[str]) -> Collection[str]:
    """Slack's answer: U0GROUPIE is in the S0LEADS user group."""
    return [g for g in groups if (user_id, g) == ("U0GROUPIE", "S0LEADS")]


async def ask(
    engine: AsyncEngine, config: LeadbotConfig, text: str, actor: Actor, **kw: Any
) -> Reply:
    kw.setdefault("groups_of", in_groups)
    return await run_command(
        text, actor=actor, engine=engine, model=config.model, now=NOW, routing=config.routing,
        config=config, **kw,
    )  # fmt: skip


async def test_a_manager_gets_every_lead_or_a_team(
    sqlite_engine: AsyncEngine, managed: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    reply = await ask(sqlite_engine, managed, "digest", BOSS)
    assert reply.digest is not None
    assert (reply.digest.scope.kind, reply.digest.period.name, reply.private) == (
        ScopeKind.ALL, "week", True,
    )  # fmt: skip
    assert reply.text.startswith("Weekly digest — all leads\n")
    assert "⚠ hot leads converted less than warm ones" in reply.text
    team = await ask(sqlite_engine, managed, "digest DAY East", BOSS)
    assert team.digest is not None
    assert team.text.startswith("Daily digest — team east\n")
    assert [e.lead.id for e in team.digest.new_hot] == []  # h4 was routed to nobody
    by_group = await ask(sqlite_engine, managed, "digest west", Actor("slack", "U0GROUPIE"))
    assert by_group.text.startswith("Weekly digest — team west\n")


async def test_the_reply_carries_the_digest_blocks(
    sqlite_engine: AsyncEngine, managed: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    blocks, text = reply_message(await ask(sqlite_engine, managed, "digest", BOSS))
    assert blocks[0]["text"]["text"] == "Weekly digest — all leads"
    assert any(b.get("fields") for b in blocks)  # the conversion columns
    assert text.startswith("Weekly digest — all leads\n")


async def test_a_rep_gets_their_own_and_no_team(
    sqlite_engine: AsyncEngine, managed: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    bea = Actor("slack", "U0BOTH2", "Bea")
    mine = await ask(sqlite_engine, managed, "digest", bea)
    assert mine.digest is not None
    assert mine.text.startswith("Weekly digest — your leads\n")
    assert [e.lead.id for e in mine.digest.new_hot] == ["h2"]
    refused = await ask(sqlite_engine, managed, "digest week east", bea)
    assert refused.digest is None
    assert refused.text.startswith("Team digests are for sales managers.")


@pytest.mark.parametrize(
    ("actor", "groups_of"),
    [
        (Actor("slack", "U0STRANGER"), in_groups),
        (Actor("slack", "U0GROUPIE"), None),  # user groups cannot be asked: not a manager
        (Actor("teams", "U0BOSS1"), in_groups),
    ],
    ids=["stranger", "group unknown", "another platform"],
)
async def test_anyone_else_is_refused_politely(
    sqlite_engine: AsyncEngine, managed: LeadbotConfig, actor: Actor, groups_of: Any
) -> None:
    reply = await ask(sqlite_engine, managed, "digest", actor, groups_of=groups_of)
    assert reply.digest is None
    assert not reply.error
    assert "managers" in reply.text


async def test_without_the_config_digests_say_they_are_not_set_up(
    sqlite_engine: AsyncEngine, managed: LeadbotConfig
) -> None:
    reply = await run_command("digest", actor=BOSS, engine=sqlite_engine, model=managed.model,
                              now=NOW)  # fmt: skip
    assert reply.text.startswith("Digests are not set up here")


def test_help_lists_digest_and_says_where_the_chart_is() -> None:
    line = next(x for x in USAGE.splitlines() if x.startswith("/lead digest "))
    assert line.startswith("/lead digest [day|week] [team] — ")
    assert "chart comes with the scheduled digests" in line
