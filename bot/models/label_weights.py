"""How much each label weighs in a refit: a rep's click against a CRM's real outcome.

The rule (README "Connect your CRM", docs/architecture.md "Learning"):

- A rep's label (``source`` "rep") weighs 1.
- A CRM outcome (``source`` "crm:…": a closed deal, a lead status) weighs
  ``crm.label_weight`` (2 by default: as much as two rep clicks).
- A lead with a CRM outcome is judged by it alone: its latest CRM outcome (from any CRM)
  replaces its rep labels and its earlier CRM outcomes, which weigh 0 — set aside, still
  counted among the labels read (so the every-N-labels trigger sees each new row). A
  closed-won deal outranks a rep's "qualified", and a lost deal a rep's hopes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from storage.labels import Label

REP = "rep"
CRM_PREFIX = "crm:"
SOURCE_NAMES = {REP: "reps", "crm:hubspot": "HubSpot", "crm:salesforce": "Salesforce"}


def is_crm(source: str) -> bool:
    return source.startswith(CRM_PREFIX)


def source_name(source: str) -> str:
    """``reps``, ``HubSpot``, ``Salesforce`` (another CRM: its name after ``crm:``)."""
    return SOURCE_NAMES.get(source, source.removeprefix(CRM_PREFIX))


@dataclass(frozen=True)
class Weighed:
    """Each label's weight, in the order given; how many labels of each source the fit
    uses (weight > 0) and how many were set aside for a lead's CRM outcome."""

    weights: tuple[float, ...]
    used: dict[str, int]
    set_aside: int


def weigh(labels: Sequence[Label], crm_weight: float) -> Weighed:
    """The weights of ``labels`` (oldest first, as ``storage.labels.labels_of`` reads them)
    under the rule above."""
    final: dict[str, int] = {}  # lead → index of its latest CRM outcome
    for i, label in enumerate(labels):
        if is_crm(label.source):
            final[label.lead_id] = i
    weights: list[float] = []
    for i, label in enumerate(labels):
        if label.lead_id in final:
            weights.append(crm_weight if final[label.lead_id] == i else 0.0)
        else:
            weights.append(1.0)
    used = Counter(label.source for label, w in zip(labels, weights, strict=True) if w > 0)
    return Weighed(tuple(weights), dict(sorted(used.items())), weights.count(0.0))


def describe_sources(used: dict[str, int], set_aside: int = 0) -> str:
    """``30 from reps, 12 from HubSpot; 3 rep labels set aside for a CRM outcome``."""
    parts = ", ".join(f"{n} from {source_name(s)}" for s, n in sorted(used.items(), key=_order))
    if set_aside:
        parts += f"; {set_aside} set aside for a lead's CRM outcome"
    return parts


def _order(item: tuple[str, int]) -> tuple[bool, str]:
    return (item[0] != REP, item[0])
