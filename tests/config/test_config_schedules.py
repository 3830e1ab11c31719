"""The ``schedules``, ``sla`` and ``decay`` sections: defaults, every setting read, crontab
weekdays, and errors that name the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config import ConfigError, load_config
from config.loader import LeadbotConfig
from config.schedules import DEFAULT_SCHEDULES, Decay, Retention, Schedule, Sla, cron_trigger

BASE = """model:
  name: t
routing:
  teams: {emea: [U0AAA]}
"""


def loaded(extra: str) -> LeadbotConfig:
    return load_config(text=BASE + extra, name="s.yaml")


def test_without_the_sections_sla_decay_and_retention_run_on_the_default_schedules() -> None:
    config = loaded("")
    assert config.schedules == DEFAULT_SCHEDULES
    assert [(s.job, s.cron, s.timezone) for s in config.schedules] == [
        ("sla", "*/15 * * * *", "UTC"),
        ("decay", "7 * * * *", "UTC"),
        ("retention", "23 * * * *", "UTC"),
    ]
    assert config.retention == Retention(sent_outbox_days=30.0)
    assert config.sla == Sla(remind_after_hours=4.0, escalate_after_hours=24.0)
    assert config.decay == Decay(cooling_notice=True)


def test_an_empty_list_means_no_schedule_and_null_the_defaults() -> None:
    assert loaded("schedules: []\n").schedules == ()
    assert loaded("schedules:\nsla:\ndecay:\n").schedules == DEFAULT_SCHEDULES


def test_a_list_of_ones_own_keeps_retention_unless_it_names_it() -> None:
    own = loaded('schedules:\n  - {job: digest, cron: "0 8 * * 1"}\n').schedules
    assert [(s.job, s.cron) for s in own] == [("digest", "0 8 * * 1"), ("retention", "23 * * * *")]
    named = loaded('schedules:\n  - {job: retention, cron: "5 3 * * *"}\n').schedules
    assert [(s.job, s.cron) for s in named] == [("retention", "5 3 * * *")]


def test_every_setting_is_read() -> None:
    config = loaded(
        """schedules:
  - job: digest
    cron: "0 8 * * 1-5"
    timezone: Europe/Paris
    team: emea
    to: "#sales-managers"
  - {job: digest, cron: "0 18 * * *", period: day, to: "@U0BOSS"}
  - {job: retrain, cron: "30 2 * * 0"}
