"""Past events for intent rules a model version adds: the recount before its rescore.

A lead's state keeps one decayed count per intent rule (``scoring.state``) and no list of
events, so an intent rule new to the active model (a retrain's "did Webinar Attended", an
imported model's) would count only the events that arrive after it is activated. When a
version becomes active (``activate``, ``rollback``), every intent rule whose counting differs
from the version it replaces (new, or another event, property test or half-life) is
recounted from the stored events, in the activation's transaction, before its rescore:

- the matching events are read a page at a time (``storage.intent_events``) and added to a
  fresh count per lead and rule, in any order (``IntentState.add`` is order-free);
- each lead that has such events gets the new counts; a lead that holds a count for the
  rule but has no matching event any more (the rule's id was used for other events before)
  loses it;
- then the rescore scores every lead with the counts as if the rule had always been there.

Events deleted by retention are gone: a recount counts what is stored. A page event's
properties are read again from its stored call, without the batch's shared context.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from bot.errors import InputError
from bot.ingest.inbound import parse_doc
from scoring.model import Model, Rule, RuleKind
from scoring.state import IntentState
from storage import locks
from storage.intent_events import (
    StoredEvent,
    leads_counting,
    matching_events,
    states_text,
    write_states,
)

log = logging.getLogger(__name__)
CHUNK = 500  # leads read and rewritten a statement


def _counting(rule: Rule) -> tuple[Any, ...]:
    """What decides a rule's stored count (its points and cap are applied when read)."""
    name = rule.event_name.lower() if rule.event_name else None
    return (rule.event_type, name, rule.conditions, rule.half_life_days)


def changed_intent_rules(before: Model | None, after: Model) -> list[Rule]:
    """``after``'s intent rules whose stored counts ``before`` did not keep: rules it lacks,
    or has with another event, property test or half-life. Nothing without ``before``."""
    if before is None:
        return []
    return [
        rule
        for rule in after.rules
        if rule.kind is RuleKind.INTENT
        and ((old := before.find(rule.id)) is None or _counting(old) != _counting(rule))
    ]


def _properties(event: StoredEvent) -> dict[str, Any]:
    """The properties ingest matched the event with, read again from its stored call."""
    call = event.payload or {}
    try:
        parsed = parse_doc(call, body=b"", now=event.at, lenient=True).events
    except InputError:  # not a call any more: its own properties, as they are
        parsed = []
    if parsed:
        return parsed[0].properties
    found = call.get("properties")
    return found if isinstance(found, dict) else {}


def _matches(rule: Rule, event: StoredEvent, properties: Mapping[str, Any] | None) -> bool:
    if event.type != rule.event_type:
        return False
    if rule.event_name is not None and (event.name or "").lower() != rule.event_name.lower():
        return False
    return properties is None or all(c.matches(properties) for c in rule.conditions)


def recount(conn: Connection, rules: Sequence[Rule]) -> int:
    """Recount ``rules`` for every lead from the stored events and store the new counts;
    returns how many leads' states were rewritten. Takes the ingest gate alone (PostgreSQL)
    first, as the rescore that follows does: no event is counted twice or missed."""
    rules = [r for r in rules if r.kind is RuleKind.INTENT]
    if not rules:
        return 0
    locks.enter(conn, alone=True)
    names = [r.event_name.lower() for r in rules if r.event_type == "track" and r.event_name]
    types = [r.event_type or "track" for r in rules if not r.event_name]
    tested = any(r.conditions for r in rules)
    counts: dict[str, dict[str, IntentState]] = {}
    for page in matching_events(conn, track_names=names, types=types, payload=tested):
        for event in page:
            properties = _properties(event) if tested else None
            for rule in rules:
                if not _matches(rule, event, properties if rule.conditions else None):
                    continue
                mine = counts.setdefault(event.lead_id, {})
                counted = mine.get(rule.id)
                if counted is None:
                    mine[rule.id] = IntentState(1.0, event.at, 1)
                else:
                    counted.add(event.at, rule.half_life_seconds)
    ids = [r.id for r in rules]
    leads = sorted(set(counts) | leads_counting(conn, rule_ids=ids))
    rewritten = 0
    for start in range(0, len(leads), CHUNK):
        chunk = leads[start : start + CHUNK]
        new = []
        for lead_id, stored in states_text(conn, chunk).items():
            state = orjson.loads(stored)
            intent = dict(state.get("intent") or {})
            for rid in ids:
                intent.pop(rid, None)
            for rid, c in counts.get(lead_id, {}).items():
                intent[rid] = [c.value, c.as_of, c.count]
            if intent != (state.get("intent") or {}):
                state["intent"] = intent
                new.append((orjson.dumps(state).decode(), lead_id))
        write_states(conn, new)
        rewritten += len(new)
    log.info("recounted %d intent rule(s) from stored events: %d leads", len(rules), rewritten)
    return rewritten


def recount_changed(conn: Connection, before: Model | None, after: Model) -> int:
    """The activation's hook: ``recount`` the intent rules ``after`` counts differently."""
    return recount(conn, changed_intent_rules(before, after))
