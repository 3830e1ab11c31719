"""The ``schedules``, ``sla``, ``decay`` and ``retention`` sections: when the bot's periodic
jobs run, when an unclaimed hot lead is followed up, whether a lead cooling down is
announced, and how long delivered messages and raw event payloads are kept.

```yaml
schedules:                     # optional; without it: sla every 15 minutes, decay and
                               # retention hourly (a list of your own replaces them, but
                               # retention stays hourly unless the list names it or is [];
                               # with a CRM's credentials set, crm_pull runs every 15
                               # minutes unless the list names it or is [])
  - job: digest                # digest | sla | decay | retrain | retention | crm_pull | rfm
    cron: "0 8 * * 1-5"        # 5-field crontab (minute hour day month weekday, 0/7 = Sunday)
    timezone: Europe/Paris     # IANA name, default UTC
    period: week               # digest only: day | week (default week)
    team: emea                 # digest only, optional: a team of routing.teams
    to: "#sales-managers"      # digest only, optional: one destination or a list; default:
                               # the managers. Slack: "#name", "C…", "@U…"; Teams:
                               # "teams:<AAD object id>" (a user's 1:1 chat),
                               # "teams:conversation:19:…@thread.tacv2", "teams:default"
sla:
  remind_after_hours: 4
  escalate_after_hours: 24     # greater than remind_after_hours
  escalate_to: "@U0MGR"        # optional: a channel or "@U…"
decay:
  cooling_notice: true         # post "cooling down" in the alert's thread
retention:
  sent_outbox_days: 30         # delivered messages kept this long (chat request keys: a day)
  event_payload_days: 180      # raw event payloads kept this long; null: forever (the event
                               # rows stay: duplicates, counts and scores are unchanged)
```

Weekdays follow crontab (0 and 7 are Sunday, 1 is Monday), not APScheduler 3's own
numbering (0 is Monday): :func:`cron_trigger` translates, so ``1-5`` means Monday to Friday.
When both the day of the month and the weekday are restricted, both must match
(APScheduler's rule; classic cron runs when either matches).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from config.conditions import Strict
from config.errors import got
from config.routing import _CHANNEL, _teams_conversation, aad_object_id
from config.rules import Text

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

JobName = Literal["digest", "sla", "decay", "retrain", "retention", "crm_pull", "rfm"]
Period = Literal["day", "week"]
DIGEST_ONLY = ("period", "team", "to")
_DESTINATION_USER = re.compile(r"^@[UW][A-Z0-9]{2,}$")
SLACK = "slack:"
TEAMS = "teams:"
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _destination(value: str) -> str:
    if not (_CHANNEL.match(value) or _DESTINATION_USER.match(value)):
        raise ValueError(
            got("a channel (#name or an id like C0123ABC) or a user as @U0123ABC", value)
        )
    return value


def _digest_destination(value: str) -> str:
    """A Slack destination as ``_destination`` takes it, or a Teams one; returned as the
    outbox destination it names (``slack:#sales``, ``teams:user:<id>``, …)."""
    if value.startswith(TEAMS):
        return teams_destination(value)
    if _CHANNEL.match(value) or _DESTINATION_USER.match(value):
        return f"{SLACK}{value}"
    raise ValueError(
        got(
            "a Slack channel (#name or an id like C0123ABC), a Slack user as @U0123ABC, or a "
            "Teams destination: teams:<AAD object id>, teams:conversation:<19:…@thread.…> or "
            "teams:default",
            value,
        )
    )


def teams_destination(value: str) -> str:
    """``teams:<AAD object id>`` (the managers' form) → ``teams:user:<id>``; the outbox's
    own ``teams:user:…``, ``teams:conversation:…`` and ``teams:default`` as they are."""
    rest = value.removeprefix(TEAMS)
    if rest == "default":
        return value
    kind, _, key = rest.partition(":")
    if kind == "conversation":
        return f"{TEAMS}conversation:{_teams_conversation(key)}"
    if kind == "user":
        return f"{TEAMS}user:{aad_object_id(key)}"
    return f"{TEAMS}user:{aad_object_id(rest)}"


def _digest_destinations(value: str | list[str]) -> tuple[str, ...]:
    """One destination or a list of them, as outbox destinations; an error names the item."""
    if isinstance(value, str):
        return (_digest_destination(value),)
    if not value:
        raise ValueError("an empty list: name a destination, or leave to out for the managers")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(_digest_destination(item))
        except ValueError as err:
            raise ValueError(f"item {i}: {err}") from None
    return tuple(out)


Destination = Annotated[str, AfterValidator(_destination)]
DigestDestinations = Annotated[str | list[str], AfterValidator(_digest_destinations)]


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Paris"
        ) from None
    return value


def _cron(value: str) -> str:
    try:
        cron_trigger(value, "UTC")
    except ValueError as err:
        raise ValueError(f"invalid crontab expression {value!r}: {err}") from None
    return value


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    """APScheduler's trigger for a crontab expression, with crontab's weekday numbers."""
    # Imported here: the ingest writer process loads the config but never schedules.
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=zoneinfo.ZoneInfo(timezone),
    )


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (``1-5``, ``*/2``, ``sun,wed``, ``0-6``) as day names, which
    APScheduler reads without its Monday-is-0 numbering."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        days |= _weekday_part(part.lower())
    return ",".join(_DAYS[d] for d in sorted(days))


