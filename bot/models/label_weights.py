"""How much each label weighs in a refit: a rep's click against a CRM's real outcome.

The rule (README "Connect your CRM", docs/architecture.md "Learning"):

- A rep's label (``source`` "rep") weighs 1.
- A CRM outcome (``source`` "crm:…": a closed deal, a lead status) weighs
  ``crm.label_weight`` (2 by default: as much as two rep clicks).
- ``learning.weights.sources`` replaces either weight for the sources it names, and a rep's
  disqualification weighs that times its reason's weight in ``learning.weights.reasons``
  (1 unless named: "bad timing" 0.5 says less of the lead than "spam"; 0 sets it aside).
- A lead with a CRM outcome is judged by it alone: its latest CRM outcome (from any CRM)
  replaces its rep labels and its earlier CRM outcomes, which weigh 0 — set aside, still
  counted among the labels read (so the every-N-labels trigger sees each new row). A
  closed-won deal outranks a rep's "qualified", and a lost deal a rep's hopes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from config.learning import LabelWeights
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


def reason_of(label: Label) -> str | None:
    """A disqualification's reason as the config names it (``no budget: until Q3`` →
    ``no budget``), None for other labels and for free text."""
    if label.outcome != "disqualified" or not label.reason:
        return None
    return label.reason.split(":", 1)[0].strip().lower() or None


def weigh(labels: Sequence[Label], crm_weight: float, by: LabelWeights | None = None) -> Weighed:
    """The weights of ``labels`` (oldest first, as ``storage.labels.labels_of`` reads them)
    under the rule above (``by``: ``learning.weights``)."""
    by = by or LabelWeights()

    def base(label: Label) -> float:
        weight = by.sources.get(label.source, crm_weight if is_crm(label.source) else 1.0)
        reason = reason_of(label)
        return weight * by.reasons.get(reason, 1.0) if reason is not None else weight

    final: dict[str, int] = {}  # lead → index of its latest CRM outcome
    for i, label in enumerate(labels):
        if is_crm(label.source):
            final[label.lead_id] = i
    weights: list[float] = []
    aside = 0
    for i, label in enumerate(labels):
        replaced = label.lead_id in final and final[label.lead_id] != i
        aside += replaced
        weights.append(0.0 if replaced else base(label))
    used = Counter(label.source for label, w in zip(labels, weights, strict=True) if w > 0)
    return Weighed(tuple(weights), dict(sorted(used.items())), aside)


def describe_sources(used: dict[str, int], set_aside: int = 0) -> str:
    """``30 from reps, 12 from HubSpot; 3 rep labels set aside for a CRM outcome``."""
    parts = ", ".join(f"{n} from {source_name(s)}" for s, n in sorted(used.items(), key=_order))
    if set_aside:
        parts += f"; {set_aside} set aside for a lead's CRM outcome"
    return parts


def _order(item: tuple[str, int]) -> tuple[bool, str]:
    return (item[0] != REP, item[0])
