"""Labels carry the lead's snapshot; labels from before it are read with the lead's traits
now and its stored events up to the label's time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import apply_action, features_at
from bot.chat.messages import Action, Actor
from bot.models.snapshots import labelled_snapshots
from bot.models.versions import labelled_features
from scoring.model import Condition, Op, Rule, RuleKind
from scoring.state import LeadState
from storage.ingest import upsert_leads
from storage.labels import MAX_EVENT_NAMES, event_counts, labels_of
from storage.tables import Event, Feedback
from tests.bot.models.test_versions import MODEL, NOW, _row

FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _state(industry: str) -> LeadState:
    state = LeadState()
    traits = {"email": "dana@acme.io", "firstName": "Dana", "lifecycle_stage": "customer",
              "company": {"industry": industry}}  # fmt: skip
    state.identify(traits, MODEL, NOW - 100)
    return state


def _event(lead_id: str, n: int, kind: str, name: str | None, ts: float) -> dict[str, Any]:
    return {"message_id": f"{lead_id}-{n}", "lead_id": lead_id, "type": kind, "name": name,
            "timestamp": _at(ts), "received_at": _at(ts), "payload": {}}  # fmt: skip


def _label(lead_id: str, ts: float, features: dict[str, Any]) -> dict[str, Any]:
    return {"lead_id": lead_id, "outcome": "won", "by": "U1", "reason": None, "at": _at(ts),
            "features": features, "source": "rep"}  # fmt: skip


FLAGS = {"track:Webinar Joined": {"live": [1, 0]}}


async def _store(
    engine: AsyncEngine, states: dict[str, LeadState], *tables: tuple[Any, list[dict[str, Any]]]
) -> None:
    async with engine.begin() as conn:
        rows = [_row(k, s, MODEL) for k, s in states.items()]
        await conn.run_sync(lambda c: upsert_leads(c, rows=rows))
        for table, values in tables:
            if values:
                await conn.execute(table.insert(), values)


COUNTED = {"track:Webinar Joined": [2, NOW - 50, NOW - 40], "page:": [1, NOW - 30, NOW - 30]}
EVENT_ROWS = [
    _event("lead-2", 1, "track", "Webinar Joined", NOW - 50),
    _event("lead-2", 2, "track", "Webinar Joined", NOW - 40)
    | {"payload": {"type": "track", "properties": {"live": True}}},
    _event("lead-2", 3, "page", None, NOW - 30),
    _event("lead-2", 4, "identify", None, NOW - 30),  # not an event a rule counts
    _event("lead-2", 5, "track", "Trial Started", NOW + 10),  # after the label: left out
]


async def test_snapshots_stored_then_and_read_now_for_older_labels(engine: AsyncEngine) -> None:
    then, later = _state("Software"), _state("Retail")  # lead-2's label predates snapshots
    old = {k: v for k, v in features_at(later, MODEL, NOW).items() if k != "lead"}
    stored = features_at(then, MODEL, NOW, events={"track:Demo": (1, NOW - 9, NOW - 9)})
    labels = [_label("lead-1", NOW, stored), _label("lead-2", NOW, old), _label("gone", NOW, old)]
    await _store(
        engine, {"lead-1": then, "lead-2": later}, (EVENTS, EVENT_ROWS), (FEEDBACK, labels)
    )
    async with engine.connect() as conn:
        snaps = await conn.run_sync(lambda c: labelled_snapshots(c, labels_of(c, outcomes=["won"])))
    domain = {"email_domain": "acme.io"}
    assert snaps == [
        {"traits": {"company.industry": "Software", **domain},
         "events": {"track:Demo": [1, NOW - 9, NOW - 9]}, "numbers": {}, "flags": {}},
        {"traits": {"company.industry": "Retail", **domain},
         "events": COUNTED, "numbers": {}, "flags": FLAGS},
        {"traits": {}, "events": {}, "numbers": {}, "flags": {}},  # a lead deleted since
    ]  # fmt: skip


async def test_a_click_stores_traits_and_events_without_personal_data(
    engine: AsyncEngine,
) -> None:
    await _store(engine, {"lead-2": _state("Software")}, (EVENTS, EVENT_ROWS))
    result = await apply_action(
        engine=engine, model=MODEL, action=Action.QUALIFY, lead_id="lead-2",
        actor=Actor("slack", "U1"), now=NOW,
    )  # fmt: skip
    assert result.changed
    async with engine.connect() as conn:
        [features] = (await conn.execute(select(FEEDBACK.c.features))).scalars()
    assert features["lead"] == {
        "traits": {  # stored; the learner drops lifecycle_stage when it reads it
            "company.industry": "Software",
            "email_domain": "acme.io",
            "lifecycle_stage": "customer",
        },
        "events": {
            "track:Webinar Joined": [2, NOW - 50, NOW - 40],
            "page:": [1, NOW - 30, NOW - 30],
        },
        "numbers": {},
        "flags": FLAGS,  # a yes/no property its events carried
    }
    assert "dana" not in str(features["lead"]).lower()


async def test_event_counts_keep_the_names_seen_most_recently(engine: AsyncEngine) -> None:
    rows = [_event("lead-1", i, "track", f"e{i}", NOW - 1000 + i) for i in range(40)]
    await _store(engine, {"lead-1": _state("Software")}, (EVENTS, rows))
    async with engine.connect() as conn:
        counts = await conn.run_sync(lambda c: event_counts(c, lead_id="lead-1", until=_at(NOW)))
    assert sorted(counts) == sorted(f"track:e{i}" for i in range(40 - MAX_EVENT_NAMES, 40))


async def test_a_fit_rule_added_since_a_label_is_read_from_its_traits(
    engine: AsyncEngine,
) -> None:
    """A rule a retrain added: old labels did not store its feature; the next refit reads
    it from each label's traits as they were (lead-1 was Retail then, Software now)."""
    retail, software = _state("Retail"), _state("Software")
    labels = [
        _label("lead-1", NOW, features_at(retail, MODEL, NOW)),
        _label("lead-2", NOW + 1, features_at(software, MODEL, NOW)),
    ]
    await _store(engine, {"lead-1": software, "lead-2": software}, (FEEDBACK, labels))
    condition = Condition(("company", "industry"), Op.EQUALS, "Retail")
    retail_rule = Rule("industry_retail", "company.industry is Retail", RuleKind.FIT, 5.0,
                       (condition,))  # fmt: skip
    model = replace(MODEL, rules=(*MODEL.rules, retail_rule))
    async with engine.connect() as conn:
        X, _, _ = await conn.run_sync(lambda c: labelled_features(c, model, {"won": 1.0}))
    assert X[:, -1].tolist() == [1.0, 0.0]
    software_rule = [r.id for r in model.rules].index("industry_software")
    assert X[:, software_rule].tolist() == [0.0, 1.0]  # stored features stay as they were


