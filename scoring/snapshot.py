"""What a label remembers of the lead beyond the model's rules: its traits and its events.

The learner builds candidate rules from these snapshots (rules the active model does not have
yet), so a snapshot holds what a rule could match, as the lead was when it was judged, and
nothing a rule must not use: no personal data (e-mail addresses, names), and the traits
that would leak the outcome are left out when the learner reads it (``without``).

A snapshot is small and bounded: ``{"traits": {dotted path: scalar}, "events": {"type:name":
[count, first, last]}, "numbers": {"type:name": {property: [n, min, max]}}, "flags":
{"type:name": {property: [true, false]}}}`` with at most ``MAX_TRAITS`` traits (a name of at
most ``MAX_PATH`` characters, a text value cut to ``MAX_TEXT``), the event names the lead was
seen doing most recently (at most ``storage.labels.MAX_EVENT_NAMES``) and, per such name, the
numeric top-level properties its events carried (at most ``MAX_NUMBERS``, the most often
carried first): how many events carried one, its least and its greatest value; and its
yes/no properties (at most ``MAX_FLAGS``): how many events carried each as true, how many as
false. That is enough to read a rule "did Time on Website with minutes at least 12" (cap 1,
no decay) exactly: some event reached 12 exactly when the greatest value did; and "did Email
Opened with notable true": some event carried it when the count of trues is above 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

# A wide export (a CRM's 100-odd columns) fits whole: a trait left out is one no rule can
# be learned on. A name is kept whole or not at all (a cut name is no path a rule can read).
MAX_TRAITS = 200
MAX_PATH = 200
MAX_TEXT = 100
MAX_DEPTH = 4
MAX_NUMBERS = 8  # numeric properties kept per event name
MAX_FLAGS = 8  # yes/no properties kept per event name
# Personal data the learner never needs; matched on a trait's last path segment, any case.
PERSONAL = frozenset(
    {"email", "firstname", "lastname", "first_name", "last_name", "name", "phone", "username"}
)
# Traits a CRM import sets from the outcome itself (README: Connect your CRM): a rule on them
# would learn the label. ``learning.exclude_traits`` in the config replaces this list.
LEAKS = ("lifecycle_stage", "lead_status", "converted")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")

Scalar = str | int | float | bool


def flatten(
    traits: Mapping[str, Any], prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, Scalar]]:
    """``(dotted path, value)`` for every scalar under ``traits`` (lists and deeper objects
    are skipped: no rule condition reads them)."""
    for key, value in traits.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if depth < MAX_DEPTH:
                yield from flatten(value, path + ".", depth + 1)
        elif isinstance(value, Scalar) and value == value:  # not nan
            yield path, value


def _personal(path: str) -> bool:
    return path.rsplit(".", 1)[-1].lower() in PERSONAL


def trait_snapshot(traits: Mapping[str, Any]) -> dict[str, Scalar]:
    """The lead's scalar traits, flattened and bounded, without personal data: names and
    e-mail addresses (under any key) are dropped, text is cut to ``MAX_TEXT`` characters,
    paths over ``MAX_PATH`` left out, and the first ``MAX_TRAITS`` in sorted order kept."""
    kept: dict[str, Scalar] = {}
    for path, value in sorted(flatten(traits), key=lambda item: item[0]):
        if _personal(path) or len(path) > MAX_PATH:
            continue
        if isinstance(value, str):
            if _EMAIL.search(value):
                continue
            value = value[:MAX_TEXT]
        kept[path] = value
        if len(kept) == MAX_TRAITS:
            break
    return kept


def as_number(value: Any) -> float | None:
    """A property value as a ``range`` condition reads it (``scoring.model``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def carried_summary(
    events: Iterable[tuple[str, Mapping[str, Any]]],
) -> dict[str, tuple[dict[str, list[float]], dict[str, list[float]]]]:  # (numbers, flags)
    """Per ``type:name`` key, what the top-level properties of its events (``(key,
    properties)`` pairs) carried: ``(numbers, flags)``, numbers ``{property: [n, min,
    max]}`` (the ``MAX_NUMBERS`` carried most often, then by name) and yes/no properties
    ``{property: [times true, times false]}`` (the ``MAX_FLAGS`` carried most often)."""
    numbers: dict[str, dict[str, list[float]]] = {}  # ``type:name`` → {property: [...]}
    flags: dict[str, dict[str, list[float]]] = {}
    for key, properties in events:
        mine, yes_no = numbers.setdefault(key, {}), flags.setdefault(key, {})
        for prop, value in properties.items():
            if not prop:
                continue
            if isinstance(value, bool):
                counted = yes_no.setdefault(prop, [0, 0])
                counted[0 if value else 1] += 1
            elif (number := as_number(value)) is not None:
                have = mine.get(prop)
                if have is None:
                    mine[prop] = [1, number, number]
                else:
                    have[0] += 1
                    have[1], have[2] = min(have[1], number), max(have[2], number)
    found = {}
    for key in numbers:
        kept = _most_carried(numbers[key], MAX_NUMBERS, lambda v: v[0])
        told = _most_carried(flags[key], MAX_FLAGS, lambda v: v[0] + v[1])
        if kept or told:
            found[key] = (kept, told)
    return found


def _most_carried(
    props: dict[str, list[float]], most: int, carried: Callable[[list[float]], float]
) -> dict[str, list[float]]:
    return dict(sorted(props.items(), key=lambda kv: (-carried(kv[1]), kv[0]))[:most])


def lead_snapshot(traits: Mapping[str, Any], events: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The snapshot a label stores: ``trait_snapshot(traits)`` and the lead's event counts
    up to that moment (``type:name`` → ``[count, first, last]``, optionally followed by that
    name's numbers and flags, ``carried_summary``, read from its stored events:
    ``storage.labels.event_counts``), the numbers and flags kept apart."""
    counts = {k: list(v[:3]) for k, v in events.items()}
    numbers = {k: dict(v[3]) for k, v in events.items() if len(v) > 3 and v[3]}
    flags = {k: dict(v[4]) for k, v in events.items() if len(v) > 4 and v[4]}
    # ``numbers`` and ``flags`` always, even empty: a snapshot without the key predates it,
    # and what it would hold is read from the stored events (``bot.models.snapshots``).
    return {"traits": trait_snapshot(traits), "events": counts, "numbers": numbers, "flags": flags}


def without(snapshot: Mapping[str, Any], excluded: Collection[str]) -> dict[str, Any]:
    """``snapshot`` without the traits named in ``excluded`` (a dotted path, or a last path
    segment, any case): what the learner may use of it."""
    drop = {name.lower() for name in excluded}
    traits = {
        path: value
        for path, value in (snapshot.get("traits") or {}).items()
        if path.lower() not in drop and path.rsplit(".", 1)[-1].lower() not in drop
    }
    kept = {"traits": traits, "events": dict(snapshot.get("events") or {})}
    for part in ("numbers", "flags"):
        if part in snapshot:
            kept[part] = dict(snapshot[part] or {})
    return kept


def named_events(snapshot: Mapping[str, Any], kind: str = "track") -> dict[str, list[float]]:
    """The snapshot's events of one type by lower-cased name (as the engine matches a rule's
    ``event_name``): ``[count, first, last]``, names that differ only in case merged."""
    found: dict[str, list[float]] = {}
    for key, (count, first, last, *_) in (snapshot.get("events") or {}).items():
        typ, _, name = key.partition(":")
        if typ != kind or not name.strip():
            continue
        have = found.get(name.lower())
        if have is None:
            found[name.lower()] = [float(count), float(first), float(last)]
        else:
            found[name.lower()] = [have[0] + count, min(have[1], first), max(have[2], last)]
    return found


def type_events(snapshot: Mapping[str, Any], kind: str = "page") -> list[float] | None:
    """All the snapshot's events of one type, whatever their name: ``[count, first, last]``
    (what an intent rule on every ``page`` counts), or None when it has none."""
    found = list(named_events(snapshot, kind).values())
    if not found:
        return None
    return [sum(f[0] for f in found), min(f[1] for f in found), max(f[2] for f in found)]


def _by_event(
    snapshot: Mapping[str, Any], part: str, kind: str, name: str | None
) -> Iterator[dict[str, list[float]]]:
    """The snapshot's ``part`` ("numbers" or "flags") of its events of ``kind`` named
    ``name`` (any case; None: every name of that type), one event name at a time."""
    for key, props in (snapshot.get(part) or {}).items():
        typ, _, have = key.partition(":")
        if typ == kind and (name is None or have.lower() == name.lower()):
            yield props


def event_numbers(
    snapshot: Mapping[str, Any], kind: str, name: str | None
) -> dict[str, list[float]]:
    """``{property: [n, min, max]}`` over the snapshot's events of ``kind`` named ``name``
    (any case; None: every name of that type), merged."""
    merged: dict[str, list[float]] = {}
    for props in _by_event(snapshot, "numbers", kind, name):
        for prop, (n, low, high) in props.items():
            was = merged.get(prop)
            merged[prop] = (
                [n, low, high] if was is None else [was[0] + n, min(was[1], low), max(was[2], high)]
            )
    return merged


def event_flags(snapshot: Mapping[str, Any], kind: str, name: str | None) -> dict[str, list[float]]:
    """``{property: [times true, times false]}`` over the snapshot's events of ``kind``
    named ``name`` (any case; None: every name of that type), summed."""
    merged: dict[str, list[float]] = {}
    for props in _by_event(snapshot, "flags", kind, name):
        for prop, (yes, no) in props.items():
            was = merged.get(prop, [0, 0])
            merged[prop] = [was[0] + yes, was[1] + no]
    return merged


def event_carried(
    snapshot: Mapping[str, Any], part: str, kind: str, name: str | None
) -> dict[str, list[float]]:
    """``event_numbers`` (``part`` "numbers") or ``event_flags`` ("flags")."""
    return (event_numbers if part == "numbers" else event_flags)(snapshot, kind, name)


def decayed_count(
    counts: Sequence[float], at: float, half_life: float | None, cap: float | None
) -> float:
    """``scoring.engine.feature`` of an intent rule at ``at`` from ``[count, first, last]``:
    exact for no decay and for one or two events; more events are taken as evenly spaced
    between the first and the last (a snapshot keeps no more)."""
    n, first, last = int(counts[0]), float(counts[1]), float(counts[2])
    if n <= 0:
        return 0.0
    if half_life is None:
        value = float(n)
    else:
        gap = (last - first) / (n - 1) if n > 1 else 0.0
        ratio = 2.0 ** (-gap / half_life)  # each older event weighs this much of the next
        newest = 2.0 ** (-max(0.0, at - last) / half_life)
        value = newest * (n if ratio >= 1.0 else (1.0 - ratio**n) / (1.0 - ratio))
    return value if cap is None else min(cap, value)
