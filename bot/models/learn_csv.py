"""``leadbot learn`` and ``leadbot score``: a scoring model from a history CSV, and scores
for a CSV of leads.

A CSV cell becomes a trait under its column name (a dotted name is a nested trait, as in the
config), so the learned rules score live leads whose traits carry those columns exactly as
they scored the file. Empty cells and placeholders (``Select``, ``NA``, ``-``) are left out
of the traits: they are what a ``… is missing`` rule (``exists: false``) matches.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from config.writer import in_section_order
from scoring import BandSpec, LeadState, Model, Rule, RuleKind, Threshold, score
from scoring.bands import band_for, resolve_thresholds
from scoring.binning import candidate_rules, clean, feature_matrix
from scoring.interactions import PairSearch
from scoring.leaks import Flag, id_columns, leaks
from scoring.metrics import log_loss, roc_auc, top_decile_lift
from scoring.scorecard import PRECISIONS, Recipe, fit_scorecard_points

OUTCOMES = {
    **dict.fromkeys(("1", "yes", "true", "won", "y"), 1),
    **dict.fromkeys(("0", "no", "false", "lost", "n"), 0),
}
TEST_FRACTION = 0.25


class HistoryError(Exception):
    """A CSV or an option the learn/score commands cannot use; the message says where."""


class LeakError(HistoryError):
    """Likely leaks neither ignored nor allowed: no model is written."""


@dataclass(frozen=True)
class Table:
    """A CSV read whole: column names (empty trailing columns dropped), rows as dicts of
    raw cells, the CSV line each row starts on, and the delimiter found."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    lines: tuple[int, ...]
    delimiter: str = ","

    def require(self, column: str, option: str) -> None:
        if column not in self.columns:
            known = ", ".join(repr(c) for c in self.columns)
            raise HistoryError(
                f"{self.name}: {option} {column!r} is not a column (columns: {known})"
            )


def _delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;").delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        return ";" if header.count(";") > header.count(",") else ","


def read_table(path: str | Path) -> Table:
    """Read a comma- or semicolon-separated UTF-8 file (with or without a BOM)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise HistoryError(f"{name}: cannot read it as UTF-8 text: {err}") from None
    return parse_table(text, name)


def parse_table(text: str, name: str = "<csv>") -> Table:
    text = text.removeprefix("\ufeff")
    delimiter = _delimiter(text[:65_536])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise HistoryError(f"{name}: the file is empty (expected a header row)")
    header = [h.strip() for h in header]
    keep = [i for i, h in enumerate(header) if h]
    duplicates = sorted({header[i] for i in keep if header.count(header[i]) > 1})
    if duplicates:
        raise HistoryError(f"{name}: column names appear twice: {', '.join(duplicates)}")
    rows, lines = [], []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        rows.append({header[i]: cells[i] if i < len(cells) else "" for i in keep})
        lines.append(reader.line_num)
    columns = tuple(header[i] for i in keep)
    return Table(name, columns, tuple(rows), tuple(lines), delimiter)


def outcome_of(value: str, *, table: Table, index: int, column: str) -> int:
    label = OUTCOMES.get(value.strip().lower())
    if label is None:
        raise HistoryError(
            f"{table.name} line {table.lines[index]}: {column}: expected 1/0, yes/no, "
            f"true/false or won/lost, got {value!r}"
        )
    return label


def traits_of(row: Mapping[str, str], columns: Iterable[str]) -> dict[str, Any]:
    """The row's non-missing cells as traits; ``a.b`` columns nest as in the config."""
    traits: dict[str, Any] = {}
    for column in columns:
        value = clean(row.get(column))
        if value is None:
            continue
        *parents, leaf = column.split(".")
        node = traits
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return traits


