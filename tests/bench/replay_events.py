"""X Education rows as the Segment calls a real site would have sent: one ``identify`` with
the profile, then ``page`` and ``track`` calls for the behaviour the row summarises.

The mapping (one row → calls), chosen so a leadbot model can read every column a scoring
model may use (see /work/shared/data/x-education/README.md) and nothing it may not:

- ``identify``: ``userId`` = Prospect ID, ``traits`` = the profile columns under snake_case
  names (``PROFILE_TRAITS``) plus ``email`` = ``<Lead Number>@example.invalid`` (so
  ``/lead feedback`` can name the lead). Empty cells and the form placeholder ``Select`` are
  left out: a trait that is absent is what "not given" means to a fit rule.
- ``TotalVisits`` → that many ``page`` calls (``path: /courses``), each with the row's
  ``Page Views Per Visit`` as ``page_views``.
- ``Total Time Spent on Website`` (seconds) → one ``track "Time on Website"`` with
  ``minutes`` (when above 0).
- ``Last Activity`` → a ``track`` named after it; ``Last Notable Activity`` → a ``track``
  named after it with ``notable: true`` (sent even when it repeats Last Activity: they are
  two columns, and a rule with ``cap: 1`` reads them once).

Never sent: the outcome, the ids as traits, and the leak columns written after sales contact
(Tags, Lead Quality, Lead Profile, Asymmetrique …).

Times: each lead gets a base time on a simulated timeline (``timeline``), its calls follow
at fixed offsets after it (``OFFSETS``). They are payload fields; the requests themselves
are signed at the real time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

ID_COLUMN = "Prospect ID"
NUMBER_COLUMN = "Lead Number"
OUTCOME = "Converted"
EMAIL_DOMAIN = "example.invalid"
BATCH_SIZE = 100  # calls per signed request, as the ingest bench batches

PROFILE_TRAITS: Mapping[str, str] = {
    "Lead Origin": "lead_origin",
    "Lead Source": "lead_source",
    "Country": "country",
    "City": "city",
    "Specialization": "specialization",
    "What is your current occupation": "occupation",
    "What matters most to you in choosing a course": "motivation",
    "How did you hear about X Education": "heard_from",
    "Do Not Email": "do_not_email",
    "Do Not Call": "do_not_call",
    "Search": "ad_search",
    "Magazine": "ad_magazine",
    "Newspaper Article": "ad_newspaper_article",
    "X Education Forums": "ad_forums",
    "Newspaper": "ad_newspaper",
    "Digital Advertisement": "ad_digital",
    "Through Recommendations": "through_recommendations",
    "Receive More Updates About Our Courses": "wants_course_updates",
    "Update me on Supply Chain Content": "wants_supply_chain_updates",
    "Get updates on DM Content": "wants_dm_updates",
    "I agree to pay the amount through cheque": "pays_by_cheque",
    "A free copy of Mastering The Interview": "free_interview_copy",
}
BEHAVIOUR_COLUMNS = (
    "TotalVisits",
    "Total Time Spent on Website",
    "Page Views Per Visit",
    "Last Activity",
    "Last Notable Activity",
)
PLACEHOLDERS = frozenset({"", "select"})

# Seconds after the lead's base time: the identify, the first visit and the gap between
# visits, the time-on-site summary and the two activity events (after the last visit).
OFFSETS: Mapping[str, float] = {"identify": 0.0, "visit": 60.0, "visit_gap": 600.0,
                                "time": 30.0, "activity": 120.0, "notable": 180.0}  # fmt: skip


def value_of(row: Mapping[str, str], column: str) -> str | None:
    """The cell, stripped; None when empty or the form placeholder ``Select``."""
    raw = (row.get(column) or "").strip()
    return None if raw.lower() in PLACEHOLDERS else raw


def number_of(row: Mapping[str, str], column: str) -> float:
    """A numeric behaviour cell; missing counts 0 (no visits recorded, no time recorded)."""
    raw = value_of(row, column)
    if raw is None:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{column}: expected a number, got {raw!r}") from None


def email_of(row: Mapping[str, str]) -> str:
    """The address ``/lead feedback`` names the lead by."""
    number = value_of(row, NUMBER_COLUMN)
    if number is None:
        raise ValueError(f"{NUMBER_COLUMN}: empty for {row.get(ID_COLUMN)!r}")
    return f"{number}@{EMAIL_DOMAIN}"


def profile_traits(row: Mapping[str, str]) -> dict[str, Any]:
    traits: dict[str, Any] = {"email": email_of(row)}
    for column, trait in PROFILE_TRAITS.items():
        value = value_of(row, column)
        if value is not None:
            traits[trait] = value
    return traits


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def _call(kind: str, user: str, msg: str, at: float, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "userId": user, "messageId": msg, "timestamp": _iso(at), **fields}


def lead_calls(row: Mapping[str, str], base: float) -> list[dict[str, Any]]:
    """Every call for one lead, identify first, with deterministic messageIds."""
    user = value_of(row, ID_COLUMN)
    if user is None:
        raise ValueError(f"{ID_COLUMN}: empty in row of lead number {row.get(NUMBER_COLUMN)!r}")
    calls = [_call("identify", user, f"{user}:identify", base, traits=profile_traits(row))]
    visits = int(number_of(row, "TotalVisits"))
    views = number_of(row, "Page Views Per Visit")
    for i in range(visits):
        at = base + OFFSETS["visit"] + i * OFFSETS["visit_gap"]
        props = {"path": "/courses", "page_views": views}
        calls.append(_call("page", user, f"{user}:visit:{i}", at, name="Courses", properties=props))
    after = base + OFFSETS["visit"] + visits * OFFSETS["visit_gap"]
    minutes = number_of(row, "Total Time Spent on Website") / 60.0
    if minutes > 0:
        props = {"minutes": round(minutes, 2)}
        at = after + OFFSETS["time"]
        event = "Time on Website"
        calls.append(_call("track", user, f"{user}:time", at, event=event, properties=props))
    for column, key, extra in (
        ("Last Activity", "activity", {}),
        ("Last Notable Activity", "notable", {"notable": True}),
    ):
        name = value_of(row, column)
        if name is not None:
            at = after + OFFSETS[key]
            calls.append(_call("track", user, f"{user}:{key}", at, event=name, properties=extra))
    return calls


def timeline(n: int, *, end: float, span_days: float) -> list[float]:
    """Base times for ``n`` leads in feeding order, evenly over ``span_days`` up to ``end``."""
    if n <= 1:
        return [end] * n
    step = span_days * 86_400.0 / (n - 1)
    return [end - (n - 1 - i) * step for i in range(n)]


def batches(calls: Sequence[dict[str, Any]], size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    for start in range(0, len(calls), size):
        yield list(calls[start : start + size])


def replay_calls(rows: Sequence[Mapping[str, str]], *, end: float, span_days: float) -> list[Any]:
    """All leads' calls, lead after lead in the order given."""
    calls: list[Any] = []
    for row, base in zip(rows, timeline(len(rows), end=end, span_days=span_days), strict=True):
        calls.extend(lead_calls(row, base))
    return calls
