"""A refit of a model's points from labelled feedback, within guardrails, as a proposal.

The model's probability is ``σ(intercept + Σ pointsⱼ·xⱼ / points_per_logodds)``: a logistic
regression whose weights are ``pointsⱼ / points_per_logodds``. ``propose`` refits those
weights by MAP with a Gaussian prior centred on the current ones (``scoring.learn``), then
applies the guardrails, rounds the points for reading, and recalibrates the intercept. It is
pure: labels, features and times come in as arrays, a ``Proposal`` comes out.

Each label may carry a weight (``weights``): in the likelihood a label of weight 2 counts
exactly as that label given twice (a closed deal from the CRM against a rep's click, see
``bot.models.learning``). Weight 0 sets a label aside: it is counted among the labels read
but neither fitted nor held out. The time split and the held-out metrics count each label
(of weight > 0) once: they check how the model ranks leads, not how much each label weighs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from scoring.bands import band_for, resolve_thresholds
from scoring.learn import fit_logistic, sigmoid
from scoring.limits import Guardrails
from scoring.metrics import conversion_by_group, log_loss, roc_auc, time_split, top_decile_lift
from scoring.model import Model


@dataclass(frozen=True)
class Proposal:
    """The refitted model and what changed. ``metrics_*`` are on the held-out newest labels:
    ``before`` scores them with the current model, ``after`` with a model refitted (by the
    same procedure and guardrails) on the older labels only. The proposed ``model`` itself
    is refitted on all labels. ``reason`` says why nothing changed, when nothing did."""

    model: Model
    changes: dict[str, tuple[float, float]]
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    labels: int
    reason: str | None = None


def _points(model: Model) -> np.ndarray:
    return np.array([rule.points for rule in model.rules], dtype=float)


def logodds(model: Model, features: np.ndarray) -> np.ndarray:
    """Each row's ``intercept + total / points_per_logodds``: what ``probability`` links."""
    total = np.asarray(features, dtype=float) @ _points(model)
    return model.intercept + total / model.points_per_logodds


BANDS = ("hot", "warm", "cold")


