"""``/lead`` commands, chat-agnostic: text in, a neutral ``Reply`` out.

The grammar is one table (``SUBCOMMANDS``); usage lines and error messages are built from
it and from the ``Outcome`` enum, never retyped. A malformed command changes nothing and
answers with the usage line of the subcommand concerned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.admin.leads import lead_summary, summaries_now
from bot.chat.actions import at, canonical_reason, judge, lead_label
from bot.chat.customer_reply import customer_reply
from bot.chat.lookup import fragments, lead_report, suggestions
from bot.chat.messages import Actor, Outcome, Reply
from bot.chat.plain import clean, render_top
from bot.chat.routing import route_of
from bot.digest.access import Refusal, digest_scope, teams_of
from bot.digest.content import PERIODS, Period, build_digest
from bot.digest.plain import render_text
from config.loader import LeadbotConfig
from config.rfm import Rfm
from config.routing import Routing
from scoring import LeadState, Model
from scoring.bands import Thresholds
from storage.claims import claimed_leads, open_leads
from storage.engine import session_factory
from storage.feedback import count_labels
from storage.leads import find_lead
from storage.tables import Lead

TOP_DEFAULT = 10
TOP_MAX = 50
CLOSEST = 5
TEAM_PAGE = 200  # open leads read per query while looking for a team's
OUTCOMES = "|".join(o.value for o in Outcome)
DIGEST_PERIODS = "|".join(PERIODS)
DIGEST_DEFAULT = "week"

# The user groups (``S…``) a Slack user belongs to, among those asked about; the Slack
# adapter answers it from ``usergroups.users.list``.
GroupsOf = Callable[[str, Collection[str]], Awaitable[Collection[str]]]


class Scope(StrEnum):
    """Whose leads ``top`` lists."""

    MINE = "mine"
    TEAM = "team"
    ALL = "all"


SCOPES = "|".join(s.value for s in Scope)


# Platforms whose answers in a channel cannot be private: ``public`` means nothing there.
NO_PRIVATE_REPLIES = frozenset({"teams"})


@dataclass(frozen=True, slots=True)
class Subcommand:
    name: str
    args: str
    help: str
    # The same where every answer is public (``NO_PRIVATE_REPLIES``), when it differs.
    public_args: str | None = None
    public_help: str | None = None

    def for_platform(self, *, private_replies: bool) -> Subcommand:
        if private_replies or self.public_args is None:
            return self
        return Subcommand(self.name, self.public_args, self.public_help or self.help)


SUBCOMMANDS = (
    Subcommand(
        "score",
        "<email|id|name> [public]",
        "a lead's score and why (add public to post it)",
        public_args="<email|id|name>",
        public_help="a lead's score and why",
    ),
    Subcommand("feedback", f"<email|id> <{OUTCOMES}> [reason…]", "record your judgement of a lead"),
    Subcommand(
        "top",
        f"[n] [{SCOPES}]",
        f"the {TOP_DEFAULT} (at most {TOP_MAX}) hottest leads nobody has acted on; "
        "mine: your claimed leads awaiting feedback; team: those routed to your team",
    ),
    Subcommand(
        "digest",
        f"[{DIGEST_PERIODS}] [team]",
        f"the digest of the last day or {DIGEST_DEFAULT} (the default): managers get every "
        "lead's or a team's, reps their own; the chart comes with the scheduled digests",
    ),
    Subcommand(
        "customer", "<email|id>", "a customer's RFM scores, segment, last orders and history"
    ),
    Subcommand("help", "", "this list"),
)
_BY_NAME = {sub.name: sub for sub in SUBCOMMANDS}


def _line(command: str, sub: Subcommand) -> str:
    return f"{command} {sub.name} {sub.args}".rstrip()


def subcommands(*, private_replies: bool = True) -> tuple[Subcommand, ...]:
    """The grammar as a platform offers it (no ``public`` where every answer is public)."""
    return tuple(s.for_platform(private_replies=private_replies) for s in SUBCOMMANDS)


def usage(command: str = "/lead", *, private_replies: bool = True) -> str:
    """Every subcommand's usage line and what it does."""
    lines = (
        f"{_line(command, s)} — {s.help}" for s in subcommands(private_replies=private_replies)
    )
    return "Usage:\n" + "\n".join(lines)


