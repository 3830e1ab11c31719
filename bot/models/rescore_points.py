"""A rescore's points: what every stored lead state scores under a model at a time, worked
out from the states' JSON text with numpy (``bot.models.rescore`` writes them).

Pure and light on purpose: numpy, orjson and ``scoring`` only, so the helper process that
works pages out beside the rescore's writes (``bot.models.rescore_helper``) starts in a
tenth of a second. States are told apart by ``state_keys``: a 64-bit key of their text that
is the same in every process (Python's ``hash`` of a str is seeded per process).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from scoring.engine import scaled_points
from scoring.model import DAY, Model, Rule, RuleKind, lookup
from scoring.state import LeadState


def state_key(text: str) -> int:
    """A stored state's key: its CRC-32 and Adler-32, one 64-bit number. Equal texts have
    equal keys in every process; two texts a rescore confuses would need both checksums
    equal."""
    data = text.encode()
    return zlib.crc32(data) << 32 | zlib.adler32(data)


def state_keys(texts: Iterable[str], count: int) -> np.ndarray:
    return np.fromiter(map(state_key, texts), dtype=np.uint64, count=count)


@dataclass(frozen=True)
class Known:
    """Fit and intent points of stored states already worked out for one model at one
    ``now``, and whether the state's fit set changes: 25 bytes a lead, in numpy arrays
    sorted by the state's key (``state_key`` of its stored JSON text). Points depend
    on nothing but the state, so a lead whose stored text is the same as when it was worked
    out reuses them; one whose text changed (written since) misses and is worked out again."""

    keys: np.ndarray
    fit: np.ndarray
    intent: np.ndarray
    changed: np.ndarray
    # The refitted state's text, where the fit set changes and whoever worked it out wrote
    # it (the helper process does): the rescore then writes it without decoding the state.
    texts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.keys.size)

    @staticmethod
    def of(parts: Sequence[Worked]) -> Known:
        keys = np.concatenate([p.keys for p in parts]) if parts else np.zeros(0, np.uint64)
        order = np.argsort(keys, kind="stable")

        def column(name: str, dtype: Any) -> np.ndarray:
            if not parts:
                return np.zeros(0, dtype)
            return np.concatenate([getattr(p, name) for p in parts])[order]

        texts = None
        if any(p.texts is not None for p in parts):
            texts = np.concatenate([_texts_of(p) for p in parts])[order]
        return Known(keys[order], column("fit", float), column("intent", float),
                     column("changed", bool), texts)  # fmt: skip

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, where) for each key."""
        if not self.keys.size:
            return np.zeros(keys.size, bool), np.zeros(keys.size, np.intp)
        where = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return self.keys[where] == keys, where


@dataclass
class Worked:
    """A chunk's leads worked out: state keys, points, whether the fit set changed; for the
    leads decoded here, their state dict and new fit set (by index in the chunk)."""

    keys: np.ndarray
    fit: np.ndarray
    intent: np.ndarray
    changed: np.ndarray
    decoded: dict[int, tuple[dict[str, Any], frozenset[str]]]
    texts: np.ndarray | None = None  # as ``Known.texts``, by index in the chunk

    def text(self, i: int) -> str | None:
        """Lead ``i``'s refitted state text, if it came worked out."""
        return None if self.texts is None else self.texts[i]

    def with_texts(self) -> Worked:
        """The refitted state text of every lead whose fit set changes (all decoded here)."""
        texts = np.full(self.keys.size, None, dtype=object)
        for i in np.flatnonzero(self.changed).tolist():
            texts[i] = refitted(*self.decoded[i])
        return Worked(self.keys, self.fit, self.intent, self.changed, {}, texts)


def _texts_of(part: Worked) -> np.ndarray:
    if part.texts is not None:
        return part.texts
    return np.full(part.keys.size, None, dtype=object)


def refitted(state: dict[str, Any], fit: frozenset[str]) -> str:
    """A decoded state with its new fit set, as the text to store (``LeadState.refit``)."""
    lead = LeadState.from_dict(state)
    lead.fit = fit
    return orjson.dumps(lead.to_dict()).decode()


EMPTY = Known.of([])


