"""The digest's chart days are calendar days in the schedule's timezone, and its funnel
names what each figure counts (they are counted apart, so they need not narrow)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.digest.codec import digest_from_json, digest_to_json
from bot.digest.content import Digest, ModelHealth, Period, Scope, hot_counts
from bot.digest.plain import render_text
from bot.slack.digest_blocks import digest_blocks
from bot.teams.digest_card import digest_card
from storage.digests import HotEntry, LeadName

# Fri 27 Nov 12:00 → Fri 4 Dec 12:00 UTC: a weekly digest's period
WEEK = Period(datetime(2026, 11, 27, 12, tzinfo=UTC), datetime(2026, 12, 4, 12, tzinfo=UTC))


def entry(at: datetime) -> HotEntry:
    return HotEntry(LeadName("l1", "Dana", None, None), at, 80.0, None, None)


def by_day(counts: tuple[tuple[datetime, int], ...]) -> dict[str, int]:
    return {start.strftime("%a %d"): n for start, n in counts if n}


def test_a_lead_hot_just_after_midnight_lands_in_that_days_bucket() -> None:
    counts, bucket = hot_counts([entry(datetime(2026, 12, 3, 0, 30, tzinfo=UTC))], WEEK)
    assert bucket == timedelta(days=1)
    assert by_day(counts) == {"Thu 03": 1}  # not "Wed 02", where the 12:00 window began
    starts = [start for start, _ in counts]
    assert starts[0] == datetime(2026, 11, 27, tzinfo=UTC)  # the first day, partial
    assert starts[-1] == datetime(2026, 12, 4, tzinfo=UTC)  # the last day, partial
    assert len(starts) == 8


def test_days_follow_the_schedules_timezone() -> None:
    paris = ZoneInfo("Europe/Paris")
    late = entry(datetime(2026, 12, 2, 23, 30, tzinfo=UTC))  # Thu 03 00:30 in Paris
    assert by_day(hot_counts([late], WEEK)[0]) == {"Wed 02": 1}
    counts, _ = hot_counts([late], WEEK, paris)
    assert by_day(counts) == {"Thu 03": 1}
    assert all(start.hour == 0 for start, _ in counts)  # Paris midnights
    # the stored digest keeps the offset, so the chart names the same days once decoded
    digest = sample(counts)
    again = digest_from_json(json.loads(json.dumps(digest_to_json(digest))))
    assert by_day(again.hot_counts) == {"Thu 03": 1}


def sample(counts: tuple[tuple[datetime, int], ...]) -> Digest:
    return Digest(
        period=WEEK, scope=Scope.everyone(), now=WEEK.end, sla_hours=24.0, new_hot=(),
        waiting=(),
        funnel=(("new", 4), ("hot", 21), ("claimed", 0), ("qualified", 23), ("won", 18)),
        by_band=(), by_grade=(), warnings=(), reps=(), heating=(), cooling=(),
        model=ModelHealth(None, "configured", None, 0, None, ()),
        hot_counts=counts, bucket=timedelta(days=1),
    )  # fmt: skip


def test_the_funnel_names_what_each_number_counts_in_every_renderer() -> None:
    digest = sample(hot_counts([], WEEK)[0])
    line = "new leads 4 · turned hot 21 · claimed 0 · labelled qualified 23 · won 18"
    assert f"Funnel (each counted in the period): {line}" in render_text(digest)
    slack = json.dumps(digest_blocks(digest)[0], ensure_ascii=False)
    assert line in slack
    teams = json.dumps(digest_card(digest), ensure_ascii=False)
    assert r"Funnel \\(each counted in the period\\)" in teams  # Markdown-escaped, in JSON
    for label, n in (("new leads", 4), ("turned hot", 21), ("labelled qualified", 23)):
        assert json.dumps({"title": label, "value": str(n)}, ensure_ascii=False)[1:-1] in teams
