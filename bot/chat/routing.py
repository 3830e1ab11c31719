"""Alert destinations for a lead: its owner, the first matching route, or the default.

Destinations are strings the outbox carries: ``console``, ``slack:#channel``,
``slack:C0123`` or ``slack:@U0123`` (a direct message), ``teams:conversation:<id>``,
``teams:user:<AAD object id>`` (a 1:1 chat) or ``teams:default``.

With both platforms on, a rule sends to the targets it names on each platform that is on;
a lead no rule (and no owner) claims goes to the default of each platform: Slack's default
channel and Teams' default channel. A rule whose targets are all on a platform that is off
counts as no match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.routing import Route, Routing
from scoring.model import lookup

CONSOLE = "console"
TEAMS_DEFAULT = "teams:default"


@dataclass
class Router:
    """Routes alerts to the chat platforms that are on: Slack when ``slack_channel`` (its
    default channel) is set, Teams when ``teams`` is true; with neither, every alert goes
    to the console."""

    routing: Routing = field(default_factory=Routing)
    slack_channel: str | None = None
    teams: bool = False
    _turns: dict[str, int] = field(default_factory=dict)

    def destinations(self, traits: Mapping[str, Any]) -> tuple[str, ...]:
        if self.slack_channel is None and not self.teams:
            return (CONSOLE,)
        owner = owner_of(self.routing, traits) if self.slack_channel is not None else None
        if owner is not None:
            return (f"slack:@{owner}",)
        route = route_of(self.routing, traits)
        targets = self._targets(route) if route is not None else ()
        return targets or self.defaults()

    def defaults(self) -> tuple[str, ...]:
        """Where an alert no rule claims goes: each platform's default."""
        out = []
        if self.slack_channel is not None:
            out.append(f"slack:{self.slack_channel}")
        if self.teams:
            out.append(TEAMS_DEFAULT)
        return tuple(out)

    def _targets(self, route: Route) -> tuple[str, ...]:
        targets = []
        if self.slack_channel is not None:
            targets.extend(self._slack_targets(route))
        if self.teams:
            if route.teams_channel is not None:
                targets.append(f"teams:conversation:{route.teams_channel}")
            if route.teams_user is not None:
                targets.append(f"teams:user:{route.teams_user}")
        return tuple(targets)

    def _slack_targets(self, route: Route) -> list[str]:
        targets = []
        if route.channel is not None:
            targets.append(f"slack:{route.channel}")
        if route.user is not None:
            targets.append(f"slack:@{route.user}")
        if route.team:
            # Members take turns; the counter lives with the writer (one per process).
            turn = self._turns.get(route.name, 0)
            self._turns[route.name] = turn + 1
            targets.append(f"slack:@{route.team[turn % len(route.team)]}")
        return targets


def owner_of(routing: Routing, traits: Mapping[str, Any]) -> str | None:
    """The Slack user the lead's owner trait maps to, if any."""
    if routing.owner is None:
        return None
    path, users = routing.owner
    value = lookup(traits, path)
    return users.get(str(value).strip().lower()) if value is not None else None


def route_of(routing: Routing, traits: Mapping[str, Any]) -> Route | None:
    """The rule an alert for these traits is routed by, or None when it goes to the lead's
    owner or to the default channel. Reading it takes no team member's turn."""
    if owner_of(routing, traits) is not None:
        return None
    return next((route for route in routing.rules if route.matches(dict(traits))), None)
