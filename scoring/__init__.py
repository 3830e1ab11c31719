"""Pure lead scoring: the model, per-lead feature state, scores that explain themselves.

Nothing here does I/O or reads the clock: time is always an argument (unix seconds).
"""

from scoring.engine import score
from scoring.model import (
    Band,
    BandSpec,
    Condition,
    Model,
    Op,
    Rule,
    RuleKind,
    Scale,
    Threshold,
)
from scoring.score import Contribution, Score
from scoring.state import IntentState, LeadState

__all__ = [
    "Band",
    "BandSpec",
    "Condition",
    "Contribution",
    "IntentState",
    "LeadState",
    "Model",
    "Op",
    "Rule",
    "RuleKind",
    "Scale",
    "Score",
    "Threshold",
    "score",
]
