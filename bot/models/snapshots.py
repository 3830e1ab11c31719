"""Each label's snapshot of the lead (``scoring.snapshot``), as the learner may use it.

A label stores the lead's traits and event counts beside the rules' features
(``bot.chat.actions.features_at``). A label stored before labels did is read with the lead's
current traits and its stored events up to the label's time (both empty for a lead
deleted since, and ``leadbot forget`` removes a snapshot with the person); one stored
before snapshots kept the events' numbers, or their yes/no flags, gets them from the stored
events the same way.
Traits in ``learning.exclude_traits`` are dropped either way, so a trait found to leak the
outcome is kept out of old labels too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from scoring.discover import readable, rule_columns
from scoring.model import Model
from scoring.snapshot import LEAKS, lead_snapshot, without
from storage.event_properties import label_event_properties
from storage.labels import Label, label_event_counts, states_of


def labelled_snapshots(
    conn: Connection, labels: Sequence[Label], excluded: Collection[str] = LEAKS
) -> list[dict[str, Any]]:
    """One snapshot per label, in the order given, without the ``excluded`` traits."""
    missing = [label for label in labels if "lead" not in (label.features or {})]
    current = states_of(conn, lead_ids=[label.lead_id for label in missing]) if missing else {}
    events = label_event_counts(conn, feedback_ids=[label.id for label in missing])
    carried = _carried_since(conn, labels)
    found = []
    for label in labels:
        snapshot = (label.features or {}).get("lead")
        if snapshot is None:
            traits = (current.get(label.lead_id) or {}).get("traits") or {}
            snapshot = lead_snapshot(traits, events.get(label.id, {}))
        elif _older(snapshot):
            snapshot = _filled(snapshot, carried.get(label.id, {}))
        found.append(without(snapshot, excluded))
    return found


CARRIED = (("numbers", 0), ("flags", 1))  # a snapshot's parts read from the stored events


def _older(snapshot: Mapping[str, Any]) -> bool:
    """Whether a stored snapshot predates one of the ``CARRIED`` parts."""
    return any(part not in snapshot for part, _ in CARRIED)


def _filled(snapshot: Mapping[str, Any], carried: Mapping[str, Any]) -> dict[str, Any]:
    """``snapshot`` with the parts it lacks read from its events, for the names it counts."""
    counted = snapshot.get("events") or {}
    filled = dict(snapshot)
    for part, at in CARRIED:
        if part not in snapshot:
            filled[part] = {k: v[at] for k, v in carried.items() if k in counted and v[at]}
    return filled


def _carried_since(conn: Connection, labels: Sequence[Label]) -> dict[int, Any]:
    """For snapshots stored before they kept numbers, or flags: what their events carried,
    read from the stored events up to the label's time."""
    older = [
        label.id for label in labels
        if (snap := (label.features or {}).get("lead")) is not None
        and _older(snap) and snap.get("events")
    ]  # fmt: skip
    return label_event_properties(conn, feedback_ids=older) if older else {}


def fill_fit_features(
    conn: Connection, model: Model, labels: Sequence[Label], X: np.ndarray
) -> None:
    """In place: a rule a label's stored features lack (a rule added since the label, by a
    retrain or an import) is read from the label's snapshot when it can be
    (``scoring.discover.readable``: fit rules on its traits; intent rules on a track name or
    on pages, plain or with a numeric property test, from its event counts and numbers at
    the label's time), so a new rule's next refit sees it on old labels as they were (never
    0 for all of them). A rule on a trait the snapshot leaves out (a name, an e-mail) reads
    as if it were missing."""
    rules = [(j, r) for j, r in enumerate(model.rules) if readable(r)]
    stored = [(label.features or {}).get("rules") or {} for label in labels]
    rows = [i for i, have in enumerate(stored) if any(r.id not in have for _, r in rules)]
    if not rows:
        return
    snaps = labelled_snapshots(conn, [labels[i] for i in rows], excluded=())
    at = [labels[i].at.timestamp() for i in rows]
    filled = rule_columns(snaps, at, [r for _, r in rules])
    for k, i in enumerate(rows):
        for c, (j, rule) in enumerate(rules):
            if rule.id not in stored[i]:
                X[i, j] = filled[k, c]
