"""``/lead`` commands on a real database (both), with leads built by the real pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app
from bot.chat.actions import apply_action
from bot.chat.commands import SUBCOMMANDS, TEAM_PAGE, USAGE, Scope, run_command, usage
from bot.chat.failures import failure, sorry
from bot.chat.messages import Action, Actor, Outcome, Reply
from bot.ingest.pipeline import Pipeline
from bot.models.edges import BandEdges
from config.loader import LeadbotConfig, load_config
from scoring import LeadState, score
from scoring.engine import feature
from storage.ingest import LEADS
from storage.tables import Feedback
from tests.bot.conftest import DAY, IDEAL, SMALL_MODEL, T0, events, identify, page, track
from tests.bot.slack.test_slack_app import (
    command_body,
    eventually,
    post_slack,
)
from tests.bot.slack_helpers import slack_settings
from tests.fakes.slack_api import FakeSlack

NOW = T0 + 600
PAT = Actor("slack", "U1", "Pat")
KIM = Actor("slack", "U2", "Kim")
FEEDBACK_USAGE = "Usage: /lead feedback <email|id> <qualified|disqualified|won|lost> [reason…]"


@pytest.fixture
async def pipeline(engine: AsyncEngine, config: LeadbotConfig) -> AsyncIterator[Pipeline]:
    """u1 Dana Reyes (AcmeSoft, hottest), u2 Dan Brown, u3 another Dana Reyes, u4 Sam Lee
    (free e-mail, negative), and an anonymous visitor."""
    async with Pipeline(engine, config) as pipeline:
        calls = [
            identify("u1", T0, **IDEAL),
            page("u1", "/pricing", T0 + 60),
            track("u1", "Demo Requested", T0 + 120),
            identify("u2", T0, email="dan@globex.com", name="Dan Brown", title="Head of Ops"),
            identify("u3", T0, email="dana.r@initech.com", name="Dana Reyes"),
            identify("u4", T0, email="sam@gmail.com", name="Sam Lee", company="SamCo"),
            page(None, "/pricing", T0, anonymousId="visitor-1"),
        ]
        await pipeline.ingest(events(*calls), now=T0 + 300)
        yield pipeline


async def run(engine: AsyncEngine, config: LeadbotConfig, text: str, **kw: Any) -> Reply:
    kw.setdefault("actor", PAT)
    kw.setdefault("now", NOW)
    return await run_command(text, engine=engine, model=config.model, **kw)


async def _snapshot(engine: AsyncEngine) -> tuple[Any, ...]:
    """Everything a command may change: feedback rows and the leads' claim columns."""
    async with engine.connect() as conn:
        labels = (await conn.execute(select(func.count()).select_from(Feedback))).scalar_one()
        rows = await conn.execute(
            select(LEADS.c.id, LEADS.c.claimed_by, LEADS.c.snoozed_until).order_by(LEADS.c.id)
        )
        return labels, [tuple(row) for row in rows]


async def _feedback_rows(engine: AsyncEngine) -> list[Feedback]:
    async with engine.connect() as conn:
        table = Feedback.__table__  # type: ignore[attr-defined]
        rows = await conn.execute(select(table).order_by(table.c.id))
        return [Feedback(**row) for row in rows.mappings()]


# --- help and usage ----------------------------------------------------------------------


def test_usage_is_built_from_the_table_and_the_outcomes() -> None:
    lines = USAGE.splitlines()
    assert lines[0] == "Usage:"
    assert [line.split()[1] for line in lines[1:]] == [s.name for s in SUBCOMMANDS]
    assert "/lead feedback <email|id> <qualified|disqualified|won|lost> [reason…] — " in USAGE
    assert all(o.value in USAGE for o in Outcome)
    assert "/sales score <email|id|name> [public]" in usage("/sales")
    assert "/lead" not in usage("/sales")


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
async def test_help_and_empty_text_give_the_usage(
    engine: AsyncEngine, config: LeadbotConfig, text: str
) -> None:
    reply = await run(engine, config, text, command="/sales")
    assert (reply.text, reply.error, reply.private) == (usage("/sales"), False, True)