USAGE: str = usage()


@dataclass(frozen=True, slots=True)
class _Context:
    session: AsyncSession
    actor: Actor
    model: Model
    now: float
    command: str
    routing: Routing = field(default_factory=Routing)
    thresholds: Thresholds | None = None
    config: LeadbotConfig | None = None
    groups_of: GroupsOf | None = None
    engine: AsyncEngine | None = None

    def usage_error(self, name: str, problem: str = "") -> Reply:
        text = f"Usage: {_line(self.command, _BY_NAME[name])}"
        return Reply(text=text + (f"\n{problem}" if problem else ""), error=True)


async def run_command(
    text: str,
    *,
    actor: Actor,
    engine: AsyncEngine,
    model: Model,
    now: float,
    command: str = "/lead",
    routing: Routing | None = None,
    thresholds: Thresholds | None = None,
    config: LeadbotConfig | None = None,
    groups_of: GroupsOf | None = None,
) -> Reply:
    """Answer the text typed after the command name (``score dana@acmesoft.com``).

    ``routing`` decides ``top team`` (who is in which team, which leads go to it);
    ``thresholds`` are the live band edges (percentile bands), the model's fixed or floor
    edges when None. ``digest`` needs ``config`` (its ``managers`` and teams) and, when
    managers are listed by user group, ``groups_of``."""
    words = text.split()
    name = words[0].lower() if words else "help"
    private = actor.platform not in NO_PRIVATE_REPLIES
    if name == "help":
        return Reply(text=usage(command, private_replies=private))
    handler = _HANDLERS.get(name)
    if handler is None:
        problem = f"Unknown subcommand {clean(words[0])!r}."
        return Reply(text=f"{usage(command, private_replies=private)}\n{problem}", error=True)
    async with session_factory(engine)() as session:
        context = _Context(
            session, actor, model, now, command, routing or Routing(), thresholds, config,
            groups_of, engine,
        )  # fmt: skip
        return await handler(context, words[1:])


# --- score -------------------------------------------------------------------------------


def _summary(report: dict[str, Any]) -> str:
    who = report["name"] or report["email"] or report["id"]
    company = f" ({report['company']})" if report.get("company") else ""
    return clean(
        f"{who}{company} — score {report['score']:.1f} {report['band']}, "
        f"grade {report['grade']} · engagement {report['engagement']}/4, "
        f"p={report['probability']:.2f}"
    )


async def _closest(session: AsyncSession, key: str) -> list[Lead]:
    """Leads matching the key, then leads matching its fragments, best first."""
    found = {lead.id: lead for lead in await suggestions(session, key=key)}
    for piece in fragments(key):  # the key itself was searched just above
        for lead in await suggestions(session, key=piece):
            found.setdefault(lead.id, lead)
    return list(found.values())[:CLOSEST]  # matches of the whole key first


def _listed(lead: Lead) -> str:
    email = f" <{lead.email}>" if lead.email and lead.email != lead.name else ""
    return f"{lead_label(lead)}{email}"


async def _not_found(ctx: _Context, key: str) -> Reply:
    close = await _closest(ctx.session, key)
    text = f"No lead matches {clean(key)!r}."
    if close:
        text += " Closest: " + "; ".join(clean(_listed(lead)) for lead in close) + "."
    else:
        text += " Try an e-mail, a lead id or part of a name."
    return Reply(text=text, error=True)


def _one_named(matches: Sequence[Lead], key: str) -> Lead | None:
    """The single match, or the single one whose name is exactly ``key`` (any case)."""
    if len(matches) == 1:
        return matches[0]
    exact = [lead for lead in matches if (lead.name or "").lower() == key.lower()]
    return exact[0] if len(exact) == 1 else None


