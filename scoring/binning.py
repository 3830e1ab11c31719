"""Candidate fit rules from the columns of a table of leads (a CRM export, a history CSV).

Each candidate is a ``scoring.Rule`` with 0 points whose conditions test one column as a
trait path, so the rules a learner keeps score live leads exactly as they scored the table:

- a category with enough support: ``equals`` (case-folded, trimmed); rare categories of a
  column pooled into one ``one_of`` rule when the pool has enough support, else dropped;
- a numeric column: quantile bins, ``range`` (low inclusive, high exclusive);
- empty cells and placeholders (``Select``, ``NA``, ``-``): ``exists: false``. Callers give
  missing cells as None (see :func:`clean`), which is also how an absent trait reads.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.model import Condition, Op, Rule, RuleKind, Scale, lookup

PLACEHOLDERS = frozenset({"", "select", "na", "n/a", "-", "--", "null", "none", "nan"})
"""Cell values that mean "not given" (a form left at its default, an export's null)."""


@dataclass(frozen=True, slots=True)
class Support:
    """How many rows a bin needs: ``min_rows``, or ``min_share`` of the rows with at least
    ``floor_rows`` (so a small table does not grow rules from two rows)."""

    min_rows: int = 30
    min_share: float = 0.01
    floor_rows: int = 10

    def enough(self, count: int, total: int) -> bool:
        return count >= self.min_rows or (
            count >= self.floor_rows and count >= self.min_share * total
        )


def clean(value: str | None) -> str | None:
    """A cell trimmed, or None when empty or a placeholder."""
    if value is None:
        return None
    text = value.strip()
    return None if text.lower() in PLACEHOLDERS else text


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def slug(text: str) -> str:
    """``Lead Source`` → ``lead_source``: a piece of a rule id (``^[a-z][a-z0-9_]*$``)."""
    words = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return words if words[:1].isalpha() else f"c_{words}".rstrip("_")


def _fmt(value: float) -> str:
    return f"{value:,.10g}" if abs(value) >= 10_000 else f"{value:.10g}"


def number_text(value: float) -> str:
    """A bin edge as rule labels and ids show it (``12.5``, ``25,000``)."""
    return _fmt(value)


def _path(column: str) -> tuple[str, ...]:
    """A dotted column (``company.size``) is the nested trait it names, as in the config."""
    return tuple(column.split("."))


def _rule(rule_id: str, label: str, *conditions: Condition) -> Rule:
    return Rule(rule_id, label, RuleKind.FIT, 0.0, conditions)


def is_numeric(values: Sequence[str], share: float = 0.95) -> bool:
    """Whether at least ``share`` of the given (non-missing) values read as numbers."""
    if not values:
        return False
    numbers = sum(_number(v) is not None for v in values)
    return numbers >= share * len(values)


def category_rules(column: str, values: Sequence[str], total: int, support: Support) -> list[Rule]:
    """One ``equals`` rule per well-supported category; the rare ones pooled (``one_of``)."""
    counts = Counter(v.lower() for v in values)
    spelling = Counter(values)
    shown = {
        key: max((s for s in spelling if s.lower() == key), key=spelling.__getitem__)
        for key in counts
    }
    rules, rare = [], []
    for key, count in counts.most_common():
        if support.enough(count, total):
            rule_id = slug(f"{column} {key}")
            label = f"{column} is {shown[key]}"
            condition = Condition(_path(column), Op.EQUALS, shown[key])
            rules.append(_rule(rule_id, label, condition))
        else:
            rare.append(key)
    if len(rare) > 1 and support.enough(sum(counts[k] for k in rare), total):
        label = f"{column} is something else ({len(rare)} rare values)"
        condition = Condition(_path(column), Op.ONE_OF, frozenset(rare))
        rules.append(_rule(f"{slug(column)}_other", label, condition))
    return rules


def quantile_cuts(numbers: np.ndarray, bins: int, total: int, support: Support) -> list[float]:
    """Inner bin edges at quantiles, merged until every bin has enough support.

    A value that alone holds a bin's share of the rows (``previous`` = 0, ``pdays`` = 999
    for "never contacted") gets a bin of its own: quantiles fall on it and would put it
    with its neighbours, or, at the ends, cut nothing at all."""
    edges = np.quantile(numbers, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    edges = np.union1d(edges, _mass_edges(numbers, bins))
    cuts = [float(c) for c in edges if c > numbers.min()]
    while cuts:
        sizes = np.histogram(numbers, bins=[-np.inf, *cuts, np.inf])[0]
        small = [i for i, n in enumerate(sizes) if not support.enough(int(n), total)]
        if not small:
            break
        # Drop the edge between the smallest bin and its smaller neighbour.
        i = min(small, key=lambda k: sizes[k])
        left = sizes[i - 1] if i > 0 else math.inf
        right = sizes[i + 1] if i + 1 < len(sizes) else math.inf
        del cuts[i - 1 if left <= right else i]
    return cuts


def _mass_edges(numbers: np.ndarray, bins: int) -> np.ndarray:
    """Edges around each value held by at least ``1 / bins`` of the rows: at the value and
    at the next value above it, so ``[value, next)`` holds that value alone."""
    values, counts = np.unique(numbers, return_counts=True)
    heavy = np.flatnonzero(counts * bins >= numbers.size)
    above = heavy[heavy + 1 < values.size] + 1
    return np.union1d(values[heavy], values[above])


def numeric_rules(
    column: str,
    values: Sequence[str],
    total: int,
    support: Support,
    bins: int,
    outcome: Sequence[float] | None = None,
) -> list[Rule]:
    """Quantile bins of a numeric column; values that do not read as numbers get no bin.
    With ``outcome`` (0/1 per value), bins are pooled until their won rates are monotone
    (:func:`monotone_cuts`): for a trait known to be ordinal."""
    read = [_number(v) for v in values]
    numbers = np.array([n for n in read if n is not None])
    if numbers.size == 0:
        return []
    cuts = quantile_cuts(numbers, bins, total, support)
    if outcome is not None and cuts:
        won = np.array([o for o, n in zip(outcome, read, strict=True) if n is not None])
        cuts = monotone_cuts(numbers, won, cuts)
    if not cuts:
        return []
    bounds = [None, *cuts, None]
    rules = []
    for low, high in itertools.pairwise(bounds):
        if low is None:
            text, key = f"under {_fmt(high)}", f"lt_{_fmt(high)}"  # type: ignore[arg-type]
        elif high is None:
            text, key = f"{_fmt(low)} or more", f"ge_{_fmt(low)}"
        else:
            text, key = f"{_fmt(low)}–{_fmt(high)}", f"{_fmt(low)}_{_fmt(high)}"
        condition = Condition(_path(column), Op.RANGE, (low, high))
        rules.append(_rule(slug(f"{column} {key}"), f"{column} {text}", condition))
    return rules


def column_rules(
    column: str,
    cells: Sequence[str | None],
    support: Support | None = None,
    bins: int = 10,
    outcome: Sequence[float] | None = None,
) -> list[Rule]:
    """Candidate rules for one column; ``cells`` are cleaned (None = missing). ``outcome``
    (0/1 per cell) makes numeric bins monotone in won rate (see :func:`numeric_rules`)."""
    support = support or Support()
    total = len(cells)
    present = [c for c in cells if c is not None]
    won = None
    if outcome is not None:
        won = [o for o, c in zip(outcome, cells, strict=True) if c is not None]
    rules = []
    missing = total - len(present)
    if missing and support.enough(missing, total) and present:
        condition = Condition(_path(column), Op.EXISTS, False)
        rules.append(_rule(f"{slug(column)}_missing", f"{column} is missing", condition))
    if is_numeric(present):
        rules += numeric_rules(column, present, total, support, bins, won)
    else:
        rules += category_rules(column, present, total, support)
    return rules


def candidate_rules(
    columns: Mapping[str, Sequence[str | None]],
    support: Support | None = None,
    bins: int = 10,
    monotone: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Rule, ...]:
    """Candidate rules for every column, with unique ids (a suffix where slugs collide).
    ``monotone`` maps an ordinal column to the rows' outcomes (0/1): its bins then rise or
    fall monotonically in won rate."""
    seen: Counter[str] = Counter()
    rules = []
    monotone = monotone or {}
    for column, cells in columns.items():
        for rule in column_rules(column, cells, support, bins, monotone.get(column)):
            seen[rule.id] += 1
            rule_id = rule.id if seen[rule.id] == 1 else f"{rule.id}_{seen[rule.id]}"
            rules.append(_rule(rule_id, rule.label, *rule.conditions))
    return tuple(rules)


def feature_matrix(traits: Sequence[Mapping[str, Any]], rules: Sequence[Rule]) -> np.ndarray:
    """``X[i, j]`` = 1.0 when lead ``i``'s traits match every condition of rule ``j``.

    The same ``Condition.matches`` the engine uses, so learned weights see what scoring sees;
    it runs once per distinct value a path takes, not once per row, and a condition shared
    by several rules (a pair rule's halves) is evaluated once.
    Shape ``(len(traits), len(rules))``."""
    out = np.zeros((len(traits), len(rules)))
    paths: dict[tuple[str, ...], tuple[np.ndarray, list[Any]]] = {}
    tested: dict[tuple[Condition, type], np.ndarray] = {}
    for j, rule in enumerate(rules):
        hit = np.ones(len(traits), dtype=bool)
        for condition in rule.conditions:
            if condition.path not in paths:
                paths[condition.path] = _distinct([lookup(row, condition.path) for row in traits])
            hit &= _tested(condition, paths[condition.path], tested)
        out[:, j] = hit
        if rule.scale is not None:
            if rule.scale.path not in paths:
                found = [lookup(row, rule.scale.path) for row in traits]
                paths[rule.scale.path] = _distinct(found)
            out[:, j] *= _scaled(rule.scale, paths[rule.scale.path])
    return out


def _scaled(scale: Scale, distinct: tuple[np.ndarray, list[Any]]) -> np.ndarray:
    """A scale's reading of each row, once per distinct value (as ``Scale.read`` gives it)."""
    codes, values = distinct
    read = np.array([scale.read(_nested(scale.path, v)) for v in values], dtype=float)
    return read[codes] if values else np.zeros(codes.size)


def _distinct(found: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Each row's code and the distinct values (the type is part of the key: ``True`` is not
    ``1``; an unhashable value, a list or a mapping, is its own)."""
    index: dict[tuple[type, Any], int] = {}
    values: list[Any] = []
    codes = np.empty(len(found), dtype=np.intp)
    for i, value in enumerate(found):
        try:
            code = index.setdefault((type(value), value), len(values))
        except TypeError:
            code = len(values)
        if code == len(values):
            values.append(value)
        codes[i] = code
    return codes, values


def _tested(
    condition: Condition,
    distinct: tuple[np.ndarray, list[Any]],
    tested: dict[tuple[Condition, type], np.ndarray],
) -> np.ndarray:
    # The value's type is part of the key: ``equals True`` and ``equals 1`` are equal
    # conditions to Python (True == 1) but match different traits.
    key = (condition, type(condition.value))
    try:
        return tested[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable condition value: nothing to share
        return _matches(condition, distinct)
    tested[key] = column = _matches(condition, distinct)
    return column


def _matches(condition: Condition, distinct: tuple[np.ndarray, list[Any]]) -> np.ndarray:
    codes, values = distinct
    path = condition.path
    hits = np.array([condition.matches(_nested(path, v)) for v in values], dtype=bool)
    return hits[codes] if values else np.zeros(codes.size, dtype=bool)


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """The smallest traits holding ``value`` at ``path`` (None: holding nothing there)."""
    data: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        data = {key: data}
    return data


def ladders(rules: Sequence[Rule]) -> list[list[int]]:
    """Per numeric column, the indices of its one-condition ``range`` bins, lowest first:
    the bins :func:`numeric_rules` cuts, in whatever order ``rules`` holds them."""
    by_path: dict[tuple[str, ...], list[int]] = {}
    for j, rule in enumerate(rules):
        if len(rule.conditions) == 1 and rule.conditions[0].op is Op.RANGE:
            by_path.setdefault(rule.conditions[0].path, []).append(j)

    def low(j: int) -> float:
        bound = rules[j].conditions[0].value[0]
        return -math.inf if bound is None else float(bound)

    return [sorted(found, key=low) for found in by_path.values() if len(found) > 1]


def steps(X: np.ndarray, ladders: Sequence[Sequence[int]]) -> np.ndarray:
    """Bin indicators as steps: in each ladder the lowest bin keeps its own column and bin
    ``m ≥ 1`` becomes "at or above bin m". A weight is then the step from the bin below, so an
    L2 prior pulls neighbouring bins together (fine bins without a jagged shape).
    :func:`bin_weights` turns fitted step weights back into each bin's own weight."""
    Z = np.array(X, dtype=float, copy=True)
    for ladder in ladders:
        above = np.cumsum(X[:, ladder[::-1]], axis=1)[:, ::-1]
        Z[:, ladder[1:]] = above[:, 1:]
    return Z


def bin_weights(w: np.ndarray, ladders: Sequence[Sequence[int]]) -> np.ndarray:
    """The per-bin weights equal to step weights ``w`` (see :func:`steps`):
    ``X @ bin_weights(w) == steps(X) @ w`` for 0/1 bins where each row is in at most one bin."""
    out = np.array(w, dtype=float, copy=True)
    for ladder in ladders:
        out[ladder[1:]] = np.cumsum(w[ladder[1:]])
    return out


def monotone_cuts(numbers: np.ndarray, y: np.ndarray, cuts: Sequence[float]) -> list[float]:
    """The ``cuts`` left once adjacent bins whose won rates break monotony are pooled
    (pool-adjacent-violators, in the direction of the overall trend): an ordinal trait's
    bins then rise, or fall, strictly with it. Equal neighbouring rates pool too, since a
    cut between them says nothing. ``numbers`` and ``y`` (0/1) are the rows' values."""
    numbers, y = np.asarray(numbers, dtype=float), np.asarray(y, dtype=float)
    index = np.searchsorted(np.asarray(cuts, dtype=float), numbers, side="right")
    size = np.bincount(index, minlength=len(cuts) + 1).astype(float)
    won = np.bincount(index, weights=y, minlength=len(cuts) + 1)
    filled = size > 0
    centre = np.arange(size.size)[filled]
    rate = won[filled] / size[filled]
    trend = float(np.cov(centre, rate, aweights=size[filled])[0, 1]) if centre.size > 1 else 0.0
    sign = 1.0 if trend >= 0 else -1.0
    # Blocks of bins: [first bin, won, size]; a block is merged into the one before it
    # while their rates are not strictly in the trend's direction.
    blocks: list[list[float]] = []
    for b in np.flatnonzero(filled):
        blocks.append([float(b), won[b], size[b]])
        while (
            len(blocks) > 1
            and sign * (blocks[-1][1] / blocks[-1][2] - blocks[-2][1] / blocks[-2][2]) <= 0
        ):
            _, w2, n2 = blocks.pop()
            blocks[-1][1] += w2
            blocks[-1][2] += n2
    return [float(cuts[int(first) - 1]) for first, _, _ in blocks[1:]]