def evaluate(model: Model, features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss, top-decile lift and the conversion of each band (``hot_conversion``
    …, with ``hot_labels`` … beside them) of the model on these labels; nan where a metric is
    undefined (AUC with one class, a band no label falls in). Percentile band edges are
    taken over these rows' scores (the stored population is not known here)."""
    X = np.asarray(features, dtype=float)
    z = logodds(model, X)
    metrics = {
        "roc_auc": roc_auc(labels, z),
        "log_loss": log_loss(labels, sigmoid(z)),
        "top_decile_lift": top_decile_lift(labels, z),
    }
    totals = X @ _points(model)
    edges = resolve_thresholds(model.bands, totals.tolist())
    bands = np.array([str(band_for(t, edges)) for t in totals.tolist()], dtype=object)
    found = conversion_by_group(labels, bands) if totals.size else {}
    for band in BANDS:
        count, rate = found.get(band, (0, math.nan))
        metrics[f"{band}_conversion"], metrics[f"{band}_labels"] = rate, float(count)
    return metrics


def _validate(
    model: Model,
    features: np.ndarray,
    labels: np.ndarray,
    at: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    y = np.asarray(labels, dtype=float).ravel()
    X = np.asarray(features, dtype=float)
    times = np.asarray(at, dtype=float).ravel()
    k = len(model.rules)
    if X.shape != (y.size, k):
        raise ValueError(
            f"features: expected shape ({y.size}, {k}) (labels × the model's rules), got {X.shape}"
        )
    if times.shape != y.shape:
        raise ValueError(f"at: expected one time per label ({y.size}), got {times.size}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"labels: must be 0 or 1, got {float(y[(y != 0) & (y != 1)][0])!r}")
    if not np.all(np.isfinite(X)):
        raise ValueError("features: every value must be finite (found nan or inf)")
    if weights is None:
        return X, y, times, None
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape != y.shape:
        raise ValueError(f"weights: expected one weight per label ({y.size}), got {w.size}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights: every weight must be finite and 0 or more")
    return X, y, times, (None if np.all(w == 1) else w)


def _refusal(y: np.ndarray, guardrails: Guardrails, aside: int = 0) -> str | None:
    if y.size < guardrails.min_labels:
        extra = f" ({aside} more set aside)" if aside else ""
        return f"{y.size} labels{extra}, fewer than the minimum of {guardrails.min_labels}"
    if y.size == 0 or y.min() == y.max():
        outcome = "positive" if y.size and y[0] == 1 else "negative"
        return f"all {y.size} labels are {outcome}: a refit needs both outcomes"
    return None


def propose(
    model: Model,
    features: np.ndarray,
    labels: np.ndarray,
    at: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    guardrails: Guardrails = Guardrails(),
) -> Proposal:
    """Refit ``model``'s points, intercept and ``points_per_logodds`` on labelled feedback.

    ``features`` is ``(n, len(model.rules))`` in ``model.rules`` order (the snapshot taken
    when each label was given), ``labels`` ``(n,)`` 0/1, ``at`` ``(n,)`` unix seconds of
    each label, ``weights`` ``(n,)`` each label's weight in the likelihood (None: 1 each; 0
    sets a label aside). ``Proposal.labels`` counts every label given. Below ``min_labels``
    labels of weight > 0 (or with one outcome only) the model comes back unchanged with a
    ``reason``. See ``refit`` for what the guardrails do."""
    X, y, times, w = _validate(model, features, labels, at, weights)
    given = int(y.size)
    if w is not None and np.any(w == 0):
        kept = w > 0
        X, y, times, w = X[kept], y[kept], times[kept], w[kept]
    train, test = time_split(times, guardrails.test_fraction)
    before = evaluate(model, X[test], y[test])
    reason = _refusal(y, guardrails, given - int(y.size))
    if reason is not None:
        return Proposal(model, {}, before, dict(before), given, reason)
    if y[train].size and y[train].min() != y[train].max():
        older = refit(model, X[train], y[train], guardrails, _part(w, train))
        after = evaluate(older, X[test], y[test])
    else:  # the older labels alone cannot be fitted: nothing honest to report
        after = dict.fromkeys(before, math.nan)
    proposed = refit(model, X, y, guardrails, w)
    old, new = _points(model), _points(proposed)
    changes = {
        rule.id: (float(old[j]), float(new[j]))
        for j, rule in enumerate(model.rules)
        if new[j] != old[j]
    }
    unchanged = not changes and (proposed.intercept, proposed.points_per_logodds) == (
        model.intercept,
        model.points_per_logodds,
    )
    reason = "the labels agree with the current model" if unchanged else None
    return Proposal(proposed, changes, before, after, given, reason)


def _part(w: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if w is None else w[rows]


def refit(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    guardrails: Guardrails,
    weights: np.ndarray | None = None,
) -> Model:
    """The guarded refit, on labels with both outcomes, each weighing ``weights`` (> 0;
    None: 1 each) in the likelihood, the spread of step 3 and the intercept of step 5: a
    label of weight 2 is that label twice.

    1. Rules whose feature is zero on every row keep their points exactly: no label says
       anything about them.
    2. The other weights are fitted by MAP, prior ``N(points/ppl, 1/prior_strength)``, with
       signs constrained: a rule with negative points stays ≤ 0, positive stays ≥ 0 (zero
       points: free). A weight that crosses zero is pinned at 0 and the rest refitted.
    3. ``points_per_logodds`` stays as it is unless the fitted weights spread the scores
       over a range more than ``rescale_ratio`` times wider or narrower (standard deviation
       of the rows' totals); then it is rescaled so the totals keep their old spread, and
       rounded to two significant figures. Points stay on a familiar scale and the band
       thresholds (in points) keep their meaning; the change of scale goes into ppl.
    4. Points = weight × ppl, moved at most ``max_change_points`` from the old points (at
       the new ppl), rounded to ``points_step`` (a rule that would move less than half a
       step keeps its old points), and never closer to zero than one step: negative rules
       stay negative, positive rules positive, and no rule drops out of the model.
    5. The intercept is refitted with the rounded points held fixed, so the mean predicted
       probability on these labels equals their conversion rate.
    """
    ppl = model.points_per_logodds
    old = _points(model)
    touched = np.flatnonzero(np.any(X != 0, axis=0))
    Xt = X[:, touched]
    # Weights of 1 are the unweighted fit: the same arithmetic, bit for bit.
    w = None if weights is None or np.all(weights == 1) else np.asarray(weights, dtype=float)
    fitted = _fit_signed(Xt, y, old[touched] / ppl, np.sign(old[touched]), guardrails, w)
    new_ppl = _scale(ppl, Xt @ old[touched] / ppl, Xt @ fitted, guardrails.rescale_ratio, w)
    points = old.copy()
    points[touched] = _guard(old[touched], fitted * new_ppl, guardrails)
    offset = X @ points / new_ppl
    intercept = fit_logistic(np.zeros((y.size, 0)), y, offset=offset, sample_weight=w).intercept
    rules = tuple(
        rule if points[j] == rule.points else replace(rule, points=float(points[j]))
        for j, rule in enumerate(model.rules)
    )
    return replace(model, rules=rules, intercept=round(intercept, 4), points_per_logodds=new_ppl)


def _fit_signed(
    X: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    sign: np.ndarray,
    guardrails: Guardrails,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """MAP weights with each weight kept on the side of zero its ``sign`` says (an active
    set: pin the offenders at 0 and refit the others, until none offends)."""
    free = np.ones(mean.size, dtype=bool)
    intercept: float | None = None
    while True:
        fit = fit_logistic(
            X[:, free],
            y,
            prior_mean=mean[free],
            prior_precision=guardrails.prior_strength,
            intercept_init=intercept,
            sample_weight=sample_weight,
        )
        weights = np.zeros(mean.size)
        weights[free] = fit.weights
        offends = free & (((sign < 0) & (weights > 0)) | ((sign > 0) & (weights < 0)))
        if not offends.any():
            return weights
        free &= ~offends
        intercept = fit.intercept


def _std(values: np.ndarray, weights: np.ndarray | None) -> float:
    """The standard deviation, each value counted ``weights`` times (None: once)."""
    if weights is None:
        return float(np.std(values))
    mean = np.average(values, weights=weights)
    return float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))


NO_SPREAD = 1e-9


def _scale(
    ppl: float,
    old_logodds: np.ndarray,
    new_logodds: np.ndarray,
    ratio: float,
    weights: np.ndarray | None = None,
) -> float:
    old_spread = _std(old_logodds, weights)
    new_spread = _std(new_logodds, weights)
    # A spread under NO_SPREAD log-odds is no ranking at all, only rounding (2e-17 where
    # the same labels weighted gave exactly 0): rescaling by it would blow ppl up to 1e18.
    if old_spread < NO_SPREAD or new_spread < NO_SPREAD:
        return ppl
    change = new_spread / old_spread
    if 1 / ratio <= change <= ratio:
        return ppl
    return _two_figures(ppl / change)


def _two_figures(value: float) -> float:
    digits = 1 - math.floor(math.log10(abs(value)))
    return float(round(value, digits))


def _guard(old: np.ndarray, new: np.ndarray, guardrails: Guardrails) -> np.ndarray:
    most, step = guardrails.max_change_points, guardrails.points_step
    new = np.clip(new, old - most, old + most)
    new = np.where(old < 0, np.minimum(new, 0.0), np.where(old > 0, np.maximum(new, 0.0), new))
    rounded = np.round(new / step) * step
    # Rounding may step past the limit: then take the step towards the old points.
    over = np.abs(rounded - old) > most + 1e-9
    rounded = np.where(over, rounded - np.sign(rounded - old) * step, rounded)
    # A limit finer than the step may leave no grid point in reach: then nothing moves.
    rounded = np.where(np.abs(rounded - old) > most + 1e-9, old, rounded)
    kept = np.where(np.abs(new - old) < step / 2, old, rounded)
    # A rule keeps its sign and at least one step (or its old points, if smaller): a rule
    # the labels say nothing for today stays in the model for a later refit to raise again.
    least = np.where(np.abs(old) < step, old, np.sign(old) * step)
    kept = np.where(
        old < 0, np.minimum(kept, least), np.where(old > 0, np.maximum(kept, least), kept)
    )
    return kept + 0.0  # no -0.0 in a written model
