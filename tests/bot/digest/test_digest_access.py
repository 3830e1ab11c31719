"""Who may ask for which digest: managers (by id or user group), reps, anyone else."""

from __future__ import annotations

import pytest

from bot.digest.access import Refusal, digest_scope, teams_of
from bot.digest.content import Scope
from config.loader import load_config
from tests.bot.conftest import SMALL_MODEL

TEAMS = {"east": ("U0EAST1", "U0BOTH2"), "west": ("U0BOTH2", "U0WEST3")}
MANAGERS = ("U0BOSS1", "S0LEADS")


def scope(user: str, team: str | None = None, groups: tuple[str, ...] = ()) -> Scope | Refusal:
    return digest_scope(user, team, managers=MANAGERS, manager_groups_of_user=groups, teams=TEAMS)


@pytest.mark.parametrize(
    ("user", "groups"),
    [("U0BOSS1", ()), ("U0OTHER", ("S0LEADS",)), ("U0EAST1", ("S0OTHER", "S0LEADS"))],
    ids=["by id", "by user group", "a rep who is also a manager"],
)
def test_managers_get_every_lead_or_a_named_team(user: str, groups: tuple[str, ...]) -> None:
    assert scope(user, groups=groups) == Scope.everyone()
    assert scope(user, "East", groups=groups) == Scope.team("east", TEAMS["east"])


def test_a_manager_naming_an_unknown_team_hears_the_known_ones() -> None:
    assert scope("U0BOSS1", "north") == Refusal("There is no team 'north' (teams: east, west).")
    none = digest_scope("U0BOSS1", "x", managers=MANAGERS, manager_groups_of_user=(), teams={})
    assert none == Refusal("There is no team 'x' (teams: none in the routing config).")


def test_a_rep_gets_their_own_scope_and_no_team_digest() -> None:
    assert scope("U0WEST3") == Scope.rep("U0WEST3")
    assert scope("U0BOTH2", groups=("S0OTHER",)) == Scope.rep("U0BOTH2")
    refused = scope("U0WEST3", "west")
    assert isinstance(refused, Refusal)
    assert refused.text.startswith("Team digests are for sales managers.")


@pytest.mark.parametrize("team", [None, "east"])
def test_anyone_else_is_refused_politely(team: str | None) -> None:
    refused = scope("U0STRANGER", team, groups=("S0OTHER",))
    assert isinstance(refused, Refusal)
    assert refused.text.startswith(("Sorry, digests are for sales managers", "Team digests"))


ROUTES = """
routing:
  teams: {east: [U0EAST1, U0BOTH2], west: [U0WEST3]}
  rules:
    - {name: east, when: {region: {equals: east}}, team: east}
    - {name: west, when: {region: {equals: west}}, team: west}
    - {name: east again, when: {region: {equals: e}}, team: east}
"""


def test_teams_are_read_from_the_routing_config() -> None:
    config = load_config(text=SMALL_MODEL + ROUTES, name="teams.yaml")
    assert teams_of(config.routing) == {"east": ("U0EAST1", "U0BOTH2"), "west": ("U0WEST3",)}