async def test_an_older_label_reads_its_events_numbers_up_to_its_time(
    engine: AsyncEngine,
) -> None:
    def timed(n: int, minutes: Any, ts: float) -> dict[str, Any]:
        row = _event("lead-3", n, "track", "Time on Website", ts)
        return row | {"payload": {"type": "track", "properties": {"minutes": minutes}}}

    # a number as text counts, a word does not; the last is after the label: left out
    rows = [timed(1, 4, NOW - 50), timed(2, "12.5", NOW - 40), timed(3, "n/a", NOW - 35),
            timed(4, 99, NOW + 10)]  # fmt: skip
    old = {k: v for k, v in features_at(_state("Retail"), MODEL, NOW).items() if k != "lead"}
    counted = {"track:Time on Website": [3, NOW - 50, NOW - 35]}
    # a snapshot stored before snapshots kept numbers: read from the events the same way
    unnumbered = old | {"lead": {"traits": {}, "events": counted}}
    feedback = [_label("lead-3", NOW, old), _label("lead-3", NOW, unnumbered)]
    await _store(engine, {"lead-3": _state("Retail")}, (EVENTS, rows), (FEEDBACK, feedback))
    async with engine.connect() as conn:
        labels = await conn.run_sync(lambda c: labels_of(c, outcomes=["won"]))
        snaps = await conn.run_sync(lambda c: labelled_snapshots(c, labels))
        now = await conn.run_sync(lambda c: event_counts(c, lead_id="lead-3", until=_at(NOW)))
    for snap in snaps:
        assert snap["events"] == counted
        assert snap["numbers"] == {"track:Time on Website": {"minutes": [2, 4.0, 12.5]}}
    assert now["track:Time on Website"][3] == {"minutes": [2, 4.0, 12.5]}  # labelling time


async def test_a_label_stored_before_snapshots_kept_flags_reads_them_from_its_events(
    engine: AsyncEngine,
) -> None:
    def opened(n: int, props: dict[str, Any], ts: float) -> dict[str, Any]:
        row = _event("lead-4", n, "track", "Email Opened", ts)
        return row | {"payload": {"type": "track", "properties": props}}

    # "yes" is a word, not a flag; the last event is after the label: left out
    rows = [opened(1, {"notable": True, "n": 2}, NOW - 50), opened(2, {"notable": False}, NOW - 40),
            opened(3, {"notable": "yes"}, NOW - 35), opened(4, {"notable": True}, NOW + 10),
            opened(5, {"bounced": False}, NOW - 30)]  # fmt: skip
    old = {k: v for k, v in features_at(_state("Retail"), MODEL, NOW).items() if k != "lead"}
    counted = {"track:Email Opened": [4, NOW - 50, NOW - 30]}
    kept = {"track:Email Opened": {"n": [1, 7.0, 7.0]}}  # stored: stays as it was
    feedback = [_label("lead-4", NOW, old | {"lead": {"traits": {}, "events": counted,
                                                      "numbers": kept}})]  # fmt: skip
    await _store(engine, {"lead-4": _state("Retail")}, (EVENTS, rows), (FEEDBACK, feedback))
    async with engine.connect() as conn:
        labels = await conn.run_sync(lambda c: labels_of(c, outcomes=["won"]))
        (snap,) = await conn.run_sync(lambda c: labelled_snapshots(c, labels))
        now = await conn.run_sync(lambda c: event_counts(c, lead_id="lead-4", until=_at(NOW)))
    flags = {"track:Email Opened": {"notable": [1, 1], "bounced": [0, 1]}}
    assert snap["numbers"] == kept
    assert snap["flags"] == flags
    assert now["track:Email Opened"][3:] == [{"n": [1, 2.0, 2.0]}, flags["track:Email Opened"]]
