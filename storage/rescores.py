"""The rescore's reads and bulk writes (``bot.models.rescore``): every lead at once, in
driver SQL, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from storage.rawsql import execute_many, placeholders, query

# The columns a rescore may rewrite with ``set_columns``.
COLUMNS = frozenset(
    ("score", "fit", "intent", "band", "grade", "engagement", "probability", "scored_at",
     "state", "alerted_at")
)  # fmt: skip


class RescoreRow(NamedTuple):
    """A lead as a rescore reads it. ``state`` is the stored JSON (text or decoded, by
    driver); ``alerted_at`` the driver's time value (``storage.rawsql.time_out`` reads it)."""

    id: str
    state: Any
    score: float
    band: str
    alerted_at: Any
    email: str | None
    name: str | None
    company: str | None


_LEADS = (
    "SELECT id, state, score, band, alerted_at, email, name, company FROM leads WHERE NOT anonymous"
)


def leads_to_rescore(conn: Any) -> list[RescoreRow]:
    """Every known (non-anonymous) lead."""
    return [RescoreRow(*r) for r in query(conn, _LEADS)]


def set_columns(conn: Any, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
    """``UPDATE leads SET columns… WHERE id = …`` once per row of ``values`` (the column
    values, then the lead id)."""
    if not values:
        return
    unknown = set(columns) - COLUMNS
    if unknown:
        raise ValueError(f"set_columns: not a rescore column: {sorted(unknown)}")
    marks = placeholders(conn, len(columns) + 1)[1:-1].split(",")
    sets = ", ".join(f"{col} = {mark}" for col, mark in zip(columns, marks, strict=False))
    execute_many(conn, f"UPDATE leads SET {sets} WHERE id = {marks[-1]}", values)
