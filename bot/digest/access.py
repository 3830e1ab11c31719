"""Who may ask for which digest. Pure: the caller says who the asker is, which user groups
they are in, and what the config holds.

- Managers (a Slack user id in the config's ``managers``, or a member of a user group listed
  there) get every lead's digest, or a team's when they name one.
- Reps (a member of a team of the routing config) get their own leads' digest; a team
  digest is for managers.
- Anyone else gets a polite refusal saying who may ask.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from bot.digest.data import Scope
from config.routing import Routing


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the asker gets no digest, in words for them."""

    text: str


def is_manager(user_id: str, managers: Collection[str], groups_of_user: Collection[str]) -> bool:
    """A manager by id, or by membership of a user group (``S…``) listed as managers."""
    return user_id in managers or any(group in managers for group in groups_of_user)


def digest_scope(
    user_id: str,
    requested_team: str | None,
    *,
    managers: Collection[str],
    manager_groups_of_user: Collection[str],
    teams: Mapping[str, Sequence[str]],
) -> Scope | Refusal:
    """The scope ``user_id`` may see: every lead or a named team for a manager, their own
    leads for a rep; a ``Refusal`` otherwise. ``manager_groups_of_user``: the user groups
    the asker belongs to (only those listed in ``managers`` matter); ``teams``: team name →
    member Slack user ids."""
    manager = is_manager(user_id, managers, manager_groups_of_user)
    if requested_team is not None:
        if not manager:
            return Refusal(
                "Team digests are for sales managers. Ask without a team name for your own."
            )
        members = _team(teams, requested_team)
        if members is None:
            known = ", ".join(sorted(teams)) or "none in the routing config"
            return Refusal(f"There is no team {requested_team!r} (teams: {known}).")
        name, ids = members
        return Scope.team(name, ids)
    if manager:
        return Scope.everyone()
    if any(user_id in members for members in teams.values()):
        return Scope.rep(user_id)
    return Refusal(
        "Sorry, digests are for sales managers and the reps of the routing config's teams. "
        "Ask your manager if you should be one of them."
    )


def _team(teams: Mapping[str, Sequence[str]], wanted: str) -> tuple[str, tuple[str, ...]] | None:
    """The team named ``wanted`` (any case) and its members."""
    for name, members in teams.items():
        if name.lower() == wanted.lower():
            return name, tuple(members)
    return None


def teams_of(routing: Routing) -> dict[str, tuple[str, ...]]:
    """Team name → member ids, from the routing config's ``teams``."""
    return dict(routing.teams)
