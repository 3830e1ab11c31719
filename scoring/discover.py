"""New rules from labelled snapshots: the signals a model does not know yet.

A refit (``scoring.refit``) moves the points of the rules a model has. This module proposes
rules it lacks, from the traits each label's snapshot holds (``scoring.snapshot``):

1. **Candidates**, with the binning ``leadbot learn`` uses (``scoring.binning``): ``equals``
   per well-supported category and ``one_of`` for the rare ones pooled, ``range`` bins at
   quantiles of a numeric trait and open "at least X" steps at twice as many (a staircase,
   when several are kept), points in proportion to a numeric trait between its 1st and
   99th percentiles (a ``scale``), ``exists: false`` for a trait often missing, ``equals``
   true/false for a yes/no trait. Id-like traits (``scoring.leaks``) give none. Labels are
   written from the data: "Lead Source is Reference", "pdays under 6".
2. **Selection**, forward and penalised: each round fits every remaining candidate's weight
   (L2-penalised logistic regression, the model's current log-odds as an offset) on all
   folds but one and scores the one left out; the candidate that lowers the held-out log
   loss most is kept, with its weight fitted on every label, while it lowers it by at least
   ``min_gain`` per label and fewer than ``max_rules`` were kept.
3. **Guardrails**: a candidate matches at least ``min_support`` labels and misses as many;
   one that matches exactly the labels an existing rule matches is no news; a weight that
   rounds to 0 points is dropped. An ``ordinal`` numeric trait gets "at least" steps only,
   all kept on the side of zero the first one took (monotone points).

Intent rules on event names come from the snapshots' per-name counts and times: for a track
event name enough labels did (and enough did not), one candidate per ``(half_life, cap)`` of
a small grid (``HALF_LIVES`` × ``CAPS``): "did Webinar Attended" (cap 1, no decay) up to a
decayed count capped at 5. The selection keeps at most one per name, so the half-life and
cap are the ones that did best on the held-out folds. They are plain intent rules (track
name, ``half_life_days``, ``cap``): the engine and the YAML run them as any other, and
activating one recounts every lead's past events for it (``bot.models.backfill``).

Page views the same way, all ``page`` calls together (the engine matches a page rule on
every page, whatever its name): "viewed a page" up to a count capped at 10 (``PAGE_CAPS``);
the selection may keep one per cap, so a few caps together make a step curve of visits.

Numeric event properties (a snapshot keeps each name's least and greatest value,
``scoring.snapshot``): for a track name, or all pages, and a property enough labelled leads'
events carried, intent rules whose one condition is a ``range`` on it, open at one end, at
quantiles of the leads' values: "Time on Website minutes at least 12" (some such event
reached 12) and "… under 3" (some such event stayed below 3), each ``cap`` 1 without decay,
the shape a snapshot reads exactly; several may be kept (a step curve on the property).

Pairs of traits last (``pair_rules``): "A and B" fit rules whose two halves are one-trait
rules of the model or candidates on different traits ("Lead Origin is API and occupation is
Student"), what a tree finds and a sum of one-trait points misses. A greedy path adds the
pair with the largest score statistic beside the log-odds so far, its weight fitted; how
many to keep (``pairs`` at most, within ``max_rules``) is chosen on held-out folds, the
fewest within one standard error of the best, because among thousands of pairs some fit any
labels on the folds that ranked them. Each needs ``PAIR_SUPPORT`` labels, as ``leadbot
learn``'s pairs (``scoring.interactions``).

Pure: numbers in, rules out.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from scoring.binning import (
    Support,
    candidate_rules,
    clean,
    feature_matrix,
    is_numeric,
    number_text,
    quantile_cuts,
    slug,
)
from scoring.leaks import id_reason
from scoring.learn import sigmoid
from scoring.limits import Discovery
from scoring.model import Condition, Model, Op, Rule, RuleKind, Scale, place
from scoring.snapshot import (
    as_number,
    decayed_count,
    event_carried,
    named_events,
    type_events,
)

HALF_LIVES: tuple[float | None, ...] = (None, 7.0, 30.0, 90.0)  # days; None: no decay
CAPS = (1.0, 5.0)  # 1: "did it (lately)"; 5: how often, up to 5
MAX_EVENT_NAMES = 40  # event names tried, most often done first
PAGE_CAPS = (1.0, 3.0, 5.0, 10.0)  # page views: "viewed a page" … "each view, up to 10"
MAX_PROPERTY_RULES = 160  # candidates on numeric event properties
MAX_FLAG_RULES = 80  # candidates on yes/no event properties
MAX_WEIGHT = 6.0  # log-odds: a rule worth more is a leak or a fluke


@dataclass(frozen=True, slots=True)
class NewRule:
    """A proposed rule (its points set), how many labels it matches and their won rate;
    for a scale (which reads above 0 for most labels), also the won rates of the labels in
    the lowest and the highest quarter of its reading, which say what its slope rests on."""

    rule: Rule
    support: int
    won_rate: float
    ends: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        found = {
            "id": self.rule.id,
            "label": self.rule.label,
            "points": self.rule.points,
            "support": self.support,
            "won_rate": round(self.won_rate, 4),
        }
        if self.ends is not None:
            found["won_lowest_quarter"] = round(self.ends[0], 4)
            found["won_highest_quarter"] = round(self.ends[1], 4)
        return found


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"company.industry": "x"}`` → ``{"company": {"industry": "x"}}``: what rules read."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        place(nested, path, value)
    return nested


def _yes_no_rules(path: str, values: Sequence[Any], support: Support) -> list[Rule]:
    rules = []
    for flag in (True, False):
        count = sum(v is flag for v in values)
        if support.enough(count, len(values)):
            text = "true" if flag else "false"
            condition = Condition(tuple(path.split(".")), Op.EQUALS, flag)
            rules.append(Rule(slug(f"{path} {text}"), f"{path} is {text}", RuleKind.FIT, 0.0,
                              (condition,)))  # fmt: skip
    return rules


def candidates(
    snapshots: Sequence[Mapping[str, Any]],
    support: Support,
    bins: int,
    ordinal: Collection[str] = (),
) -> list[Rule]:
    """Candidate fit rules from the snapshots' traits (see the module docstring). An
    ``ordinal`` numeric trait gets its "at least" steps only, no closed bins: the selection
    keeps its steps on one side of zero, so its points rise (or fall) with the value."""
    paths = sorted({path for snap in snapshots for path in snap.get("traits") or {}
                    if all(part.strip() for part in path.split("."))})  # fmt: skip
    # (a name with an empty part, ".x" or "a..b", is no path a rule can hold)
    columns: dict[str, list[str | None]] = {}
    rules: list[Rule] = []
    for path in paths:
        values = [(snap.get("traits") or {}).get(path) for snap in snapshots]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            rules += _yes_no_rules(path, values, support)
            continue
        cells = [None if v is None else clean(str(v)) for v in values]
        if id_reason(cells) is None:
            columns[path] = cells
    steps = [r for path, cells in columns.items() for r in _step_rules(path, cells, support, bins)]
    steps += [r for path, cells in columns.items() for r in _scale_rules(path, cells)]
    binned = [r for r in candidate_rules(columns, support, bins) if not _closed_bin(r, ordinal)]
    return rules + binned + steps


def _closed_bin(rule: Rule, ordinal: Collection[str]) -> bool:
    """A range bin of an ordinal trait (its steps stand in for it)."""
    (condition, *_) = rule.conditions
    return condition.op is Op.RANGE and ".".join(condition.path) in ordinal


def _step_rules(path: str, cells: Sequence[str | None], support: Support, bins: int) -> list[Rule]:
    """``path at least X`` at twice ``bins`` quantiles of a numeric trait: steps the
    selection may keep several of, so a trait whose every unit counts (a call's length, a
    balance) gets a staircase its points climb, where one closed bin catches one stretch."""
    present = [c for c in cells if c is not None]
    if not is_numeric(present):
        return []
    numbers = np.array([n for c in present if (n := as_number(c)) is not None])
    cuts = sorted({_round(c) for c in quantile_cuts(numbers, 2 * bins, len(cells), support)})
    return [
        Rule(slug(f"{path} ge {number_text(cut)}"), f"{path} at least {number_text(cut)}",
             RuleKind.FIT, 0.0, (Condition(tuple(path.split(".")), Op.RANGE, (cut, None)),))
        for cut in cuts
        if cut > numbers.min()
    ]  # fmt: skip


SCALE_QUANTILES = (0.01, 0.99)  # a scale's ends: an outlier beyond them earns no more


def _scale_rules(path: str, cells: Sequence[str | None]) -> list[Rule]:
    """Points in proportion to a numeric trait between two quantiles of it ("duration,
    in proportion from 0 to 1,500"): the line logistic regression fits, which steps only
    approach (the generated linear domain, 500 labels: 0.972 → 0.983 × the better of
    logistic regression and boosting)."""
    present = [c for c in cells if c is not None]
    if not is_numeric(present):
        return []
    numbers = np.array([n for c in present if (n := as_number(c)) is not None])
    low, high = (_round(float(q)) for q in np.quantile(numbers, SCALE_QUANTILES))
    if not high > low:
        return []
    a, b = number_text(low), number_text(high)
    label = f"{path}, in proportion from {a} to {b}"
    scale = Scale(tuple(path.split(".")), low, high)
    return [Rule(slug(f"{path} scaled {a} {b}"), label, RuleKind.FIT, 0.0, scale=scale)]


def _intent_label(name: str, half_life: float | None, cap: float) -> str:
    fading = f"half-life {half_life:g} days" if half_life is not None else ""
    if cap == 1:
        return f"did {name}" + (f" (fading, {fading})" if fading else "")
    return f"did {name}, each time (up to {cap:g}" + (f", {fading})" if fading else ")")


def intent_candidates(
    snapshots: Sequence[Mapping[str, Any]], support: Support, model: Model
) -> list[Rule]:
    """Intent rules on the track event names enough labelled leads did (and enough did
    not), one per ``HALF_LIVES`` × ``CAPS``; names the model's rules already count are
    left out."""
    taken = {r.event_name.lower() for r in model.rules if r.event_name}
    done: dict[str, int] = {}
    shown: dict[str, str] = {}
    for snap in snapshots:
        for key in snap.get("events") or {}:
            typ, _, name = key.partition(":")
            if typ == "track" and name.strip():
                done[name.lower()] = done.get(name.lower(), 0) + 1
                shown.setdefault(name.lower(), name.strip())
    n = len(snapshots)
    names = [
        k for k, c in sorted(done.items(), key=lambda kv: (-kv[1], kv[0]))
        if k not in taken and support.enough(c, n) and support.enough(n - c, n)
    ][:MAX_EVENT_NAMES]  # fmt: skip
    rules = []
    for key in names:
        name = shown[key]
        for half_life in HALF_LIVES:
            for cap in CAPS:
                tag = f"did {name}" + (f" h{half_life:g}" if half_life else "") + f" c{cap:g}"
                label = _intent_label(name, half_life, cap)
                rules.append(
                    Rule(slug(tag), label, RuleKind.INTENT, 0.0, (), "track", name, half_life, cap)
                )
    return rules


def page_candidates(
    snapshots: Sequence[Mapping[str, Any]], support: Support, model: Model
) -> list[Rule]:
    """Intent rules on every page view, one per ``HALF_LIVES`` × ``PAGE_CAPS``, when
    enough labelled leads viewed pages (and enough did not) and the model counts no page
    view as such already."""
    if any(r.event_type == "page" and not r.conditions for r in model.rules):
        return []
    n = len(snapshots)
    viewed = sum(type_events(snap, "page") is not None for snap in snapshots)
    if not (support.enough(viewed, n) and support.enough(n - viewed, n)):
        return []
    rules = []
    for half_life in HALF_LIVES:
        fading = f", half-life {half_life:g} days" if half_life is not None else ""
        for cap in PAGE_CAPS:
            tag = "page views" + (f" h{half_life:g}" if half_life else "") + f" c{cap:g}"
            label = "viewed a page" if cap == 1 else f"page views, each up to {cap:g}"
            label += f" (fading{fading})" if fading else ""
            rules.append(Rule(slug(tag), label, RuleKind.INTENT, 0.0, (), "page", None,
                              half_life, cap))  # fmt: skip
    return rules


def _carried(
    snapshots: Sequence[Mapping[str, Any]], part: str
) -> dict[tuple[str, str | None, str], list[list[float]]]:
    """``(type, name or None for all pages, property)`` → each carrying lead's merged
    ``part`` (``event_carried``): ``[n, min, max]`` of "numbers", ``[times true, times
    false]`` of "flags"."""
    found: dict[tuple[str, str | None, str], list[list[float]]] = {}
    for snap in snapshots:
        names = {k.partition(":")[2].lower() for k in snap.get(part) or {}
                 if k.startswith("track:")}  # fmt: skip
        sources = [("track", name) for name in names if name.strip()] + [("page", None)]
        for kind, name in sources:
            for prop, value in event_carried(snap, part, kind, name).items():
                found.setdefault((kind, name, prop), []).append(value)
    return found


def _shown(snapshots: Sequence[Mapping[str, Any]], part: str) -> dict[str, str]:
    """Each track name the snapshots' ``part`` holds, lower-cased → as first written."""
    shown: dict[str, str] = {}
    for snap in snapshots:
        for key in snap.get(part) or {}:
            typ, _, name = key.partition(":")
            if typ == "track":
                shown.setdefault(name.lower(), name.strip())
    return shown


def property_candidates(
    snapshots: Sequence[Mapping[str, Any]], support: Support, bins: int
) -> list[Rule]:
    """Intent rules on a numeric property of a track name's events (or of all pages):
    one condition ``range`` at or above, or below, a quantile of the leads' values; ``bins``
    quantiles, one more ``bins`` for each ``LABELS_PER_FINER_CUTS`` labels up to four
    times as many (``finer``)."""
    shown = _shown(snapshots, "numbers")
    n = len(snapshots)
    found = _carried(snapshots, "numbers")
    carried = sorted(found.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
    rules: list[Rule] = []
    for (kind, name, prop), values in carried:
        if not support.enough(len(values), n):
            continue
        event = shown.get(name, name) if name is not None else "page"
        for low_end, at in ((False, 2), (True, 1)):  # at least (by max), under (by min)
            numbers = np.array([v[at] for v in values])
            cuts = sorted({_round(c) for c in quantile_cuts(numbers, finer(bins, n), n, support)})
            for cut in cuts:
                text = number_text(cut)
                bound = (None, cut) if low_end else (cut, None)
                words = f"under {text}" if low_end else f"at least {text}"
                condition = Condition((prop,), Op.RANGE, bound)
                rule_id = slug(f"{event} {prop} {'lt' if low_end else 'ge'} {text}")
                rules.append(Rule(rule_id, f"{event} {prop} {words}", RuleKind.INTENT, 0.0,
                                  (condition,), kind, name and event, None, 1.0))  # fmt: skip
    return rules[:MAX_PROPERTY_RULES]


def flag_candidates(snapshots: Sequence[Mapping[str, Any]], support: Support) -> list[Rule]:
    """Intent rules on a yes/no property of a track name's events (or of all pages): "did
    Email Opened with notable true" (cap 1, no decay), for each value enough labelled leads'
    events carried (and enough did not). Tried from 2,000 labels (a step of ``finer``):
    where labels are few, a flag that nearly repeats its event's own rule is one more chance
    for noise to pass the held-out folds (X Education replays, seeds 0–2, 250 labels:
    held-out AUC 0.008 lower with them, 500 labels: even; all 6,468: 0.8952 → 0.8966)."""
    flagged, shown = _carried(snapshots, "flags"), _shown(snapshots, "flags")
    n = len(snapshots)
    rules: list[Rule] = []
    most_first = sorted(flagged.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
    for (kind, name, prop), counted in most_first:
        event = shown.get(name, name) if name is not None else "page"
        for value, at in ((True, 0), (False, 1)):
            carried = sum(c[at] > 0 for c in counted)
            if not (support.enough(carried, n) and support.enough(n - carried, n)):
                continue
            text = "true" if value else "false"
            condition = Condition((prop,), Op.EQUALS, value)
            rules.append(Rule(slug(f"{event} {prop} {text}"), f"{event} with {prop} {text}",
                              RuleKind.INTENT, 0.0, (condition,), kind, name and event, None,
                              1.0))  # fmt: skip
    return rules[:MAX_FLAG_RULES]


LABELS_PER_FINER_CUTS = 1_000


def finer(bins: int, labels: int) -> int:
    """Quantiles to cut a numeric event property at: ``bins`` up to 1,999 labels, then
    one more ``bins`` per thousand labels, at most four times ``bins``. Where labels are
    many, a threshold at the 35th percentile of minutes on the site instead of the 40th is
    worth its rule (X Education, all 6,468 labels: held-out AUC 0.899 with 5 cuts, 0.902
    with 10, 0.903 with 20); where they are few, each extra cut is one more chance for noise
    to pass the held-out folds (800 labels: a property that says nothing got a rule at 10)."""
    return bins * max(1, min(4, labels // LABELS_PER_FINER_CUTS))


RULES_PER_STEP = 25  # new rules a proposal may add per step of ``finer`` (labels)
PAIRS_PER_STEP = 10


def budget(guard: Discovery, labels: int) -> Discovery:
    """The new rules and pairs a proposal on ``labels`` labels may add: ``max_rules`` and
    ``pairs`` at most, and 25 rules (10 of them pairs) per step of ``finer``: 25 below
    2,000 labels, up to 100 from 4,000. Where labels are few, each more rule is one more
    chance for noise to pass the held-out folds (the defaults were chosen on 500 labels);
    where they are many, the room is worth it (X Education replays, all 6,468 labels, seeds
    0–2: held-out AUC 0.8935 at 25 rules and 10 pairs, 0.8952 at 50 and 20, 0.8947 at 100
    and 40)."""
    steps = finer(1, labels)
    return replace(
        guard,
        max_rules=min(guard.max_rules, RULES_PER_STEP * steps),
        pairs=min(guard.pairs, PAIRS_PER_STEP * steps),
    )


def _round(value: float) -> float:
    """A cut on a property to two significant digits (10.32 → 10): labels a person reads;
    the selection checks the support of the rounded cut anyway."""
    return float(f"{value:.2g}")


def _property_test(rule: Rule) -> tuple[str, float | None, float | None] | None:
    """``(property, low, high)`` of a rule a snapshot reads by its numbers, else None."""
    condition = _one_condition(rule)
    if condition is None or condition.op is not Op.RANGE:
        return None
    low, high = condition.value
    if (low is None) == (high is None):
        return None  # a closed range: min and max cannot tell whether a value fell inside
    return condition.path[0], low, high


def _flag_test(rule: Rule) -> tuple[str, bool] | None:
    """``(property, value)`` of a rule a snapshot reads by its flags, else None."""
    condition = _one_condition(rule)
    if condition is None or condition.op is not Op.EQUALS or type(condition.value) is not bool:
        return None
    return condition.path[0], condition.value


def _one_condition(rule: Rule) -> Condition | None:
    """The one condition on a top-level property of a "did it" rule (cap 1, no decay)."""
    if len(rule.conditions) != 1 or rule.cap != 1 or rule.half_life_days is not None:
        return None
    return rule.conditions[0] if len(rule.conditions[0].path) == 1 else None


def readable(rule: Rule) -> bool:
    """Whether a snapshot gives this rule's feature: fit rules; intent rules on a track
    name or on every page, plain or with one test on a property (cap 1, no decay): an
    open-ended ``range`` on a number, or ``equals`` true or false on a yes/no."""
    if rule.kind is RuleKind.FIT:
        return True
    if rule.kind is not RuleKind.INTENT:
        return False
    on_track = rule.event_type == "track" and bool(rule.event_name)
    on_pages = rule.event_type == "page" and rule.event_name is None
    if not (on_track or on_pages):
        return False
    return not rule.conditions or _property_test(rule) is not None or _flag_test(rule) is not None


class _Read:
    """One snapshot as intent rules read it: its events by name and by type, and its
    numbers and flags by event name, each merged once however many rules read them."""

    def __init__(self, snap: Mapping[str, Any]) -> None:
        self.snap = snap
        self.tracks = named_events(snap)
        self._merged: dict[tuple[str, str, str | None], dict[str, list[float]]] = {}

    @cached_property
    def pages(self) -> list[float] | None:
        return type_events(self.snap, "page")

    def carried(self, part: str, kind: str, name: str | None) -> dict[str, list[float]]:
        """``event_carried``, merged once per ``(part, kind, name)``."""
        key = (part, kind, name.lower() if name is not None else None)
        found = self._merged.get(key)
        if found is None:
            found = self._merged[key] = event_carried(self.snap, part, kind, name)
        return found


Test = tuple[tuple[str, float | None, float | None] | None, tuple[str, bool] | None]


def intent_feature(rule: Rule, read: _Read, at: float, test: Test) -> float:
    """A ``readable`` intent rule's feature on one snapshot at ``at`` (``test``: the rule's
    ``_property_test`` and ``_flag_test``)."""
    if rule.conditions:
        return _tested(rule, read, test)
    counts = (
        read.pages
        if rule.event_type == "page"
        else read.tracks.get((rule.event_name or "").lower())
    )
    if counts is None:
        return 0.0
    return decayed_count(counts, at, rule.half_life_seconds, rule.cap)


def _tested(rule: Rule, read: _Read, test: Test) -> float:
    """1.0 when some event of the rule's name passed its property test, else 0.0."""
    kind = rule.event_type or "track"
    numeric, flag = test
    if numeric is not None:
        prop, low, high = numeric
        found = read.carried("numbers", kind, rule.event_name).get(prop)
        if found is None:
            return 0.0
        hit = found[2] >= low if low is not None else found[1] < high  # type: ignore[operator]
        return 1.0 if hit else 0.0
    if flag is None:
        return 0.0
    counted = read.carried("flags", kind, rule.event_name).get(flag[0])
    return 1.0 if counted is not None and counted[0 if flag[1] else 1] > 0 else 0.0


def rule_columns(
    snapshots: Sequence[Mapping[str, Any]], at: Sequence[float], rules: Sequence[Rule]
) -> np.ndarray:
    """``(labels, rules)``: each rule's feature on each label's snapshot at the label's time
    ``at`` (fit rules on its traits; intent rules from its event counts, numbers and flags,
    ``intent_feature``, times its ``lead`` conditions on the traits; a rule a snapshot
    cannot read is 0)."""
    out = np.zeros((len(snapshots), len(rules)))
    fit = [j for j, r in enumerate(rules) if r.kind is RuleKind.FIT]
    gated = any(r.kind is RuleKind.INTENT and r.lead for r in rules)
    traits = [unflatten(s.get("traits") or {}) for s in snapshots] if fit or gated else []
    if fit:
        out[:, fit] = feature_matrix(traits, [rules[j] for j in fit])
    intent = [(j, r, (_property_test(r), _flag_test(r))) for j, r in enumerate(rules)
              if r.kind is RuleKind.INTENT and readable(r)]  # fmt: skip
    if intent:
        for i, snap in enumerate(snapshots):
            read = _Read(snap)
            for j, rule, test in intent:
                if not rule.lead or rule.admits(traits[i]):
                    out[i, j] = intent_feature(rule, read, at[i], test)
    return out


def _fit_weights(
    Z: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    penalty: float,
    low: np.ndarray | float = -MAX_WEIGHT,
    high: np.ndarray | float = MAX_WEIGHT,
) -> np.ndarray:
    """Each column's own L2-penalised weight beside ``offset`` (Newton, columns at once),
    between ``low`` and ``high`` (per column, or one bound for all)."""
    b = np.zeros(Z.shape[1])
    for _ in range(10):
        p = sigmoid(offset[:, None] + Z * b)
        g = ((p - y[:, None]) * w[:, None] * Z).sum(axis=0) + penalty * b
        h = (p * (1 - p) * w[:, None] * Z * Z).sum(axis=0) + penalty  # Z²: not only 0/1
        b = np.clip(b - np.clip(g / h, -2.0, 2.0), low, high)  # damped
    return b


def _recentre(offset: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``offset`` shifted to the labels' base rate, so no candidate is kept merely for
    moving every score it matches (the refit sets the intercept afterwards anyway)."""
    shift = _fit_weights(np.ones((y.size, 1)), offset, y, w, 1e-6)[0]
    return offset + shift


def _held_out_gain(
    Z: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    guard: Discovery,
    low: np.ndarray | float = -MAX_WEIGHT,
    high: np.ndarray | float = MAX_WEIGHT,
) -> np.ndarray:
    """Per candidate: the held-out log loss saved per label, summed over the folds. Only a
    candidate's nonzero entries move its fit or its loss (where it is 0 the row keeps the
    offset's), so both run on those entries alone: a third of ``Z`` on X Education."""
    rows, cols = np.nonzero(Z)
    values, k = Z[rows, cols], Z.shape[1]
    lows, highs = np.broadcast_to(low, k), np.broadcast_to(high, k)
    in_fold = (np.arange(y.size) % guard.folds)[rows]
    saved = np.zeros(k)
    for fold in range(guard.folds):
        tr, te = in_fold != fold, in_fold == fold
        b = _fit_entries(cols[tr], values[tr], offset[rows[tr]], y[rows[tr]], w[rows[tr]], k,
                         guard.penalty, lows, highs)  # fmt: skip
        r, c = rows[te], cols[te]
        moved = offset[r] + values[te] * b[c]
        spared = _row_losses(offset[r], y[r], w[r]) - _row_losses(moved, y[r], w[r])
        saved += np.bincount(c, spared, minlength=k)
    return saved / max(float(w.sum()), 1.0)


def _fit_entries(
    cols: np.ndarray,
    values: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    k: int,
    penalty: float,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """``_fit_weights`` of ``k`` columns given by their nonzero entries (column, value, and
    the row's offset, label and weight)."""
    b = np.zeros(k)
    for _ in range(10):
        p = sigmoid(offset + values * b[cols])
        g = np.bincount(cols, (p - y) * w * values, minlength=k) + penalty * b
        h = np.bincount(cols, p * (1 - p) * w * values * values, minlength=k) + penalty
        b = np.clip(b - np.clip(g / h, -2.0, 2.0), low, high)  # damped
    return b


def select(
    Z: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    guard: Discovery,
    groups: Sequence[str] | None = None,
    low: np.ndarray | None = None,
    same_sign: Sequence[str | None] | None = None,
) -> list[tuple[int, float]]:
    """Forward selection: ``(column, weight in log-odds)`` in the order kept. Of columns in
    the same ``groups`` entry (one event name's half-lives and caps), at most one is kept.
    ``low``: each column's least weight (default ``-MAX_WEIGHT``). Columns that share a
    ``same_sign`` key (an ordinal trait's steps) are kept on the side of zero the first
    of them kept took."""
    group = list(groups) if groups is not None else [str(j) for j in range(Z.shape[1])]
    lows = np.full(Z.shape[1], -MAX_WEIGHT) if low is None else np.array(low, dtype=float)
    highs = np.full(Z.shape[1], MAX_WEIGHT)
    sign_key = list(same_sign) if same_sign is not None else [None] * Z.shape[1]
    offset = _recentre(offset.astype(float), y, w)
    left = list(range(Z.shape[1]))
    kept: list[tuple[int, float]] = []
    while left and len(kept) < guard.max_rules:
        gains = _held_out_gain(Z[:, left], offset, y, w, guard, lows[left], highs[left])
        best = int(np.argmax(gains))
        if not gains[best] >= guard.min_gain:
            break
        j = left.pop(best)
        left = [k for k in left if group[k] != group[j]]
        b = float(_fit_weights(Z[:, [j]], offset, y, w, guard.penalty, lows[j], highs[j])[0])
        if sign_key[j] is not None:
            tied = [k for k in left if sign_key[k] == sign_key[j]]
            if b >= 0:
                lows[tied] = np.maximum(lows[tied], 0.0)
            else:
                highs[tied] = np.minimum(highs[tied], 0.0)
        offset = _recentre(offset + Z[:, j] * b, y, w)
        kept.append((j, b))
    return kept


def _unique(rule: Rule, taken: set[str]) -> Rule:
    rule_id, n = rule.id, 1
    while rule_id in taken:
        n += 1
        rule_id = f"{rule.id}_{n}"
    taken.add(rule_id)
    return replace(rule, id=rule_id)


@dataclass(frozen=True)
class _Prepared:
    """The labels chosen on, the candidates and their features on those labels."""

    snaps: list[Mapping[str, Any]]
    used: np.ndarray  # which of the given labels these are
    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    rules: list[Rule]
    Z: np.ndarray
    ok: list[int]  # the candidates within support and no copy of a model rule
    offset: np.ndarray  # the model's log-odds on each label

    def weighed(self) -> tuple[np.ndarray, np.ndarray]:
        """The candidates' features as the selection weighs them, and per candidate what
        a weight on that column is in log-odds per unit of its feature. A scale's column
        is centred and spread as a yes/no of even odds (``(x − mean) / 2sd``): it reads
        above 0 for most leads, so beside the model's log-odds alone its weight would lift
        them all (centred, it lowers the bottom of its range as it raises the top, as the
        refit's intercept makes it do), and the penalty on its weight is then the one a
        yes/no rule's bears, not one that holds a line across the range near flat."""
        Z = self.Z[:, self.ok]
        unit = np.ones(len(self.ok))
        for k, j in enumerate(self.ok):
            if self.rules[j].scale is not None:
                mean = np.average(Z[:, k], weights=self.w)
                spread = 2.0 * math.sqrt(np.average((Z[:, k] - mean) ** 2, weights=self.w))
                Z[:, k] = (Z[:, k] - mean) / spread
                unit[k] = 1.0 / spread
        return Z, unit

    def groups(self) -> list[str]:
        return [_group(self.rules[j], j) for j in self.ok]

    def same_sign(self, ordinal: Collection[str]) -> list[str | None]:
        """Per candidate, the ordinal trait it is a step or a scale of (None: not one)."""
        keys: list[str | None] = []
        for j in self.ok:
            rule = self.rules[j]
            if rule.scale is not None:  # a line on the trait: one more step, in effect
                path, step = ".".join(rule.scale.path), True
            else:
                path = ".".join(rule.conditions[0].path) if rule.conditions else ""
                ranged = bool(path) and rule.conditions[0].op is Op.RANGE
                step = rule.kind is RuleKind.FIT and ranged
            keys.append(path if step and path in ordinal else None)
        return keys

    def least(self) -> np.ndarray:
        """Each candidate's least weight: 0 for a fading intent rule, which may only add
        points (a fading penalty would make a score rise while the lead does nothing, and
        the model refuses one)."""
        return np.array([0.0 if _fading(self.rules[j]) else -MAX_WEIGHT for j in self.ok])


def _fading(rule: Rule) -> bool:
    return rule.kind is RuleKind.INTENT and rule.half_life_days is not None


def _group(rule: Rule, j: int) -> str:
    """Candidates of which the selection keeps one: a track name's half-lives and caps; a
    page cap's half-lives. Each property test stands alone (they combine into steps)."""
    if rule.kind is not RuleKind.INTENT or rule.conditions:
        return f"#{j}"
    if rule.event_type == "page":
        return f"page c{rule.cap:g}"
    return (rule.event_name or "").lower() or f"#{j}"


def _prepare(
    model: Model,
    snapshots: Sequence[Mapping[str, Any]],
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    guard: Discovery,
    at: Sequence[float] | np.ndarray | None,
) -> _Prepared | None:
    used = np.asarray(w, dtype=float) > 0
    if used.sum() > guard.max_rows:  # labels come oldest first: keep the newest
        used[: np.flatnonzero(used)[-guard.max_rows]] = False
    if guard.max_rules <= 0 or used.sum() < 2 * guard.min_support:
        return None
    snaps = [s for s, u in zip(snapshots, used, strict=True) if u]
    X_, y_ = np.asarray(X, dtype=float)[used], np.asarray(y, dtype=float)[used]
    w_ = np.asarray(w, dtype=float)[used]
    support = Support(min_rows=guard.min_support, min_share=1.0, floor_rows=guard.min_support)
    offset = model.intercept + X_ @ np.array([r.points for r in model.rules]) / (
        model.points_per_logodds
    )
    found = candidates(snaps, support, guard.bins, guard.ordinal)
    rules = strongest(snaps, found, y_, w_, offset, guard)
    times = np.zeros(len(snaps)) if at is None else np.asarray(at, dtype=float)[used]
    if guard.intent and at is not None:
        rules += intent_candidates(snaps, support, model)
        rules += page_candidates(snaps, support, model)
        rules += property_candidates(snaps, support, guard.bins)
        if finer(1, len(snaps)) > 1:  # from 2,000 labels: see ``flag_candidates``
            rules += flag_candidates(snaps, support)
    if not rules:
        return None
    Z = rule_columns(snaps, times.tolist(), rules)
    count = (Z > 0).sum(axis=0)
    # a scale misses the labels at its top (most of them read above 0)
    scaled = np.array([r.scale is not None for r in rules])
    missed = np.where(scaled, (Z < 1).sum(axis=0), y_.size - count)
    known = {X_[:, j].tobytes() for j in range(X_.shape[1])}
    ok = [
        j for j in range(len(rules))
        if count[j] >= guard.min_support and missed[j] >= guard.min_support
        and Z[:, j].tobytes() not in known
    ]  # fmt: skip
    return _Prepared(snaps, used, X_, y_, w_, rules, Z, ok, offset)


CHUNK = 200  # candidates whose features are held at once while ranking them


def strongest(
    snaps: Sequence[Mapping[str, Any]],
    rules: list[Rule],
    y: np.ndarray,
    w: np.ndarray,
    offset: np.ndarray,
    guard: Discovery,
) -> list[Rule]:
    """At most ``guard.max_candidates`` fit candidates, the most telling first when there
    are more (a wide CRM export): each one's score statistic beside the model's log-odds,
    ``(Σ wᵢ(yᵢ − pᵢ)xᵢ)² / Σ wᵢpᵢ(1 − pᵢ)xᵢ``, computed a chunk at a time — not the first
    ones in the traits' alphabetical order."""
    if len(rules) <= guard.max_candidates:
        return rules
    p = sigmoid(offset)
    residual, curvature = w * (y - p), w * p * (1.0 - p)
    stat = np.zeros(len(rules))
    for start in range(0, len(rules), CHUNK):
        Z = rule_columns(snaps, [0.0] * len(snaps), rules[start : start + CHUNK])
        stat[start : start + CHUNK] = (residual @ Z) ** 2 / (curvature @ Z + 1e-9)
    keep = np.sort(np.argsort(-stat, kind="stable")[: guard.max_candidates])
    return [rules[j] for j in keep]


def described(rule: Rule, column: np.ndarray, y: np.ndarray, w: np.ndarray) -> NewRule:
    """The rule with the labels it matches (its feature above 0 on them: ``column``), their
    won rate, and for a scale the won rates of its lowest and highest quarter."""
    ends = None
    if rule.scale is not None:
        low, high = np.quantile(column, [0.25, 0.75])
        ends = (_won(y, w, column <= low), _won(y, w, column >= high))
    return NewRule(rule, int((column > 0).sum()), _won(y, w, column > 0), ends)


def _won(y: np.ndarray, w: np.ndarray, rows: np.ndarray) -> float:
    """The weighted won rate of these labels (0 for none)."""
    weight = float(w[rows].sum())
    return float(w[rows] @ y[rows]) / weight if weight > 0 else 0.0


def _kept(
    p: _Prepared,
    chosen: Sequence[tuple[Rule, np.ndarray, float]],
    taken: set[str],
    model: Model,
    points_step: float,
) -> list[NewRule]:
    """The chosen ``(rule, feature on the labels, weight in log-odds)`` whose weight rounds
    to some points: with those points, an id of their own, their support and won rate."""
    found = []
    for rule, column, b in chosen:
        points = round(b * model.points_per_logodds / points_step) * points_step
        if points != 0:
            found.append(described(replace(_unique(rule, taken), points=points), column, p.y, p.w))
    return found


def discover(
    model: Model,
    snapshots: Sequence[Mapping[str, Any]],
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    guard: Discovery,
    points_step: float = 0.5,
    at: Sequence[float] | np.ndarray | None = None,
) -> list[NewRule]:
    """Rules ``model`` lacks that the labels support. ``X`` is the labels' features in
    ``model.rules`` order, ``y`` 0/1, ``w`` each label's weight (0: not used), one snapshot
    per label, ``at`` the labels' times (unix seconds; without them no intent rule is
    tried). The rules' points are their fitted weights in ``model``'s points."""
    p = _prepare(model, snapshots, X, y, w, guard, at)
    if p is None:
        return []
    guard = budget(guard, int(p.y.size))
    taken = {r.id for r in model.rules}
    Z, unit = p.weighed()
    chosen = select(Z, p.offset, p.y, p.w, guard, p.groups(), p.least(),
                    p.same_sign(guard.ordinal))  # fmt: skip
    singles = [(p.rules[p.ok[j]], p.Z[:, p.ok[j]], b * unit[j]) for j, b in chosen]
    found = _kept(p, singles, taken, model, points_step)
    offset = p.offset + sum((Z[:, j] * b for j, b in chosen), np.zeros(p.y.size))
    room = replace(guard, pairs=min(guard.pairs, guard.max_rules - len(found)))
    return found + _kept(p, pair_rules(model, p, offset, room), taken, model, points_step)


MAX_PAIR_BASE = 200  # rules whose pairs are tried (the most telling first)
PAIR_SUPPORT = 30  # labels a pair must match, and miss (as ``leadbot learn``'s pairs)


@dataclass(frozen=True)
class _PairBase:
    """The rules pairs are made of, their features on the labels (0/1 for a fit rule, the
    count for an intent rule), and which pairs are never proposed (``blocked[a, b]``, upper
    triangle only): two intent rules (no rule counts two events at once), two rules on one
    trait, fewer than ``PAIR_SUPPORT`` labels, or equal to one of its two rules."""

    rules: list[Rule]
    Z: np.ndarray
    blocked: np.ndarray


def _pair_base(
    model: Model, p: _Prepared, offset: np.ndarray, guard: Discovery
) -> _PairBase | None:
    def halves(rule: Rule) -> bool:
        fit = rule.kind is RuleKind.FIT and bool(rule.conditions)
        return fit or (rule.kind is RuleKind.INTENT and not rule.lead and readable(rule))

    found = [(r, p.X[:, i]) for i, r in enumerate(model.rules) if halves(r)]
    found += [(p.rules[j], p.Z[:, j]) for j in p.ok if halves(p.rules[j])]
    if len(found) < 2:
        return None
    Z = np.column_stack([column for _, column in found]).astype(float)
    prob = sigmoid(offset)
    residual, curvature = p.w * (p.y - prob), p.w * prob * (1.0 - prob)
    telling = (residual @ Z) ** 2 / (curvature @ (Z * Z) + 1e-9)
    keep = np.sort(np.argsort(-telling, kind="stable")[:MAX_PAIR_BASE])
    Z, rules = Z[:, keep], [found[j][0] for j in keep]
    k, n, least = len(rules), p.y.size, max(guard.min_support, PAIR_SUPPORT)
    hit = (Z > 0).astype(float)
    count = hit.T @ hit
    own = np.diag(count)
    blocked = ~np.triu(np.ones((k, k), dtype=bool), 1) | (count < least) | (count > n - least)
    blocked |= (count == own[:, None]) | (count == own[None, :])
    events = np.array([r.kind is RuleKind.INTENT for r in rules])
    blocked |= events[:, None] & events[None, :]
    paths = [frozenset(c.path for c in rule.conditions) for rule in rules]
    for a, b in zip(*np.nonzero(~blocked), strict=True):
        blocked[a, b] = not events[a] and not events[b] and bool(paths[a] & paths[b])
    return _PairBase(rules, Z, blocked)


def _pair_path(
    base: _PairBase,
    rows: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    steps: int,
    penalty: float,
) -> list[tuple[int, int, float]]:
    """Greedy, on ``rows``: the pair with the highest score statistic beside ``offset``
    (``scoring.interactions``: ``(Σ wᵢ(yᵢ − pᵢ)xᵢ)² / Σ wᵢpᵢ(1 − pᵢ)xᵢ²``, every pair's
    sums at once from ``Zᵀ·diag(r)·Z``), its weight fitted beside the offset, which moves
    by it; ``steps`` times at most. Returns ``(a, b, weight)`` in the order added."""
    Z, blocked = base.Z[rows], base.blocked.copy()
    squared = Z * Z
    path: list[tuple[int, int, float]] = []
    for _ in range(steps):
        prob = sigmoid(offset)
        residual, curvature = w * (y - prob), w * prob * (1.0 - prob)
        stat = (Z.T @ (Z * residual[:, None])) ** 2 / (
            squared.T @ (squared * curvature[:, None]) + 1e-9
        )
        stat[blocked] = -1.0
        best = int(np.argmax(stat))
        if stat.flat[best] <= 0:
            break
        a, b = divmod(best, Z.shape[1])
        blocked[a, b] = True
        column = Z[:, a] * Z[:, b]
        least = 0.0 if _fading(base.rules[a]) or _fading(base.rules[b]) else -MAX_WEIGHT
        weight = float(_fit_weights(column[:, None], offset, y, w, penalty, least)[0])
        offset = offset + weight * column
        path.append((a, b, weight))
    return path


def _row_losses(logodds: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    p = np.clip(sigmoid(logodds), 1e-12, 1 - 1e-12)
    return -w * (y * np.log(p) + (1 - y) * np.log(1 - p))


def pair_rules(
    model: Model, p: _Prepared, offset: np.ndarray, guard: Discovery
) -> list[tuple[Rule, np.ndarray, float]]:
    """ "A and B" fit rules on two different traits, each condition a one-trait rule of the
    model or a candidate: what a tree finds and a sum of one-trait points misses ("Lead
    Origin is API and occupation is Student"). ``offset``: the model's log-odds with the
    rules kept so far. The greedy path (``_pair_path``) is run on all folds but one and
    judged on the one left out, in turn; as many pairs are kept as the fewest whose held-out
    log loss is within one standard error of the best count's (``guard.pairs`` at most), so
    a lucky pair of noise traits — among thousands of pairs, some fit any labels — does not
    buy a rule. Returns each rule, its feature on the labels and its weight in log-odds."""
    offset = _recentre(offset, p.y, p.w)
    base = _pair_base(model, p, offset, guard) if guard.pairs > 0 else None
    if base is None:
        return []
    y, w, n = p.y, p.w, p.y.size
    fold = np.arange(n) % guard.folds
    losses = np.zeros((guard.pairs + 1, n))
    for k in range(guard.folds):
        train, test = fold != k, fold == k
        path = _pair_path(base, train, offset[train], y[train], w[train], guard.pairs,
                          guard.penalty)  # fmt: skip
        held = offset[test].copy()
        losses[0, test] = _row_losses(held, y[test], w[test])
        for t, (a, b, weight) in enumerate(path, start=1):
            held += weight * base.Z[test, a] * base.Z[test, b]
            losses[t:, test] = _row_losses(held, y[test], w[test])
    excess = losses - losses[int(np.argmin(losses.mean(axis=1)))]
    error = excess.std(axis=1) / math.sqrt(n)
    count = int(np.flatnonzero(excess.mean(axis=1) <= error)[0])
    path = _pair_path(base, np.ones(n, dtype=bool), offset, y, w, count, guard.penalty)
    return [(_pair(base.rules[a], base.rules[b]), base.Z[:, a] * base.Z[:, b], weight)
            for a, b, weight in path]  # fmt: skip


def _pair(a: Rule, b: Rule) -> Rule:
    """ "A and B" as one rule: a fit rule with both halves' conditions, or the intent half
    counted only for leads the fit half holds for ("did SMS Sent, when Lead Origin is API")."""
    if b.kind is RuleKind.INTENT:
        a, b = b, a
    if a.kind is RuleKind.INTENT:
        return replace(a, id=slug(f"{a.id} when {b.id}")[:120], label=f"{a.label}, when "
                       f"{b.label}", points=0.0, lead=b.conditions)  # fmt: skip
    return Rule(slug(f"{a.id} and {b.id}")[:120], f"{a.label} and {b.label}", RuleKind.FIT,
                0.0, (*a.conditions, *b.conditions))  # fmt: skip


REASON_RULES = 3  # most negative rules one disqualify reason may train


def reason_rules(
    model: Model,
    snapshots: Sequence[Mapping[str, Any]],
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    reasons: Sequence[str | None],
    guard: Discovery,
    points_step: float = 0.5,
    at: Sequence[float] | np.ndarray | None = None,
) -> list[NewRule]:
    """Negative rules of their own for the disqualify reasons in ``guard.reasons``
    ("spam signal: email_domain is gmail.com"). For each reason with at least
    ``min_support`` labels, the forward selection above is run with that reason as the
    outcome (its labels 1, every other label 0, offset at its base rate), so a trait that
    marks spam is found even where it is too rare to move the won rate; a rule it keeps
    (at most ``REASON_RULES``, only signs *of* the reason) joins the model when its fitted
    weight on the real outcome is negative, with those points. ``reasons`` holds each
    label's reason (None: not a disqualification with a known reason)."""
    p = _prepare(model, snapshots, X, y, w, guard, at)
    if p is None or not guard.reasons:
        return []
    mine = [r for r, u in zip(reasons, p.used.tolist(), strict=True) if u]
    taken = {r.id for r in model.rules}
    found: list[NewRule] = []
    offset = _recentre(p.offset, p.y, p.w)  # the model's log-odds at the labels' base rate
    steps = [j for j in p.ok if p.rules[j].scale is None]  # a line is no sign of a reason
    groups = [_group(p.rules[j], j) for j in steps]
    for reason in guard.reasons:
        target = np.array([r == reason for r in mine], dtype=float)
        if (p.w * target > 0).sum() < guard.min_support:
            continue
        each = replace(guard, max_rules=min(REASON_RULES, guard.max_rules))
        base = np.zeros(p.y.size)
        for j, b in select(p.Z[:, steps], base, target, p.w, each, groups):
            col = steps[j]
            weight = float(_fit_weights(p.Z[:, [col]], offset, p.y, p.w, guard.penalty)[0])
            points = round(weight * model.points_per_logodds / points_step) * points_step
            if b <= 0 or points >= 0 or _fading(p.rules[col]):
                continue  # a sign it is not this reason, no loss to the score, or fading
            rule = p.rules[col]
            rule = replace(rule, id=slug(f"{reason} {rule.id}"), label=f"{reason} signal: "
                           f"{rule.label}", points=points)  # fmt: skip
            found.append(described(_unique(rule, taken), p.Z[:, col], p.y, p.w))
    return found
