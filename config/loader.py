"""Load a leadbot configuration file into a ``scoring.Model`` and alert settings.

``load_config`` raises one :class:`ConfigError` listing every problem as
``file:line: field: message``; it never lets a pydantic or YAML traceback reach the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.crm import Crm
from config.errors import ConfigError, Problem, duplicate_id, file_not_found, sort_problems
from config.learning import Learning
from config.pydantic_errors import problems_from
from config.rfm import Rfm
from config.routing import Routing, SlackSpec, TeamsSpec
from config.schedules import Decay, Retention, Schedule, Sla, to_schedules, unknown_teams
from config.schema import RULE_SECTIONS, AlertSettings, ConfigSpec
from config.yamlmarks import Document, Marks, read_yaml
from scoring import Model

DEFAULT_PATH = Path(__file__).parent / "default.yaml"


@dataclass(frozen=True)
class LeadbotConfig:
    """A validated configuration: the scoring model, alert settings, and where it came from."""

    model: Model
    alerts: AlertSettings
    source: str
    slack: SlackSpec = field(default_factory=SlackSpec)
    teams: TeamsSpec = field(default_factory=TeamsSpec)
    routing: Routing = field(default_factory=Routing)
    managers: tuple[str, ...] = ()
    learning: Learning = field(default_factory=Learning)
    schedules: tuple[Schedule, ...] = field(default_factory=lambda: to_schedules(None))
    sla: Sla = field(default_factory=Sla)
    decay: Decay = field(default_factory=Decay)
    retention: Retention = field(default_factory=Retention)
    crm: Crm = field(default_factory=Crm)
    rfm: Rfm = field(default_factory=Rfm)


def load_config(
    source: str | os.PathLike[str] | None = None,
    *,
    text: str | None = None,
    name: str | None = None,
) -> LeadbotConfig:
    """Load from a path, from YAML ``text`` (``name`` is used in messages), or, with
    neither, the packaged ``config/default.yaml``. Raises ConfigError."""
    if text is not None and source is not None:
        raise TypeError("load_config takes a path or text=, not both")
    if text is None:
        path = Path(source) if source is not None else DEFAULT_PATH
        name = name or str(path)
        text = _read(path, name)
    name = name or "<text>"
    spec = _validate(read_yaml(text, name), name)
    return LeadbotConfig(
        model=spec.to_model(),
        alerts=spec.alerts,
        source=name,
        slack=spec.slack,
        teams=spec.teams,
        routing=spec.routing.to_routing(),
        managers=tuple(spec.managers),
        learning=spec.learning.to_learning(),
        schedules=to_schedules(spec.schedules),
        sla=spec.sla.to_sla(),
        decay=spec.decay.to_decay(),
        retention=spec.retention.to_retention(),
        crm=spec.crm.to_crm(),
        rfm=spec.rfm.to_rfm(),
    )


def check_config(path: str | os.PathLike[str] | None) -> list[Problem]:
    """Every problem in the file at ``path`` (the default model when None); empty when valid."""
    try:
        load_config(path)
    except ConfigError as err:
        return err.problems
    return []


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = file_not_found()
    except IsADirectoryError:
        message = "is a directory, not a file"
    except UnicodeDecodeError as err:
        message = f"not UTF-8 text ({err.reason} at byte {err.start})"
    except OSError as err:
        message = f"cannot read the file: {err.strerror or err}"
    raise ConfigError([Problem(name, None, "", message)])


def _validate(doc: Document, name: str) -> ConfigSpec:
    problems = list(doc.problems)
    problems += _duplicate_ids(doc.data, doc.marks, name)
    spec: ConfigSpec | None = None
    try:
        spec = ConfigSpec.model_validate(_root(doc.data))
    except ValidationError as err:
        problems += problems_from(err, ConfigSpec, doc.marks, name)
    if spec is not None:
        problems += _schedule_teams(spec, doc.marks, name)
    if problems or spec is None:
        raise ConfigError(sort_problems(problems))
    return spec


def _root(data: Any) -> Any:
    # An empty file reads as None; validating {} then reports what is missing.
    return {} if data is None else data


def _schedule_teams(spec: ConfigSpec, marks: Marks, name: str) -> list[Problem]:
    """A digest's team must be one of routing.teams: a check across two sections."""
    known = ", ".join(sorted(spec.routing.teams)) or "none defined"
    return [
        Problem(
            name,
            marks.line_for(("schedules", i, "team")),
            f"schedules[{i}].team",
            f"unknown team {team!r} (routing.teams: {known})",
        )
        for i, team in unknown_teams(spec.schedules, tuple(spec.routing.teams))
    ]


def _duplicate_ids(data: Any, marks: Marks, name: str) -> list[Problem]:
    """Ids are unique across all rule sections: they key the feature state of every lead."""
    if not isinstance(data, dict):
        return []
    first: dict[str, tuple[str, int | None]] = {}
    problems: list[Problem] = []
    for section in RULE_SECTIONS:
        rules = data.get(section)
        if not isinstance(rules, list):
            continue
        for index, rule in enumerate(rules):
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            if not isinstance(rule_id, str):
                continue
            field = f"{section}[{index}].id"
            line = marks.line_for((section, index, "id"))
            if rule_id in first:
                problems.append(Problem(name, line, field, duplicate_id(rule_id, *first[rule_id])))
            else:
                first[rule_id] = (field, line)
    return problems