async def _report(ctx: _Context, key: str, *, public: bool) -> Reply | None:
    report = await lead_report(
        ctx.session, key=key, model=ctx.model, now=ctx.now, thresholds=ctx.thresholds
    )
    if report is None:
        return None
    return Reply(text=_summary(report), lead=report, private=not public)


async def _score(ctx: _Context, args: list[str]) -> Reply:
    public = len(args) > 1 and args[-1].lower() == "public"
    key = " ".join(args[:-1] if public else args)
    if not key:
        return ctx.usage_error("score", "Name a lead by e-mail, id or name.")
    found = await _report(ctx, key, public=public)
    if found is not None:
        return found
    matches = await suggestions(ctx.session, key=key)
    chosen = _one_named(matches, key)
    if chosen is not None:
        found = await _report(ctx, chosen.id, public=public)
        if found is not None:
            return found
    if not matches:
        return await _not_found(ctx, key)
    names = "; ".join(clean(_listed(lead)) for lead in matches)
    text = f"Several leads match {clean(key)!r}: {names}. Ask again with an e-mail or id."
    return Reply(text=text, leads=tuple(lead_summary(lead) for lead in matches), title="Which one?")


# --- feedback ----------------------------------------------------------------------------


def _outcome(word: str) -> Outcome | None:
    try:
        return Outcome(word.lower())
    except ValueError:
        return None


def _labels(n: int) -> str:
    return f"{n} label{'' if n == 1 else 's'} collected"


async def _feedback(ctx: _Context, args: list[str]) -> Reply:
    if len(args) < 2:
        return ctx.usage_error("feedback")
    outcome = _outcome(args[1])
    if outcome is None:
        allowed = ", ".join(o.value for o in Outcome)
        problem = f"{clean(args[1])!r} is not an outcome: use one of {allowed}."
        return ctx.usage_error("feedback", problem)
    lead = await find_lead(ctx.session, key=args[0])
    if lead is None:
        return await _not_found(ctx, args[0])
    reason = canonical_reason(outcome, " ".join(args[2:]))
    await judge(
        ctx.session,
        lead=lead,
        outcome=outcome,
        reason=reason,
        actor=ctx.actor,
        model=ctx.model,
        now=ctx.now,
        thresholds=ctx.thresholds,
    )
    await ctx.session.commit()
    total = await count_labels(ctx.session)
    because = f" ({reason})" if reason else ""
    # Neutral text (no platform's markup): Teams showed Slack's *…* literally.
    text = f"Recorded: {outcome.value}{because} for {lead_label(lead)} — {_labels(total)}."
    return Reply(text=clean(text))


# --- top ---------------------------------------------------------------------------------


def _top_args(args: list[str]) -> tuple[int, Scope] | str:
    """(n, scope), or the problem with the arguments."""
    n: int | None = None
    scope: Scope | None = None
    for arg in args:
        if arg.isdigit() and n is None:
            n = int(arg)
        elif arg.lower() in set(Scope) and scope is None:
            scope = Scope(arg.lower())
        else:
            return f"Unexpected {clean(arg)!r}."
    n = TOP_DEFAULT if n is None else n
    if not 1 <= n <= TOP_MAX:
        return f"n must be 1 to {TOP_MAX}, got {n}."
    return n, scope or Scope.ALL


def in_a_team(routing: Routing, actor: Actor) -> bool:
    """Whether the asker is a member of a team some rule routes to (teams list Slack users)."""
    return actor.platform == "slack" and any(actor.user_id in r.team for r in routing.rules)


def _for_team_of(routing: Routing, actor: Actor, lead: Lead) -> bool:
    route = route_of(routing, LeadState.from_dict(lead.state).traits)
    return route is not None and actor.user_id in route.team


async def team_leads(ctx: _Context, n: int) -> list[Lead]:
    """The ``n`` hottest open leads routed to a team of the asker. Routes are conditions on
    traits, evaluated here page by page of open leads, hottest first."""
    found: list[Lead] = []
    after: tuple[float, str] | None = None
    while len(found) < n:
        page = await open_leads(ctx.session, now=at(ctx.now), limit=TEAM_PAGE, after=after)
        found += [lead for lead in page if _for_team_of(ctx.routing, ctx.actor, lead)]
        if len(page) < TEAM_PAGE:
            break
        after = (page[-1].score, page[-1].id)
    return found[:n]