@dataclass(frozen=True)
class Plan:
    """What a model's feature matrix needs, worked out once per rescore."""

    model: Model
    column: Mapping[str, int]
    intent_column: Mapping[str, int]
    gated: Mapping[int, Rule]  # intent rules with ``lead`` conditions, by column
    points: np.ndarray
    half_life: np.ndarray
    cap: np.ndarray
    no_traits_fit: frozenset[str]
    fit_sets: FitSets
    _fit_points: dict[frozenset[str], float] = field(default_factory=dict)

    def fit_points(self, fit: frozenset[str]) -> float:
        """The points of a fit set (sets repeat: ``FitSets`` hands out the same ones)."""
        points = self._fit_points.get(fit)
        if points is None:
            if len(self._fit_points) > FitSets.MEMO:
                self._fit_points.clear()
            points = self._fit_points[fit] = float(
                sum(self.points[self.column[rid]] for rid in fit)
            )
        return points

    @staticmethod
    def of(model: Model) -> Plan:
        rules = model.rules
        return Plan(
            model=model,
            column={r.id: j for j, r in enumerate(rules)},
            intent_column={r.id: j for j, r in enumerate(rules) if r.kind is RuleKind.INTENT},
            gated={j: r for j, r in enumerate(rules) if r.kind is RuleKind.INTENT and r.lead},
            points=np.array([r.points for r in rules], dtype=float),
            half_life=np.array([r.half_life_seconds or np.inf for r in rules]),
            cap=np.array([np.inf if r.cap is None else r.cap for r in rules]),
            no_traits_fit=fit_set(model, {}),
            fit_sets=FitSets(model),
        )


_SCALARS = (str, int, float, bool, type(None))


class FitSets:
    """``fit_set`` for many leads, remembered: a condition depends on its path's value
    alone, and leads share titles, industries, countries and sizes. A lead whose values on
    every path the rules read were seen before (its profile) costs one dict look-up; else
    each condition's answer is remembered per value (a regular expression runs once per
    title). Keys carry the values' types: 1, 1.0 and True are equal in Python but not to
    every condition. Each memory is cleared past ``MEMO`` entries, so it stays bounded."""

    MEMO = 200_000

    def __init__(self, model: Model) -> None:
        conditions = list(dict.fromkeys(c for r in model.fit_rules for c in r.conditions))
        index = {c: j for j, c in enumerate(conditions)}
        self._conditions = conditions
        self._paths = list(dict.fromkeys(c.path for c in conditions))
        self._rules = [(r.id, [index[c] for c in r.conditions]) for r in model.fit_rules]
        self._memo: dict[tuple[int, type, Any], bool] = {}
        self._profiles: dict[tuple[tuple[Any, ...], tuple[type, ...]], frozenset[str]] = {}

    def of(self, traits: Mapping[str, Any]) -> frozenset[str]:
        values = [lookup(traits, path) for path in self._paths]
        if all(isinstance(v, _SCALARS) for v in values):  # the whole profile seen before?
            key = (tuple(values), tuple(map(type, values)))
            known = self._profiles.get(key)
            if known is None:
                if len(self._profiles) > self.MEMO:
                    self._profiles.clear()
                known = self._profiles[key] = self._match(traits, values)
            return known
        return self._match(traits, values)

    def _match(self, traits: Mapping[str, Any], listed: list[Any]) -> frozenset[str]:
        values = dict(zip(self._paths, listed, strict=True))
        memo = self._memo
        if len(memo) > self.MEMO:
            memo.clear()
        answers = []
        for j, condition in enumerate(self._conditions):
            value = values[condition.path]
            if not isinstance(value, _SCALARS):
                answers.append(condition.matches(traits))
                continue
            key = (j, type(value), value)
            answer = memo.get(key)
            if answer is None:
                answer = memo[key] = condition.matches(traits)
            answers.append(answer)
        return frozenset(rid for rid, needs in self._rules if all(answers[j] for j in needs))


def fit_set(model: Model, traits: Mapping[str, Any]) -> frozenset[str]:
    """``LeadState.refit``'s fit set for these traits."""
    return frozenset(r.id for r in model.fit_rules if all(c.matches(traits) for c in r.conditions))