def _weekday_part(part: str) -> set[int]:
    span, _, step_text = part.partition("/")
    step = _number(step_text, part) if step_text else 1
    if step < 1:
        raise ValueError(f"weekday step must be at least 1 in {part!r}")
    if span == "*":
        low, high = 0, 6
    else:
        first, dash, last = span.partition("-")
        low = _weekday(first, part)
        high = _weekday(last, part) if dash else (6 if step_text else low)
        if high == 0 and dash:
            high = 7  # `5-0` is not a range; `5-7` (Friday to Sunday) is
        if high < low:
            raise ValueError(f"weekday range {span!r} runs backwards")
    return {d % 7 for d in range(low, high + 1, step)}


def _weekday(text: str, part: str) -> int:
    if text in _DAYS:
        return _DAYS.index(text)
    day = _number(text, part)
    if not 0 <= day <= 7:
        raise ValueError(f"weekday {day} is not 0-7 (0 and 7 are Sunday) in {part!r}")
    return day


def _number(text: str, part: str) -> int:
    if not text.isdigit():
        raise ValueError(f'Unrecognized expression "{part}" for field "day_of_week"')
    return int(text)


class ScheduleSpec(Strict):
    job: JobName
    cron: Annotated[str, AfterValidator(_cron)]
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    period: Period | None = None
    team: Text | None = None
    to: DigestDestinations | None = None

    @field_validator(*DIGEST_ONLY)
    @classmethod
    def _digest_only(cls, value: object, info: ValidationInfo) -> object:
        job = info.data.get("job")
        if job is not None and job != "digest" and value is not None:
            raise ValueError(f"only a digest schedule takes {info.field_name}, not {job}")
        return value

    def to_schedule(self) -> Schedule:
        digest = self.job == "digest"
        return Schedule(
            job=self.job,
            cron=self.cron,
            timezone=self.timezone,
            period=(self.period or "week") if digest else None,
            team=self.team,
            to=tuple(self.to or ()),
        )


class SlaSpec(Strict):
    remind_after_hours: Annotated[float, Field(gt=0)] = 4.0
    escalate_after_hours: Annotated[float, Field(gt=0)] = 24.0
    escalate_to: Destination | None = None

    @field_validator("escalate_after_hours")
    @classmethod
    def _after_reminder(cls, value: float, info: ValidationInfo) -> float:
        remind = info.data.get("remind_after_hours")
        if remind is not None and value <= remind:
            raise ValueError(f"must be greater than remind_after_hours ({remind:g}), got {value:g}")
        return value

    def to_sla(self) -> Sla:
        return Sla(
            remind_after_hours=self.remind_after_hours,
            escalate_after_hours=self.escalate_after_hours,
            escalate_to=self.escalate_to,
        )


class DecaySpec(Strict):
    cooling_notice: bool = True

    def to_decay(self) -> Decay:
        return Decay(cooling_notice=self.cooling_notice)


class RetentionSpec(Strict):
    sent_outbox_days: Annotated[float, Field(gt=0)] = 30.0
    event_payload_days: Annotated[float, Field(gt=0)] | None = 180.0

    def to_retention(self) -> Retention:
        return Retention(
            sent_outbox_days=self.sent_outbox_days, event_payload_days=self.event_payload_days
        )


@dataclass(frozen=True)
class Schedule:
    """One compiled schedule. ``period`` is set for a digest only (day or week); ``to``
    holds outbox destinations (``slack:#sales``, ``teams:user:<id>``), empty for the
    managers."""

    job: str
    cron: str
    timezone: str = "UTC"
    period: str | None = None
    team: str | None = None
    to: tuple[str, ...] = ()

    def trigger(self) -> CronTrigger:
        return cron_trigger(self.cron, self.timezone)


@dataclass(frozen=True)
class Sla:
    remind_after_hours: float = 4.0
    escalate_after_hours: float = 24.0
    escalate_to: str | None = None


@dataclass(frozen=True)
class Decay:
    cooling_notice: bool = True


@dataclass(frozen=True)
class Retention:
    sent_outbox_days: float = 30.0
    event_payload_days: float | None = 180.0  # None: payloads are kept forever


RETENTION = Schedule(job="retention", cron="23 * * * *")
CRM_PULL = Schedule(job="crm_pull", cron="*/15 * * * *")
"""Added by the scheduler when a CRM's credentials are set and the schedules neither name
``crm_pull`` nor are ``[]`` (the credentials are the environment's, not the file's)."""
RFM = Schedule(job="rfm", cron="4-59/15 * * * *")
"""Added by the scheduler unless the schedules name ``rfm`` or are ``[]``: every customer's
RFM scores recomputed (bot/jobs/rfm.py), as orders age out of the window."""
DEFAULT_SCHEDULES: tuple[Schedule, ...] = (
    Schedule(job="sla", cron="*/15 * * * *"),
    Schedule(job="decay", cron="7 * * * *"),
    RETENTION,
)


def to_schedules(specs: Sequence[ScheduleSpec] | None) -> tuple[Schedule, ...]:
    """The compiled schedules; the defaults when the section is absent (an empty list is
    no schedule at all). A list of one's own that does not name ``retention`` keeps the
    default retention: housekeeping added by an upgrade must not be lost to a list written
    before it existed."""
    if specs is None:
        return DEFAULT_SCHEDULES
    schedules = tuple(spec.to_schedule() for spec in specs)
    if schedules and all(s.job != "retention" for s in schedules):
        schedules += (RETENTION,)
    return schedules


def unknown_teams(
    specs: Sequence[ScheduleSpec] | None, teams: Sequence[str]
) -> list[tuple[int, str]]:
    """(index, team) of each schedule naming a team that ``routing.teams`` does not define."""
    named = [(i, s.team) for i, s in enumerate(specs or ()) if s.team is not None]
    return [(i, team) for i, team in named if team not in teams]