class Progress:
    """A plain-text progress bar on a stream (stderr): ``label [#####.....]  50 %``."""

    def __init__(self, stream: TextIO | None, width: int = 30) -> None:
        self.stream, self.width = stream, width

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.stream is None or total <= 0:
            return
        if done < total and not _is_terminal(self.stream):
            return  # a log file gets each stage once, when it is done, not a redraw per step
        filled = self.width * done // total
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{label:<18} [{bar}] {100 * done // total:3d} %{end}")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


ProgressFn = Callable[[str, int, int], None]


def _features(
    traits: Sequence[Mapping[str, Any]], rules: Sequence[Rule], progress: ProgressFn
) -> np.ndarray:
    blocks, step = [], 500
    for start in range(0, len(traits), step):
        blocks.append(feature_matrix(traits[start : start + step], rules))
        progress("features", min(start + step, len(traits)), len(traits))
    return np.vstack(blocks) if blocks else np.zeros((0, len(rules)))


@dataclass(frozen=True)
class LearnOptions:
    outcome: str
    id_column: str | None = None
    ignore: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()  # learn from these even when they look like ids or leaks
    base: Model | None = None
    name: str = "learned"
    points_per_logodds: float = 20.0
    prior_precision: float | None = None  # None: chosen by out-of-fold log loss
    interactions: bool = True  # pairwise AND rules, as many as held-out rows gain from
    bins: int = 20
    monotone: tuple[str, ...] = ()  # ordinal columns: bins pooled until monotone in won rate
    seed: int = 0
    test_fraction: float = TEST_FRACTION


@dataclass(frozen=True)
class HeldOut:
    """Metrics of a model fitted on a random 75 % of the rows, on the other 25 %."""

    rows: int
    positives: int
    roc_auc: float
    log_loss: float
    top_decile_lift: float


@dataclass(frozen=True)
class Learned:
    model: Model
    held_out: HeldOut | None
    rows: int
    candidates: int
    ids: tuple[Flag, ...] = ()
    leaks: tuple[Flag, ...] = ()


def _columns(table: Table, options: LearnOptions) -> list[str]:
    table.require(options.outcome, "--outcome")
    skip = {options.outcome, *options.ignore}
    if options.id_column is not None:
        table.require(options.id_column, "--id")
        skip.add(options.id_column)
    for column in options.ignore:
        table.require(column, "--ignore")
    for column in options.allow:
        table.require(column, "--allow")
    return [c for c in table.columns if c not in skip]


def _prior(rules: Sequence[Rule], base: Model | None) -> np.ndarray:
    """Log-odds each rule starts from: the base model's points for its own rules, else 0."""
    if base is None:
        return np.zeros(len(rules))
    means = [
        (found.points / base.points_per_logodds) if (found := base.find(r.id)) else 0.0
        for r in rules
    ]
    return np.array(means)


def _quantile_points(totals: np.ndarray, q: float) -> float:
    return float(np.round(np.quantile(totals, q))) if totals.size else 0.0


def _bands_for(totals: np.ndarray) -> BandSpec:
    """Fixed edges at the training scores' 60th and 85th percentiles: the top 15 % hot."""
    warm = _quantile_points(totals, 0.60)
    hot = max(warm + 1.0, _quantile_points(totals, 0.85))
    return BandSpec(warm=Threshold(points=warm), hot=Threshold(points=hot))


def _grades_for(totals: np.ndarray) -> tuple[tuple[str, float], ...]:
    cuts = [_quantile_points(totals, q) for q in (0.85, 0.60, 0.30)]
    return tuple(zip("ABC", cuts, strict=True))


def _recipe(options: LearnOptions, fixed: int) -> Recipe:
    precisions = PRECISIONS if options.prior_precision is None else (options.prior_precision,)
    search = PairSearch(seed=options.seed) if options.interactions else None
    return Recipe(options.points_per_logodds, precisions, search, steps_from=fixed)


def fit_scorecard(
    rows: Sequence[Mapping[str, str]],
    y: np.ndarray,
    columns: Sequence[str],
    options: LearnOptions,
    progress: ProgressFn,
) -> tuple[Model, int]:
    """A points model fitted on these rows, and how many candidate rules it chose from."""
    base = options.base
    cells = {c: [clean(r.get(c)) for r in rows] for c in columns}
    base_fit = list(base.fit_rules) if base is not None else []
    taken = {r.id for r in base_fit}
    ordinal = dict.fromkeys([c for c in options.monotone if c in cells], y.tolist())
    binned = candidate_rules(cells, bins=options.bins, monotone=ordinal)
    candidates = base_fit + [r for r in binned if r.id not in taken]
    traits = [traits_of(r, columns) for r in rows]
    X = _features(traits, candidates, progress)
    progress("fitting", 0, 1)
    card = fit_scorecard_points(
        candidates, X, y, _prior(candidates, base), _recipe(options, len(base_fit))
    )
    progress("fitting", 1, 1)
    learned = list(card.rules)
    intercept = card.intercept
    others = [r for r in base.rules if r.kind is not RuleKind.FIT] if base is not None else []
    totals = card.totals
    extra: dict[str, Any] = {"bands": _bands_for(totals), "grades": _grades_for(totals)}
    if base is not None:
        extra = {"bands": base.bands, "grades": base.grades, "engagement": base.engagement}
    model = Model(
        rules=in_section_order([*learned, *others]),
        points_per_logodds=options.points_per_logodds,
        intercept=intercept,
        name=options.name,
        **extra,
    )
    return model, len(candidates)


def table_totals(model: Model, traits: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Each row's total points: the sum of its fit rules' points (a CSV has no events)."""
    rules = model.fit_rules + model.scaled_rules
    points = np.array([r.points for r in rules])
    return feature_matrix(traits, rules) @ points if rules else np.zeros(len(traits))


def _held_out(
    rows: Sequence[Mapping[str, str]], y: np.ndarray, columns: Sequence[str], options: LearnOptions
) -> HeldOut | None:
    n = len(rows)
    test = np.random.default_rng(options.seed).permutation(n)[: round(n * options.test_fraction)]
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    if len(set(y[mask])) < 2 or len(set(y[~mask])) < 2:
        return None
    train_rows = [r for r, m in zip(rows, mask, strict=True) if not m]
    model, _ = fit_scorecard(train_rows, y[~mask], columns, options, lambda *_: None)
    test_traits = [traits_of(r, columns) for r, m in zip(rows, mask, strict=True) if m]
    totals = table_totals(model, test_traits)
    z = model.intercept + totals / model.points_per_logodds
    p = 1.0 / (1.0 + np.exp(-z))
    yt = y[mask]
    return HeldOut(
        rows=int(mask.sum()),
        positives=int(yt.sum()),
        roc_auc=float(roc_auc(yt, totals)),
        log_loss=float(log_loss(yt, p)),
        top_decile_lift=float(top_decile_lift(yt, totals)),
    )


def _screen(
    table: Table, columns: list[str], y: np.ndarray, options: LearnOptions, notes: TextIO | None
) -> tuple[list[str], tuple[Flag, ...], tuple[Flag, ...]]:
    """Drop id-like columns, flag likely leaks; refuse leaks neither ignored nor allowed.
    Returns the columns to learn from, the ids dropped and the leaks found."""
    cells = {c: [clean(r.get(c)) for r in table.rows] for c in columns}
    ids = tuple(f for f in id_columns(cells) if f.column not in options.allow)
    dropped = {f.column for f in ids}
    kept = [c for c in columns if c not in dropped]
    found = tuple(leaks({c: cells[c] for c in kept}, y, seed=options.seed))
    say = notes.write if notes is not None else (lambda _: None)
    for flag in ids:
        say(f"ignored {flag.column}: {flag.reason} (--allow {_quoted(flag.column)} to keep it)\n")
    for flag in found:
        allowed = " (allowed)" if flag.column in options.allow else ""
        say(f"warning: {flag.column}: {flag.reason} — filled after the sales contact?{allowed}\n")
    refused = [f.column for f in found if f.column not in options.allow]
    if refused:
        raise LeakError(
            f"{table.name}: not writing a model: {len(refused)} likely leak(s): "
            f"{', '.join(refused)}. Leave each out with --ignore COLUMN, or learn from it "
            "anyway with --allow COLUMN (both repeatable), e.g. "
            + " ".join(f"--ignore {_quoted(c)}" for c in refused)
        )
    return kept, ids, found


def _quoted(column: str) -> str:
    return f'"{column}"' if " " in column else column


def learn_table(
    table: Table, options: LearnOptions, progress: ProgressFn, notes: TextIO | None = None
) -> Learned:
    """Held-out metrics from a seeded random split, then the model fitted on every row.
    Id-like columns are dropped and likely leaks refused first (notes on ``notes``)."""
    columns = _columns(table, options)
    y = np.array(
        [
            outcome_of(row[options.outcome], table=table, index=i, column=options.outcome)
            for i, row in enumerate(table.rows)
        ],
        dtype=float,
    )
    if len(set(y.tolist())) < 2:
        raise HistoryError(
            f"{table.name}: {options.outcome}: every row has the same outcome; "
            "learning needs both won and lost leads"
        )
    columns, ids, found = _screen(table, columns, y, options, notes)
    progress("held-out check", 0, 1)
    held_out = _held_out(table.rows, y, columns, options)
    progress("held-out check", 1, 1)
    model, candidates = fit_scorecard(table.rows, y, columns, options, progress)
    return Learned(model, held_out, len(table.rows), candidates, ids, found)


def score_rows(table: Table, model: Model, id_column: str | None) -> list[dict[str, Any]]:
    """One output row per input row: id, score, probability, band and the top 3 reasons."""
    if id_column is not None:
        table.require(id_column, "--id")
    key = id_column or "row"
    scored = []
    for row in table.rows:
        state = LeadState()
        state.identify(traits_of(row, table.columns), model, at=0.0)
        scored.append(score(state, model, now=0.0))
    edges = resolve_thresholds(model.bands, [s.total for s in scored])
    out = []
    for index, (row, result) in enumerate(zip(table.rows, scored, strict=True)):
        reasons = "; ".join(f"{c.label} ({c.points:+g})" for c in result.contributions[:3])
        out.append(
            {
                key: row[id_column] if id_column else str(index + 1),
                "score": f"{result.total:g}",
                "probability": f"{result.probability:.4f}",
                "band": str(band_for(result.total, edges)),
                "reasons": reasons,
            }
        )
    return out


def write_rows(path: str | Path, rows: Sequence[Mapping[str, Any]], delimiter: str) -> None:
    """Write with the input's delimiter, so a spreadsheet opens it as it opened the input."""
    fields = list(rows[0]) if rows else []
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=fields, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def _header(table: Table, learned: Learned, options: LearnOptions) -> str:
    lines = [
        f"Learned by `leadbot learn` from {Path(table.name).name}: {learned.rows} rows, "
        f"outcome column {options.outcome!r}, {learned.candidates} candidate rules, "
        f"{len(learned.model.fit_rules)} kept.",
        "points = 20 × log-odds; probability = sigmoid(intercept + score / points_per_logodds).",
    ]
    if learned.held_out is not None:
        lines.append(held_out_text(learned.held_out, options))
    lines += [f"Not learned from {f.column}: {f.reason}." for f in learned.ids]
    lines += [f"Allowed despite a leak warning: {f.column}: {f.reason}." for f in learned.leaks]
    note = band_note(learned.model.bands)
    if options.base is None and note is not None:
        lines.append(note)
    return "\n".join(lines)


def band_note(bands: BandSpec) -> str | None:
    """Why a learned band edge is negative (a reader takes ``warm: -19`` for a bug), or None."""
    edges = (bands.warm.points, bands.hot.points)
    return _NEGATIVE_EDGES if any(e is not None and e < 0 for e in edges) else None


# Kept, not clamped: the edges are the training scores' 60th/85th percentiles, so clamping
# one at 0 would silently change how many leads are warm or hot.
_NEGATIVE_EDGES = (
    "A negative band edge is expected: points are log-odds relative to a lead that matches "
    "no rule (probability = sigmoid(intercept)), so a lead with more drawbacks than "
    "strengths scores below 0. warm is the 60th and hot the 85th percentile of the training "
    "leads' points: the top 40 % are warm or hot, the top 15 % hot."
)


def held_out_text(held: HeldOut, options: LearnOptions) -> str:
    share = round(100 * options.test_fraction)
    return (
        f"Held out: a random {share} % of the rows (seed {options.seed}; a CSV has no time "
        f"order), {held.rows} rows, {held.positives} won: ROC AUC {held.roc_auc:.3f}, "
        f"log loss {held.log_loss:.3f}, top-decile lift {held.top_decile_lift:.2f}"
    )


def run_learn(
    source: str | Path, out: str | Path, options: LearnOptions, stderr: TextIO | None = None
) -> Learned:
    """``leadbot learn``: read, learn, write the model YAML; progress and metrics on stderr."""
    from config.writer import model_yaml

    stream = stderr if stderr is not None else sys.stderr
    table = read_table(source)
    learned = learn_table(table, options, Progress(stream), notes=stream)
    Path(out).write_text(
        model_yaml(learned.model, header=_header(table, learned, options)), encoding="utf-8"
    )
    if learned.held_out is not None:
        stream.write(held_out_text(learned.held_out, options) + "\n")
    stream.write(f"wrote {out}: {len(learned.model.rules)} rules\n")
    return learned


def run_score(source: str | Path, model: Model, out: str | Path, id_column: str | None) -> int:
    """``leadbot score``: write one scored row per input row; returns the number of rows."""
    table = read_table(source)
    rows = score_rows(table, model, id_column)
    write_rows(out, rows, table.delimiter)
    return len(rows)
