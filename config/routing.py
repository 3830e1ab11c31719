"""Where alerts go: the ``slack`` and ``routing`` sections of the configuration.

Routing is decided when an alert is written to the outbox: the lead's owner (a trait mapped
to a Slack user), else the first rule whose conditions hold on the lead's traits (a channel,
a rep, or a team whose members take turns), else the default channel.
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


def _channel(value: str) -> str:
    if not _CHANNEL.match(value):
        raise ValueError(got("a channel: #name (lower case) or a channel id like C0123ABC", value))
    return value


def _user(value: str) -> str:
    if not _USER.match(value):
        raise ValueError(got("a Slack user id like U0123ABC", value))
    return value


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


class SlackSpec(Strict):
    command: Annotated[str, AfterValidator(_command)] = "/lead"
    default_channel: Channel = "#sales-alerts"
    crm_url: Annotated[str, AfterValidator(_url_template)] | None = None


class RouteSpec(Strict):
    """``when`` the lead's traits match, send to a ``channel``, a ``user`` or a ``team``."""

    name: Text | None = None
    when: Conditions = Field(default_factory=dict)
    channel: Channel | None = None
    user: UserId | None = None
    team: Text | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> RouteSpec:
        if self.channel is None and self.user is None and self.team is None:
            raise ValueError("a route needs a channel, a user or a team")
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

    def matches(self, traits: dict[str, Any]) -> bool:
        return all(c.matches(traits) for c in self.conditions)


@dataclass(frozen=True)
class Routing:
    """Compiled routing: an owner trait and its users, then rules in order."""

    owner: tuple[tuple[str, ...], dict[str, str]] | None = None
    rules: tuple[Route, ...] = field(default_factory=tuple)
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name → Slack user ids