@pytest.mark.usefixtures("pipeline")
async def test_an_unknown_subcommand_gives_the_whole_usage(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    before = await _snapshot(engine)
    reply = await run(engine, config, "delete dana@acmesoft.com")
    assert reply.error
    assert reply.text.startswith(USAGE)
    assert "'delete'" in reply.text
    assert await _snapshot(engine) == before


# --- score -------------------------------------------------------------------------------


async def test_score_by_email_is_private_unless_public(
    engine: AsyncEngine, config: LeadbotConfig, pipeline: Pipeline
) -> None:
    reply = await run(engine, config, "score DANA@acmesoft.com")
    assert reply.lead is not None
    assert (reply.lead["id"], reply.private, reply.error) == ("u1", True, False)
    async with engine.connect() as conn:
        state = (await conn.execute(select(LEADS.c.state).where(LEADS.c.id == "u1"))).scalar_one()
    expected = score(LeadState.from_dict(state), config.model, NOW)
    assert reply.lead["score"] == pytest.approx(expected.total, abs=0.01)
    assert reply.text.startswith(f"Dana Reyes (AcmeSoft) — score {expected.total:.1f} hot")
    assert "\n" not in reply.text
    public = await run(engine, config, "score u1 public")
    assert public.lead is not None
    assert (public.lead["id"], public.private) == ("u1", False)


@pytest.mark.usefixtures("pipeline")
async def test_score_by_a_unique_name_or_company(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    by_name = await run(engine, config, "score dan brown PUBLIC")
    assert by_name.lead is not None
    assert (by_name.lead["id"], by_name.private) == ("u2", False)
    by_company = await run(engine, config, "score samco")
    assert by_company.lead is not None
    assert by_company.lead["id"] == "u4"


@pytest.mark.usefixtures("pipeline")
async def test_several_matches_give_a_pick_list(engine: AsyncEngine, config: LeadbotConfig) -> None:
    reply = await run(engine, config, "score Dana Reyes public")
    assert reply.lead is None
    assert reply.title == "Which one?"
    assert [lead["id"] for lead in reply.leads] == ["u1", "u3"]  # hotter first
    assert reply.private  # a question for the asker, even when the answer would be public
    assert "dana@acmesoft.com" in reply.text
    assert "dana.r@initech.com" in reply.text


@pytest.mark.usefixtures("pipeline")
async def test_no_match_gives_the_closest_leads(engine: AsyncEngine, config: LeadbotConfig) -> None:
    reply = await run(engine, config, "score dana@acme.io")
    assert reply.lead is None
    assert not reply.leads
    assert reply.text.startswith("No lead matches 'dana@acme.io'. Closest: ")
    for email in ("dana@acmesoft.com", "dana.r@initech.com"):
        assert email in reply.text
    assert "sam@gmail.com" not in reply.text
    nothing = await run(engine, config, "score zzzz")
    assert nothing.text == "No lead matches 'zzzz'. Try an e-mail, a lead id or part of a name."


@pytest.mark.usefixtures("pipeline")
async def test_score_without_a_lead_gives_its_usage(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    for text in ("score", "score   "):
        reply = await run(engine, config, text)
        assert reply.error
        assert reply.text.splitlines()[0] == "Usage: /lead score <email|id|name> [public]"


# --- feedback ----------------------------------------------------------------------------


async def test_feedback_stores_the_features_of_this_moment(
    engine: AsyncEngine, config: LeadbotConfig, pipeline: Pipeline
) -> None:
    reply = await run(engine, config, "feedback dana@acmesoft.com WON")
    assert reply == Reply(text="Recorded: won for Dana Reyes (AcmeSoft) — 1 label collected.")
    [row] = await _feedback_rows(engine)
    assert (row.lead_id, row.outcome, row.reason, row.by) == ("u1", "won", None, "slack:U1")
    assert row.at.timestamp() == NOW
    async with engine.connect() as conn:
        stored = (await conn.execute(select(LEADS.c.state).where(LEADS.c.id == "u1"))).scalar_one()
    state = LeadState.from_dict(stored)
    model = config.model
    result = score(state, model, NOW)
    assert row.features == {
        "model": "test-model",
        "at": NOW,
        "score": pytest.approx(result.total),
        "band": "hot",
        "fit": pytest.approx(result.fit),
        "intent": pytest.approx(result.intent),
        "rules": {rule.id: pytest.approx(feature(rule, state, NOW)) for rule in model.rules},
        "lead": row.features["lead"],  # the lead's snapshot: tests/bot/models/test_snapshots.py
    }
    assert set(row.features["rules"]) == {"leader", "software", "pricing", "demo", "free_mail"}
    assert row.features["lead"]["traits"]["email_domain"] == "acmesoft.com"
    assert row.features["rules"]["free_mail"] == 0.0
    assert 0 < row.features["rules"]["pricing"] < 1  # decayed since the visit
    # Later events change the lead, never the label's snapshot.
    await pipeline.ingest(events(page("u1", "/pricing/team", NOW + DAY)), now=NOW + DAY)
    [again] = await _feedback_rows(engine)
    assert again.features == row.features
    later = await run(engine, config, "score u1", now=NOW + DAY)
    assert later.lead is not None
    assert later.lead["score"] != pytest.approx(row.features["score"], abs=0.01)


@pytest.mark.usefixtures("pipeline")
async def test_the_label_count_grows_with_every_row(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await run(engine, config, "feedback u1 qualified")
    reply = await run(engine, config, "feedback dan@globex.com lost went quiet", actor=KIM)
    assert reply.text == "Recorded: lost (went quiet) for Dan Brown — 2 labels collected."
    assert [(r.lead_id, r.by) for r in await _feedback_rows(engine)] == [
        ("u1", "slack:U1"),
        ("u2", "slack:U2"),
    ]


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize(
    ("words", "stored"),
    [
        ("No-Budget until Q3", "no budget: until Q3"),
        ("competitor, chose Globex", "competitor: chose Globex"),
        ("SPAM", "spam"),
        ("moved abroad", "moved abroad"),
        ("", None),
    ],
)
async def test_disqualify_reasons_are_kept_canonical(
    engine: AsyncEngine, config: LeadbotConfig, words: str, stored: str | None
) -> None:
    reply = await run(engine, config, f"feedback u4 disqualified {words}")
    assert not reply.error
    [row] = await _feedback_rows(engine)
    assert (row.outcome, row.reason) == ("disqualified", stored)


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("feedback", None),
        ("feedback u1", None),
        ("feedback u1 maybe", "'maybe' is not an outcome: use one of qualified, disqualified"),
        ("feedback u1 won-ish big deal", "'won-ish' is not an outcome"),
    ],
)
async def test_malformed_feedback_gives_its_usage_and_changes_nothing(
    engine: AsyncEngine, config: LeadbotConfig, text: str, problem: str | None
) -> None:
    before = await _snapshot(engine)
    reply = await run(engine, config, text)
    assert reply.error
    assert reply.text.splitlines()[0] == FEEDBACK_USAGE
    if problem is None:
        assert reply.text == FEEDBACK_USAGE
    else:
        assert problem in reply.text
    assert await _snapshot(engine) == before


@pytest.mark.usefixtures("pipeline")
async def test_feedback_on_an_unknown_lead_suggests_and_stores_nothing(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    before = await _snapshot(engine)
    reply = await run(engine, config, "feedback dan@globex.co won")
    assert reply.error
    assert reply.text.startswith("No lead matches 'dan@globex.co'. Closest: Dan Brown")
    assert await _snapshot(engine) == before


# --- top ---------------------------------------------------------------------------------


def _ids(reply: Reply) -> list[str]:
    return [lead["id"] for lead in reply.leads]


@pytest.mark.usefixtures("pipeline")
async def test_top_lists_known_leads_nobody_acted_on(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    everyone = await run(engine, config, "top")
    assert _ids(everyone) == ["u1", "u2", "u3", "u4"]  # by score; the visitor is left out
    assert everyone.title == "Hottest leads nobody has acted on"
    assert "Dana Reyes" in everyone.text
    assert _ids(await run(engine, config, "top 2")) == ["u1", "u2"]
    model = config.model
    await apply_action(engine=engine, model=model, action=Action.CLAIM, lead_id="u1",
                       actor=KIM, now=NOW)  # fmt: skip
    await run(engine, config, "feedback u2 qualified")
    await apply_action(engine=engine, model=model, action=Action.SNOOZE, lead_id="u3",
                       actor=PAT, now=NOW, snooze_hours=2)  # fmt: skip
    assert _ids(await run(engine, config, "top all")) == ["u4"]
    assert _ids(await run(engine, config, "top", now=NOW + 2 * 3600)) == ["u3", "u4"]


@pytest.mark.usefixtures("pipeline")
async def test_top_mine_lists_my_claims_awaiting_feedback(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    for lead_id in ("u4", "u1", "u3"):
        await apply_action(engine=engine, model=config.model, action=Action.CLAIM,
                           lead_id=lead_id, actor=PAT, now=NOW)  # fmt: skip
    await apply_action(engine=engine, model=config.model, action=Action.CLAIM, lead_id="u2",
                       actor=KIM, now=NOW)  # fmt: skip
    await run(engine, config, "feedback u3 won")
    mine = await run(engine, config, "top mine")
    assert _ids(mine) == ["u1", "u4"]
    assert mine.title == "Your claimed leads awaiting feedback"
    assert _ids(await run(engine, config, "top mine 1")) == ["u1"]
    assert _ids(await run(engine, config, "top 1 MINE")) == ["u1"]
    assert _ids(await run(engine, config, "top mine", actor=KIM)) == ["u2"]
    nobody = await run(engine, config, "top mine", actor=Actor("slack", "U9"))
    assert (nobody.leads, nobody.text) == ((), "You have no claimed leads waiting.")


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("top 0", "n must be 1 to 50, got 0."),
        ("top 51", "n must be 1 to 50, got 51."),
        ("top many", "Unexpected 'many'."),
        ("top 3 4", "Unexpected '4'."),
        ("top mine all", "Unexpected 'all'."),
        ("top team mine", "Unexpected 'mine'."),
        ("top teams", "Unexpected 'teams'."),
        ("top -3", "Unexpected '-3'."),
    ],
)
async def test_malformed_top_gives_its_usage(
    engine: AsyncEngine, config: LeadbotConfig, text: str, problem: str
) -> None:
    before = await _snapshot(engine)
    reply = await run(engine, config, text)
    assert reply.error
    assert reply.text == f"Usage: /lead top [n] [mine|team|all]\n{problem}"
    assert not reply.leads
    assert await _snapshot(engine) == before


def test_the_top_usage_line_names_every_scope() -> None:
    top = next(line for line in USAGE.splitlines() if line.startswith("/lead top "))
    assert top.startswith("/lead top [n] [mine|team|all] — ")
    assert [s.value for s in Scope] == ["mine", "team", "all"]


# --- top team ----------------------------------------------------------------------------

TEAMS = """
routing:
  owner: {trait: crm_owner, users: {"jane@acme.example": U0OWNER1}}
  teams: {east: [U0EAST1, U0BOTH2], west: [U0BOTH2, U0WEST3]}
  rules:
    - name: dach
      when: {address.country: {one_of: [de, at]}}
      channel: "#sales-dach"
    - name: software
      when: {company.industry: {one_of: [software, saas]}}
      team: east
    - name: public sector
      when: {company.industry: {equals: government}}
      team: west
"""


EAST = Actor("slack", "U0EAST1", "Eve")
BOTH = Actor("slack", "U0BOTH2", "Bea")
WEST = Actor("slack", "U0WEST3", "Wes")


@pytest.fixture
def teams() -> LeadbotConfig:
    return load_config(text=SMALL_MODEL + TEAMS, name="teams.yaml")


def _vp(user: str, industry: str, **traits: Any) -> dict[str, Any]:
    company = {"name": f"{user} Inc", "industry": industry}
    return identify(user, T0, name=user.upper(), title="VP Sales", company=company, **traits)


@pytest.fixture
async def routed(engine: AsyncEngine, teams: LeadbotConfig) -> None:
    """s1 and s2 software (east; s1 hotter), s3 software with an owner, s4 software in
    Germany (a channel), g1 government (west), o1 neither (the default channel)."""
    async with Pipeline(engine, teams) as pipeline:
        calls = [
            _vp("s1", "Software"),
            page("s1", "/pricing", T0 + 60),
            identify("s2", T0, name="S2", company={"industry": "SaaS"}),
            _vp("s3", "Software", crm_owner="Jane@Acme.example"),
            _vp("s4", "Software", address={"country": "DE"}),
            _vp("g1", "Government"),
            _vp("o1", "Retail"),
        ]
        await pipeline.ingest(events(*calls), now=T0 + 300)


async def top(engine: AsyncEngine, config: LeadbotConfig, text: str, **kw: Any) -> Reply:
    kw.setdefault("actor", EAST)
    return await run(engine, config, text, routing=config.routing, **kw)


@pytest.mark.usefixtures("routed")
async def test_top_team_lists_the_open_leads_routed_to_my_teams(
    engine: AsyncEngine, teams: LeadbotConfig
) -> None:
    mine = await top(engine, teams, "top team")
    assert _ids(mine) == ["s1", "s2"]  # not the owner's, the channel's or the default's
    assert mine.title == "Hottest leads for your team"
    assert "S1" in mine.text
    in_both = await top(engine, teams, "top TEAM", actor=BOTH)
    assert _ids(in_both) == ["s1", "g1", "s2"]  # hottest first, across her two teams
    assert _ids(await top(engine, teams, "top 2 team", actor=BOTH)) == ["s1", "g1"]
    west = await top(engine, teams, "top team", actor=WEST)
    assert _ids(west) == ["g1"]


@pytest.mark.usefixtures("routed")
async def test_top_team_leaves_out_what_someone_acted_on(
    engine: AsyncEngine, teams: LeadbotConfig
) -> None:
    await apply_action(engine=engine, model=teams.model, action=Action.CLAIM, lead_id="s1",
                       actor=PAT, now=NOW)  # fmt: skip
    await top(engine, teams, "feedback g1 qualified", actor=BOTH)
    assert _ids(await top(engine, teams, "top team", actor=BOTH)) == ["s2"]
    await apply_action(engine=engine, model=teams.model, action=Action.SNOOZE, lead_id="s2",
                       actor=BOTH, now=NOW, snooze_hours=1)  # fmt: skip
    empty = await top(engine, teams, "top team", actor=BOTH)
    assert (empty.leads, empty.text) == ((), "No lead routed to your team is waiting.")
    later = await top(engine, teams, "top team", actor=BOTH, now=NOW + 3600)
    assert _ids(later) == ["s2"]


@pytest.mark.usefixtures("routed")
@pytest.mark.parametrize(
    "actor",
    [Actor("slack", "U9"), Actor("slack", "U0OWNER1"), Actor("teams", "U0EAST1")],
    ids=["no team", "an owner only", "not a Slack user"],
)
async def test_top_team_for_someone_in_no_team_says_what_to_try(
    engine: AsyncEngine, teams: LeadbotConfig, actor: Actor
) -> None:
    reply = await top(engine, teams, "top team", actor=actor, command="/sales")
    assert not reply.leads
    assert reply.text == (
        "You are in no team of the routing config; try `/sales top` or `/sales top mine`."
    )


@pytest.mark.usefixtures("pipeline")
async def test_top_team_without_routing_rules_says_so_too(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    reply = await run(engine, config, "top team")
    assert reply.text.startswith("You are in no team of the routing config")


BY_REGION = """
routing:
  teams: {east: [U0EAST1], west: [U0BOTH2]}
  rules:
    - {when: {region: {equals: east}}, team: east}
    - {when: {region: {equals: west}}, team: west}
"""


async def test_top_team_reads_past_a_page_of_other_teams_leads(engine: AsyncEngine) -> None:
    """More open leads of another team than one page, all tied on score with the asker's:
    the asker's come from the next page, in id order (the tie-break)."""
    config = load_config(text=SMALL_MODEL + BY_REGION, name="regions.yaml")
    west = [identify(f"g{i:03}", T0, title="VP", region="west") for i in range(TEAM_PAGE + 5)]
    east = [identify(f"z{i}", T0, title="VP", region="east") for i in range(2)]
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(*east, *west), now=T0 + 300)
    scores = {lead["score"] for lead in (await run(engine, config, "top 50")).leads}
    assert scores == {20}  # every lead ties: only the id orders them
    assert _ids(await top(engine, config, "top team")) == ["z0", "z1"]
    west_top = await top(engine, config, "top 50 team", actor=BOTH)
    assert _ids(west_top) == [f"g{i:03}" for i in range(50)]


# --- live band edges ---------------------------------------------------------------------

# warm from 10 points; hot from the median score, never below 15
MEDIAN_HOT = SMALL_MODEL.replace(
    "bands: {warm: 20, hot: 50}", "bands: {warm: 10, hot: {percentile: 50, min_points: 15}}"
)


def _median_hot_leads() -> list[dict[str, Any]]:
    """Scores 10, 20 (Ann), 30 (Bo) and 60: the median, 25, puts Ann in warm, not hot."""
    return [
        identify("d", T0, name="Dee", company={"industry": "Software"}),
        identify("a", T0, name="Ann", title="VP Sales"),
        identify("b", T0, name="Bo", title="VP Sales", company={"industry": "SaaS"}),
        identify("c", T0, name="Cy", title="Head of Sales", company={"industry": "SaaS"}),
        track("c", "Demo Requested", T0),
    ]


async def test_score_shows_the_band_the_live_edges_give(engine: AsyncEngine) -> None:
    config = load_config(text=MEDIAN_HOT, name="median.yaml")
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(*_median_hot_leads()), now=T0)
    edges = BandEdges(config.model.bands)
    assert edges.current.hot == 15  # no scores read yet: the floor, as default edges are
    assert (await run(engine, config, "score a")).text.startswith("Ann — score 20.0 hot")
    await edges.refresh(engine)
    assert edges.current.hot == pytest.approx(25)  # median of 10, 20, 30, 60
    ann = await run(engine, config, "score a", thresholds=edges.current)
    assert ann.lead is not None
    assert (ann.lead["band"], ann.text.startswith("Ann — score 20.0 warm")) == ("warm", True)
    bo = await run(engine, config, "score b", thresholds=edges.current)
    assert bo.lead is not None
    assert bo.lead["band"] == "hot"
    await run(engine, config, "feedback a qualified", thresholds=edges.current)
    [label] = await _feedback_rows(engine)
    assert label.features["band"] == "warm"  # the band the rep saw


@pytest.mark.parametrize("ingest", ["thread", "process"])
async def test_the_slack_server_answers_with_its_live_edges(
    engine: AsyncEngine, db_url: str, ingest: str
) -> None:
    """The server follows the score distribution itself, whether the writer shares its
    process or not: ``/lead score`` over Slack says warm where fixed floors say hot."""
    config = load_config(text=MEDIAN_HOT, name="median.yaml")
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(*_median_hot_leads()), now=T0)
    async with FakeSlack(token="xoxb-test") as slack:
        settings = slack_settings(db_url, slack, ingest=ingest)
        async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
            answers: list[str] = []
            for n in range(1, 100):  # the first refresh runs as the server starts
                assert (await post_slack(client, command_body(slack, "score a", n=n))).status == 200
                await eventually(lambda: len(slack.calls_to("response_url")) == n)  # noqa: B023 (awaited now)
                answers.append(orjson.dumps(slack.calls_to("response_url")[-1].body).decode())
                if "score 20.0 warm" in answers[-1]:
                    break
                await asyncio.sleep(0.02)
    assert "score 20.0 warm" in answers[-1], answers[-1]


def test_a_failure_is_worded_by_whose_it_is() -> None:
    """The rep's own mistake is shown as it is; another service's network error is an
    internal error with its traceback in the log, never "the database is unreachable"."""
    mistake = failure(ValueError("no lead matches 'x@y.z'"))
    assert (mistake.notice, mistake.level, mistake.traceback) == (
        "no lead matches 'x@y.z'", logging.INFO, False,
    )  # fmt: skip
    with pytest.raises(ConnectionRefusedError) as slack_down:
        raise ConnectionRefusedError(111, "Connect call failed ('203.0.113.9', 443)")
    network = failure(slack_down.value)
    assert (network.notice, network.level, network.traceback) == (
        "an internal error", logging.ERROR, True,
    )  # fmt: skip
    assert sorry(mistake.notice) == (
        "Sorry, that did not work: no lead matches 'x@y.z'. Nothing was changed."
    )
