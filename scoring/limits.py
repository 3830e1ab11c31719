"""The limits of learning: how far one refit may move the points (``Guardrails``) and what
rule discovery may add (``Discovery``).

Plain settings, apart from the numerical code that obeys them (``scoring.refit``,
``scoring.discover``, which need numpy): the configuration reads its defaults here, and a
process that only scores — the ingest writer — loads them without the learning stack.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Guardrails:
    """Limits on what one refit may do.

    ``prior_strength`` is the precision of the prior on each weight in log-odds, i.e. in
    units of ``points_per_logodds⁻²`` on points: the prior's standard deviation is
    ``1/√strength`` log-odds, ``points_per_logodds/√strength`` points (20 points at the
    defaults). One label adds at most ¼ of curvature (``p(1−p) ≤ ¼``) to the weight of a
    rule that fired for it, so a strength of 1 weighs like roughly 4 to 10 labels on which
    the rule fired: a few dozen labels move the points part of the way, hundreds move them
    to what the data says. 0 means no prior (then ``max_change_points`` alone holds them).

    ``points_step`` rounds new points for reading (0.5 or 1). ``rescale_ratio`` is how much
    the spread of the scores must change before ``points_per_logodds`` changes (see
    ``propose``). ``test_fraction`` is the newest share of labels held out for the metrics.
    """

    min_labels: int = 30
    max_change_points: float = 10.0
    prior_strength: float = 1.0
    points_step: float = 0.5
    rescale_ratio: float = 1.5
    test_fraction: float = 0.25

    def __post_init__(self) -> None:
        checks = {
            "min_labels": self.min_labels >= 0,
            "max_change_points": self.max_change_points >= 0,
            "prior_strength": self.prior_strength >= 0,
            "points_step": self.points_step > 0,
            "rescale_ratio": self.rescale_ratio >= 1,
            "test_fraction": 0 < self.test_fraction < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"guardrails.{name}: out of range, got {getattr(self, name)!r}")


@dataclass(frozen=True)  # no slots: the config reads the defaults off the class
class Discovery:
    """The guardrails of rule discovery; ``max_rules`` 0 turns it off."""

    # Defaults from tests/bench/bench_discover.py, default model, 500 labels, held-out AUC
    # against the better of logistic regression and boosting: X Education 0.883 (1.008 ×),
    # the generated bank and linear domains 0.998 × and 0.979 × before scales, 1.008 × and
    # 0.987 × with them (at 20 rules and a gain of 0.0005: 0.985 × and 0.968 ×; X Education
    # 0.886). Small effects (a job, a contact channel) each save little held-out loss, and
    # together they are what a linear model has.
    max_rules: int = 50  # at most; fewer where labels are few (``budget``)
    min_support: int = 10
    min_gain: float = 0.0001  # held-out log loss per label (nats) a new rule must save
    penalty: float = 8.0  # L2 on a new rule's weight (log-odds)
    folds: int = 5
    bins: int = 5
    max_candidates: int = 400
    max_rows: int = 20_000  # the newest labels chosen on (memory: rows × candidates floats)
    intent: bool = True  # also intent rules on event names the labels' leads did
    reasons: tuple[str, ...] = ()  # disqualify reasons that may train negative rules of their own
    ordinal: tuple[str, ...] = ()  # numeric traits whose points must rise (or fall) monotonically
    pairs: int = 20  # "A and B" rules on two traits, chosen after the one-trait rules
