"""A score and its explanation: the contributions that sum to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.model import Band


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one rule adds to a score: ``points = weight × feature``.

    For intent rules ``value`` is the decayed, capped count the points were computed from,
    ``count`` the number of matching events and ``last_seen`` the newest (unix seconds).
    For a scaled fit rule ``value`` is its share of the points and ``reading`` the lead's
    number it was read from.
    """

    rule: str
    label: str
    group: str
    points: float
    weight: float
    value: float
    count: int | None = None
    last_seen: float | None = None
    reading: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "label": self.label,
            "group": self.group,
            "points": round(self.points, 2),
            "weight": self.weight,
            "value": round(self.value, 4),
        }
        if self.count is not None:
            out["count"] = self.count
            out["last_seen"] = self.last_seen
        if self.reading is not None:
            out["reading"] = self.reading
        return out


@dataclass(frozen=True, slots=True)
class Score:
    """Total = fit + intent = Σ contribution points; band, fit grade (A–D), engagement
    level (1–4) and the calibrated probability."""

    total: float
    fit: float
    intent: float
    band: Band
    grade: str
    engagement: int
    probability: float
    contributions: tuple[Contribution, ...]

    @property
    def matrix(self) -> str:
        """The fit × engagement cell, e.g. ``A4`` (best fit, most engaged)."""
        return f"{self.grade}{self.engagement}"
