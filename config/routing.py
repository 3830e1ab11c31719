"""Where alerts go: the ``slack``, ``teams`` and ``routing`` sections of the configuration.

Routing is decided when an alert is written to the outbox: the lead's owner (a trait mapped
to a Slack user), else the first rule whose conditions hold on the lead's traits (a channel,
a rep, or a team whose members take turns, in Slack; a conversation or a user in Teams),
else the default channel of each chat platform that is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from config.conditions import Conditions, Strict, to_conditions
from config.errors import got
from config.rules import Text
from scoring import Condition

_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{2,})$")
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
# A team channel or group chat (19:…@thread.tacv2, …@thread.skype, …@thread.v2); never a
# message inside one (";messageid=").
_TEAMS_CONVERSATION = re.compile(r"^19:[^\s;]+@thread\.[a-z0-9]+$")
_AAD_OBJECT_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def _channel(value: str) -> str:
    if not _CHANNEL.match(value):
        raise ValueError(got("a channel: #name (lower case) or a channel id like C0123ABC", value))
    return value


def _user(value: str) -> str:
    if not _USER.match(value):
        raise ValueError(got("a Slack user id like U0123ABC", value))
    return value


def _teams_conversation(value: str) -> str:
    if not _TEAMS_CONVERSATION.match(value):
        raise ValueError(
            got(
                "a Teams conversation id like 19:abc…@thread.tacv2 (a channel or group chat)", value
            )
        )
    return value


def aad_object_id(value: str) -> str:
    if not _AAD_OBJECT_ID.match(value):
        raise ValueError(
            got(
                "a Microsoft Entra (AAD) object id like 00000000-0000-0000-0000-000000000000", value
            )
        )
    return value.lower()


def _command(value: str) -> str:
    if not re.match(r"^/[a-z0-9_-]{1,31}$", value):
        raise ValueError(got("a slash command like /lead", value))
    return value


def _url_template(value: str) -> str:
    if not value.startswith(("https://", "http://")) or not re.search(r"\{(id|email)\}", value):
        raise ValueError(got("an http(s) URL with {id} or {email} in it", value))
    return value


Channel = Annotated[str, AfterValidator(_channel)]
UserId = Annotated[str, AfterValidator(_user)]
TeamsConversationId = Annotated[str, AfterValidator(_teams_conversation)]
AadObjectId = Annotated[str, AfterValidator(aad_object_id)]


class SlackSpec(Strict):
    command: Annotated[str, AfterValidator(_command)] = "/lead"
    default_channel: Channel = "#sales-alerts"
    crm_url: Annotated[str, AfterValidator(_url_template)] | None = None


class TeamsSpec(Strict):
    """Microsoft Teams: ``default_channel`` is the conversation id alerts go to when no rule
    matches; unset, the first team channel the bot was installed in."""

    default_channel: TeamsConversationId | None = None


class RouteSpec(Strict):
    """``when`` the lead's traits match, send to a Slack ``channel``, ``user`` or ``team``,
    and/or a Teams ``teams_channel`` (conversation id) or ``teams_user`` (AAD object id)."""

    name: Text | None = None
    when: Conditions = Field(default_factory=dict)
    channel: Channel | None = None
    user: UserId | None = None
    team: Text | None = None
    teams_channel: TeamsConversationId | None = None
    teams_user: AadObjectId | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> RouteSpec:
        targets = (self.channel, self.user, self.team, self.teams_channel, self.teams_user)
        if all(t is None for t in targets):
            raise ValueError(
                "a route needs a channel, a user or a team (Slack), or a teams_channel or "
                "teams_user (Teams)"
            )
        return self


class OwnerSpec(Strict):
    """A trait naming the lead's owner (e.g. the CRM owner's e-mail) and the Slack user of
    each value (compared without case)."""

    trait: Text
    users: dict[str, UserId] = Field(default_factory=dict)


class RoutingSpec(Strict):
    owner: OwnerSpec | None = None
    teams: dict[str, Annotated[list[UserId], Field(min_length=1)]] = Field(default_factory=dict)
    rules: list[RouteSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_teams(self) -> RoutingSpec:
        for i, rule in enumerate(self.rules):
            if rule.team is not None and rule.team not in self.teams:
                known = ", ".join(sorted(self.teams)) or "none defined"
                raise ValueError(f"rules[{i}].team: unknown team {rule.team!r} (teams: {known})")
        return self

    def to_routing(self) -> Routing:
        owner = None
        if self.owner is not None:
            users = {k.strip().lower(): v for k, v in self.owner.users.items()}
            owner = (tuple(self.owner.trait.split(".")), users)
        rules = tuple(
            Route(
                name=r.name or f"rules[{i}]",
                conditions=to_conditions(r.when),
                channel=r.channel,
                user=r.user,
                team=tuple(self.teams[r.team]) if r.team else (),
                teams_channel=r.teams_channel,
                teams_user=r.teams_user,
            )
            for i, r in enumerate(self.rules)
        )
        teams = {name: tuple(members) for name, members in self.teams.items()}
        return Routing(owner=owner, rules=rules, teams=teams)


@dataclass(frozen=True)
class Route:
    name: str
    conditions: tuple[Condition, ...]
    channel: str | None = None
    user: str | None = None
    team: tuple[str, ...] = ()
    teams_channel: str | None = None  # a Teams conversation id
    teams_user: str | None = None  # a Teams user's AAD object id

    def matches(self, traits: dict[str, Any]) -> bool:
        return all(c.matches(traits) for c in self.conditions)


@dataclass(frozen=True)
class Routing:
    """Compiled routing: an owner trait and its users, then rules in order."""

    owner: tuple[tuple[str, ...], dict[str, str]] | None = None
    rules: tuple[Route, ...] = field(default_factory=tuple)
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name → Slack user ids