_TITLES = {
    Scope.MINE: ("Your claimed leads awaiting feedback", "You have no claimed leads waiting."),
    Scope.TEAM: ("Hottest leads for your team", "No lead routed to your team is waiting."),
    Scope.ALL: ("Hottest leads nobody has acted on", "No lead is waiting for anyone."),
}


async def _top_leads(ctx: _Context, n: int, scope: Scope) -> list[Lead]:
    if scope is Scope.MINE:
        return await claimed_leads(ctx.session, by=ctx.actor.ref, limit=n)
    if scope is Scope.TEAM:
        return await team_leads(ctx, n)
    return await open_leads(ctx.session, now=at(ctx.now), limit=n)


async def _top(ctx: _Context, args: list[str]) -> Reply:
    parsed = _top_args(args)
    if isinstance(parsed, str):
        return ctx.usage_error("top", parsed)
    n, scope = parsed
    if scope is Scope.TEAM and not in_a_team(ctx.routing, ctx.actor):
        others = " or ".join(f"`{ctx.command} top{s}`" for s in ("", f" {Scope.MINE}"))
        return Reply(text=f"You are in no team of the routing config; try {others}.")
    leads = await _top_leads(ctx, n, scope)
    summaries = summaries_now(leads, model=ctx.model, now=ctx.now, thresholds=ctx.thresholds)
    title, empty = _TITLES[scope]
    text = f"{title}\n{render_top(summaries)}" if summaries else empty
    return Reply(text=text, leads=tuple(summaries), title=title)


# --- digest ------------------------------------------------------------------------------


def _digest_args(args: list[str]) -> tuple[str, str | None]:
    """(period, team or None): an optional period word first, the rest names a team."""
    period = DIGEST_DEFAULT
    if args and args[0].lower() in PERIODS:
        period, args = args[0].lower(), args[1:]
    return period, " ".join(args) or None


async def _manager_groups(ctx: _Context, managers: Sequence[str]) -> Collection[str]:
    """The asker's user groups among the manager groups; asked only when it matters."""
    groups = [m for m in managers if m.startswith("S")]
    if ctx.actor.user_id in managers or not groups or ctx.groups_of is None:
        return ()
    return await ctx.groups_of(ctx.actor.user_id, groups)


async def _digest(ctx: _Context, args: list[str]) -> Reply:
    if ctx.config is None or ctx.engine is None:
        return Reply(text="Digests are not set up here: the bot was started without its config.")
    if ctx.actor.platform not in ("slack", "teams"):
        return Reply(text="Digests are for managers and the reps of the routing config's teams.")
    period, team = _digest_args(args)
    managers = ctx.config.managers
    # A Teams manager is listed as ``teams:<AAD object id>``, i.e. by the actor's ref.
    who = ctx.actor.user_id if ctx.actor.platform == "slack" else ctx.actor.ref
    scope = digest_scope(
        who, team, managers=managers,
        manager_groups_of_user=await _manager_groups(ctx, managers),
        teams=teams_of(ctx.config.routing),
    )  # fmt: skip
    if isinstance(scope, Refusal):
        return Reply(text=scope.text)
    digest = await build_digest(
        ctx.engine, config=ctx.config, period=Period.last(period, ctx.now), scope=scope, now=ctx.now
    )
    return Reply(text=render_text(digest), digest=digest)


async def _customer(ctx: _Context, args: list[str]) -> Reply:
    if not args:
        return ctx.usage_error("customer", "Name a customer by e-mail or id.")
    rfm = ctx.config.rfm if ctx.config is not None else Rfm()
    return await customer_reply(ctx.session, key=" ".join(args), rfm=rfm, now=ctx.now)


_Handler = Callable[[_Context, list[str]], Awaitable[Reply]]
_HANDLERS: dict[str, _Handler] = {
    "score": _score,
    "feedback": _feedback,
    "top": _top,
    "digest": _digest,
    "customer": _customer,
}