def work(states: Sequence[str], known: Known, plan: Plan, now: float, *, keep: bool) -> Worked:
    """Points for a chunk of stored states (their JSON text): from ``known`` where the
    state is the same, else worked out from the decoded state. With ``keep``, leads whose
    fit set changes are decoded even when known (their new state must be written), and
    decoded states are kept."""
    keys = state_keys(states, len(states))
    found, where = known.find(keys)
    changed = found & known.changed[where] if len(known) else np.zeros(len(states), bool)
    fit = np.where(found, known.fit[where] if len(known) else 0.0, 0.0)
    intent = np.where(found, known.intent[where] if len(known) else 0.0, 0.0)
    texts: np.ndarray | None = None
    rewrite = changed  # leads whose new state text must be made here
    if known.texts is not None:  # refitted texts come with the points: nothing to decode
        texts = np.full(len(states), None, dtype=object)
        hit = found & changed
        texts[hit] = known.texts[where[hit]]
        rewrite = changed & np.fromiter((t is None for t in texts), bool, count=len(states))
    again = np.flatnonzero(~found | rewrite) if keep else np.flatnonzero(~found)
    decoded: dict[int, tuple[dict[str, Any], frozenset[str]]] = {}
    if again.size:
        dicts = [orjson.loads(states[i]) for i in again.tolist()]
        fits = [_refit(s, plan) for s in dicts]
        fit[again], intent[again] = _points(dicts, fits, plan, now)
        changed[again] = [
            f != frozenset(s.get("fit") or ()) for s, f in zip(dicts, fits, strict=True)
        ]
        if keep:
            decoded = {int(i): (s, f) for i, s, f in zip(again, dicts, fits, strict=True)}
    return Worked(keys, fit, intent, changed, decoded, texts)


def _refit(state: Mapping[str, Any], plan: Plan) -> frozenset[str]:
    traits = state.get("traits")
    return plan.fit_sets.of(traits) if traits else plan.no_traits_fit


def _points(
    states: Sequence[Mapping[str, Any]], fits: Sequence[frozenset[str]], plan: Plan, now: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fit and intent points of decoded states (``fits``: their refitted fit sets), as
    ``_matrix`` times the points, without the dense matrix: a fit set's points are summed
    once per set, and intent cells (about five a lead) are scored where they are."""
    n = len(states)
    fit = np.fromiter((plan.fit_points(f) for f in fits), dtype=float, count=n)
    if plan.model.scaled_rules:
        fit += _scaled_points(states, plan.model)
    intent_column = plan.intent_column
    at, cols, values, as_of = [], [], [], []
    since = np.empty(n)
    gated = plan.gated
    for i, state in enumerate(states):
        for rid, counted in (state.get("intent") or {}).items():
            j = intent_column.get(rid)
            if j is not None and (j not in gated or gated[j].admits(state.get("traits") or {})):
                at.append(i)
                cols.append(j)
                values.append(counted[0])
                as_of.append(counted[1])
        since[i] = _since(state)
    intent: np.ndarray = np.zeros(n)
    if at:
        rule = np.array(cols, dtype=np.intp)
        elapsed = np.maximum(0.0, now - np.array(as_of, dtype=float))
        value = np.array(values, dtype=float) * np.power(2.0, -elapsed / plan.half_life[rule])
        weights = np.minimum(plan.cap[rule], value) * plan.points[rule]
        intent = np.bincount(np.array(at, dtype=np.intp), weights=weights, minlength=n)
    with np.errstate(invalid="ignore"):
        for idle in plan.model.inactivity_rules:
            if idle.inactive_days is not None:
                intent += (now - since >= idle.inactive_days * DAY) * idle.points
    return fit, intent


def _scaled_points(states: Sequence[Mapping[str, Any]], model: Model) -> np.ndarray:
    """The points of the model's scaled rules, read off each decoded state's traits."""
    found = (scaled_points(model, s.get("traits") or {}) for s in states)
    return np.fromiter(found, dtype=float, count=len(states))


def _since(state: Mapping[str, Any]) -> float | None:
    """When inactivity counts from, as ``LeadState``: the last activity, else the first
    sighting (a first_seen of 0.0 counts as none there), else never (nan)."""
    active = state.get("active_at")
    if active is not None:
        return float(active)
    return state.get("first_seen") or np.nan
