"""The slack and routing sections: defaults, compiled routes, and errors by line."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import load_config

BASE = "model:\n  name: m\n"


def _problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as err:
        load_config(text=BASE + text, name="r.yaml")
    return [(p.line, p.field, p.message) for p in err.value.problems]


def test_defaults_send_everything_to_the_default_channel() -> None:
    config = load_config(text=BASE, name="r.yaml")
    assert config.slack.command == "/lead"
    assert config.slack.default_channel == "#sales-alerts"
    assert config.routing.rules == ()
    assert config.routing.owner is None


def test_routes_compile_with_their_conditions_and_teams() -> None:
    config = load_config(
        text=BASE
        + """routing:
  owner: {trait: crm_owner, users: {"Jane@Example.com": U0123ABCD}}
  teams: {enterprise: [U0AAA1, U0BBB2]}
  rules:
    - name: dach
      when: {address.country: {one_of: [de, at]}}
      channel: "#sales-dach"
    - when: {company.employee_count: {range: {min: 1000}}}
      team: enterprise
""",
        name="r.yaml",
    )
    routing = config.routing
    assert routing.owner == (("crm_owner",), {"jane@example.com": "U0123ABCD"})
    dach, big = routing.rules
    assert (dach.name, dach.channel) == ("dach", "#sales-dach")
    assert dach.matches({"address": {"country": "DE"}})
    assert not dach.matches({"address": {"country": "US"}})
    assert (big.name, big.team) == ("rules[1]", ("U0AAA1", "U0BBB2"))
    assert big.matches({"company": {"employee_count": 5000}})


def test_bad_routes_name_the_line_and_field() -> None:
    problems = _problems(
        """slack:
  command: lead
  default_channel: "Sales Alerts"
  crm_url: "https://crm.example.com/leads"
routing:
  teams: {enterprise: []}
  rules:
    - when: {title: CEO}
    - channel: "#ok"
      user: bob
    - team: nobody
"""
    )
    fields = {field: (line, message) for line, field, message in problems}
    assert fields["slack.command"][0] == 4
    assert "slash command" in fields["slack.command"][1]
    assert fields["slack.default_channel"][0] == 5
    assert "'Sales Alerts'" in fields["slack.default_channel"][1]
    assert fields["slack.crm_url"][0] == 6
    assert "{id}" in fields["slack.crm_url"][1]
    assert "routing.teams.enterprise" in fields
    assert "a channel, a user or a team" in fields["routing.rules[0]"][1]
    assert fields["routing.rules[0]"][0] == 10
    assert "user id" in fields["routing.rules[1].user"][1]
