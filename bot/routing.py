"""Alert destinations for a lead: its owner, the first matching route, or the default.

Destinations are strings the outbox carries: ``console``, ``slack:#channel``,
``slack:C0123`` or ``slack:@U0123`` (a direct message).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.routing import Route, Routing
from scoring.model import lookup

CONSOLE = "console"


@dataclass
class Router:
    """Routes alerts when Slack is configured (``slack_channel`` is the default channel);
    without a chat platform every alert goes to the console."""

    routing: Routing = field(default_factory=Routing)
    slack_channel: str | None = None
    _turns: dict[str, int] = field(default_factory=dict)

    def destinations(self, traits: Mapping[str, Any]) -> tuple[str, ...]:
        if self.slack_channel is None:
            return (CONSOLE,)
        owner = owner_of(self.routing, traits)
        if owner is not None:
            return (f"slack:@{owner}",)
        route = route_of(self.routing, traits)
        if route is not None:
            return self._targets(route)
        return (f"slack:{self.slack_channel}",)

    def _targets(self, route: Route) -> tuple[str, ...]:
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
        return tuple(targets)


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
