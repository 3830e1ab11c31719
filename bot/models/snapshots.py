"""Each label's snapshot of the lead (``scoring.snapshot``), as the learner may use it.

A label stores the lead's traits and event counts beside the rules' features
(``bot.chat.actions.features_at``). A label stored before labels did is read with the lead's
current traits and its stored events up to the label's time (both empty for a lead
deleted since, and ``leadbot forget`` removes a snapshot with the person). Traits in
``learning.exclude_traits`` are dropped either way, so a trait found to leak the outcome is
kept out of old labels too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from scoring.snapshot import LEAKS, lead_snapshot, without
from storage.labels import Label, label_event_counts, states_of


def labelled_snapshots(
    conn: Connection, labels: Sequence[Label], excluded: Collection[str] = LEAKS
) -> list[dict[str, Any]]:
    """One snapshot per label, in the order given, without the ``excluded`` traits."""
    missing = [label for label in labels if "lead" not in (label.features or {})]
    current = states_of(conn, lead_ids=[label.lead_id for label in missing]) if missing else {}
    events = label_event_counts(conn, feedback_ids=[label.id for label in missing])
    found = []
    for label in labels:
        snapshot = (label.features or {}).get("lead")
        if snapshot is None:
            traits = (current.get(label.lead_id) or {}).get("traits") or {}
            snapshot = lead_snapshot(traits, events.get(label.id, {}))
        found.append(without(snapshot, excluded))
    return found