sla: {remind_after_hours: 2, escalate_after_hours: 8.5, escalate_to: "@U0MGR"}
decay: {cooling_notice: false}
retention: {sent_outbox_days: 7}
"""
    )
    assert config.schedules == (
        Schedule(
            "digest", "0 8 * * 1-5", "Europe/Paris", "week", "emea", ("slack:#sales-managers",)
        ),
        Schedule("digest", "0 18 * * *", "UTC", "day", None, ("slack:@U0BOSS",)),
        Schedule("retrain", "30 2 * * 0", "UTC"),
        Schedule("retention", "23 * * * *", "UTC"),  # kept: the list does not name it
    )
    assert config.sla == Sla(2.0, 8.5, "@U0MGR")
    assert config.decay == Decay(cooling_notice=False)
    assert config.retention == Retention(sent_outbox_days=7.0)


def _fires(cron: str, start: datetime, count: int, tz: str = "UTC") -> list[datetime]:
    trigger, out, previous = cron_trigger(cron, tz), [], None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        out.append(fire)
        previous, now = fire, fire
    return out


def test_weekdays_count_from_sunday_as_in_crontab() -> None:
    # 2025-11-29 is a Saturday. APScheduler 3 alone would read 1-5 as Tuesday to Saturday.
    fires = _fires("0 8 * * 1-5", datetime(2025, 11, 29, tzinfo=UTC), 6)
    assert [f.strftime("%a %d") for f in fires] == [
        "Mon 01",
        "Tue 02",
        "Wed 03",
        "Thu 04",
        "Fri 05",
        "Mon 08",
    ]
    sundays = _fires("0 3 * * 0", datetime(2025, 11, 29, tzinfo=UTC), 2)
    assert [f.strftime("%a %d") for f in sundays] == ["Sun 30", "Sun 07"]
    assert _fires("0 3 * * 7", datetime(2025, 11, 29, tzinfo=UTC), 1) == sundays[:1]
    every_other = _fires("0 3 * * */2", datetime(2025, 11, 30, tzinfo=UTC), 4)
    assert [f.strftime("%a") for f in every_other] == ["Sun", "Tue", "Thu", "Sat"]
    weekend = _fires("0 3 * * sat,sun", datetime(2025, 11, 27, tzinfo=UTC), 2)
    assert [f.strftime("%a") for f in weekend] == ["Sat", "Sun"]


def test_a_schedule_fires_in_its_own_time_zone() -> None:
    (fire,) = _fires("0 8 * * *", datetime(2025, 7, 1, tzinfo=UTC), 1, "Europe/Paris")
    assert fire.astimezone(UTC) == datetime(2025, 7, 1, 6, 0, tzinfo=UTC)  # CEST is UTC+2


@pytest.mark.parametrize(
    ("extra", "line", "field", "words"),
    [
        (
            'schedules:\n  - {job: sla, cron: "61 * * * *"}\n',
            6,
            "schedules[0].cron",
            "invalid crontab expression '61 * * * *': Error validating expression '61'",
        ),
        (
            'schedules:\n  - {job: sla, cron: "* * *"}\n',
            6,
            "schedules[0].cron",
            "Wrong number of fields; got 3, expected 5",
        ),
        (
            'schedules:\n  - {job: sla, cron: "0 0 * * 8"}\n',
            6,
            "schedules[0].cron",
            "weekday 8 is not 0-7",
        ),
        (
            'schedules:\n  - job: sla\n    cron: "0 0 * * *"\n    timezone: Mars/Base\n',
            8,
            "schedules[0].timezone",
            "unknown time zone 'Mars/Base'",
        ),
        (
            'schedules:\n  - job: nap\n    cron: "0 0 * * *"\n',
            6,
            "schedules[0].job",
            "expected 'digest', 'sla', 'decay', 'retrain', 'retention', 'crm_pull' or 'rfm', "
            "got 'nap'",
        ),
        (
            'schedules:\n  - job: decay\n    cron: "0 0 * * *"\n    period: day\n',
            8,
            "schedules[0].period",
            "only a digest schedule takes period, not decay",
        ),
        (
            'schedules:\n  - job: sla\n    cron: "0 0 * * *"\n    to: "#x"\n',
            8,
            "schedules[0].to",
            "only a digest schedule takes to, not sla",
        ),
        (
            'schedules:\n  - job: digest\n    cron: "0 0 * * *"\n    period: month\n',
            8,
            "schedules[0].period",
            "expected 'day' or 'week', got 'month'",
        ),
        (
            'schedules:\n  - job: digest\n    cron: "0 0 * * *"\n    to: bob\n',
            8,
            "schedules[0].to",
            "a Slack user as @U0123ABC, or a Teams destination: teams:<AAD object id>",
        ),
        (
            'schedules:\n  - job: digest\n    cron: "0 0 * * *"\n    to: ["#ok", "teams:nobody"]\n',
            8,
            "schedules[0].to",
            "item 1: expected a Microsoft Entra (AAD) object id",
        ),
        (
            'schedules:\n  - job: digest\n    cron: "0 0 * * *"\n    team: apac\n',
            8,
            "schedules[0].team",
            "unknown team 'apac' (routing.teams: emea)",
        ),
        (
            "sla:\n  remind_after_hours: 6\n  escalate_after_hours: 6\n",
            7,
            "sla.escalate_after_hours",
            "must be greater than remind_after_hours (6), got 6",
        ),
        ("sla:\n  remind_after_hours: 0\n", 6, "sla.remind_after_hours", "greater than 0"),
        ("sla:\n  escalate_to: boss\n", 6, "sla.escalate_to", "got 'boss'"),
        ("decay:\n  cooling_notice: maybe\n", 6, "decay.cooling_notice", "true or false"),
        ("retention:\n  sent_outbox_days: 0\n", 6, "retention.sent_outbox_days", "greater than 0"),
    ],
)
def test_errors_name_the_line_and_the_field(extra: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loaded(extra)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("s.yaml", line, field)
    assert words in problem.message


def test_a_digest_may_go_to_slack_and_teams_destinations() -> None:
    manager = "BBBBBBBB-0000-0000-0000-000000000002"
    config = loaded(
        f"""schedules:
  - job: digest
    cron: "0 8 * * 1"
    to: ["#sales", "@U0BOSS", "teams:{manager}", "teams:conversation:19:x@thread.tacv2",
         "teams:default"]
"""
    )
    schedule, _retention = config.schedules
    assert schedule.to == (
        "slack:#sales", "slack:@U0BOSS", f"teams:user:{manager.lower()}",
        "teams:conversation:19:x@thread.tacv2", "teams:default",
    )  # fmt: skip
