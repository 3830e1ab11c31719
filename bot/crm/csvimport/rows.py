"""An export's records as leads to import: traits, times and outcome, or what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.crm.csvimport import cells
from bot.crm.csvimport.cells import CellError, DateOrder
from bot.crm.csvimport.layouts import EMAIL_TRAIT, EMPLOYEES_TRAIT, Layout, custom_trait, header_key
from bot.crm.csvimport.reader import FileProblem, Record, Table
from config.crm import Crm, Outcome
from scoring.model import place


@dataclass(frozen=True)
class LeadRow:
    line: int
    record_id: str
    email: str
    traits: dict[str, Any]
    created: float | None
    modified: float | None
    outcome: Outcome | None
    reason: str


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    problem: str


@dataclass
class Columns:
    """Where each column of one file goes: positions of the key columns, and per position
    the header and its trait path (None: not a trait)."""

    layout: Layout
    header: list[str]
    traits: list[str | None]
    record: int
    email: int
    created: int | None
    modified: int | None
    outcome: tuple[int | None, int | None]
    order: DateOrder | None = None
    crm: Crm = field(default_factory=Crm)

    @classmethod
    def of(cls, table: Table, layout: Layout, crm: Crm, where: str) -> Columns:
        keys = [header_key(h) for h in table.header]
        mapping = layout.columns(crm)
        traits = [mapping[k] if k in mapping else custom_trait(h)
                  for k, h in zip(keys, table.header, strict=True)]  # fmt: skip
        emails = [i for i, path in enumerate(traits) if path == EMAIL_TRAIT]
        if header_key(layout.record) not in keys:
            raise FileProblem(_missing(where, layout, layout.record, table.header))
        if not emails:
            raise FileProblem(_missing(where, layout, "Email", table.header))

        def position(header: str) -> int | None:
            key = header_key(header)
            return keys.index(key) if key in keys else None

        record = position(layout.record)
        assert record is not None
        first, second = layout.outcome_columns
        return cls(
            layout=layout, header=table.header, traits=traits, record=record, email=emails[0],
            created=position(layout.created), modified=position(layout.modified),
            outcome=(position(first), position(second)), crm=crm,
        )  # fmt: skip

    def dates(self, table: Table) -> list[str]:
        wanted = [i for i in (self.created, self.modified) if i is not None]
        return [r.cells[i] for r in table.records for i in wanted if i < len(r.cells)]


def _missing(where: str, layout: Layout, column: str, header: list[str]) -> str:
    return (
        f"{where}: no {column!r} column: not a {layout.crm} export as leadbot reads it (its "
        f"columns: {', '.join(header)}); crm.{layout.crm}.columns in the config maps others"
    )


def lead_row(record: Record, columns: Columns) -> LeadRow | RowError:
    """The lead a record is, or the first thing wrong with it."""
    header = columns.header
    if len(record.cells) > len(header):
        extra = f"{len(record.cells)} cells, the header has {len(header)}"
        return RowError(record.line, "(row)", f"{extra}: a separator inside an unquoted cell?")
    values = [c.strip() for c in record.cells] + [""] * (len(header) - len(record.cells))
    record_id = values[columns.record]
    if not record_id:
        return RowError(record.line, header[columns.record], "empty: every row needs its id")
    if not values[columns.email]:
        return RowError(record.line, header[columns.email], "empty: a lead is keyed by e-mail")
    try:
        traits = _traits(values, columns)
        created = _time(values, columns.created, columns)
        modified = _time(values, columns.modified, columns)
        outcome, reason = _outcome(values, columns)
    except _ColumnError as exc:
        return RowError(record.line, exc.column, exc.problem)
    email = str(traits.get(EMAIL_TRAIT) or cells.email(values[columns.email]))
    return LeadRow(record.line, record_id, email, traits, created, modified, outcome, reason)


class _ColumnError(Exception):
    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"{column}: {problem}")
        self.column, self.problem = column, problem


def _traits(values: list[str], columns: Columns) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    for i, path in enumerate(columns.traits):
        if path is None or not values[i]:
            continue
        value: Any = values[i]
        try:
            if path == EMAIL_TRAIT or i == columns.email:
                value = cells.email(value)
            elif path == EMPLOYEES_TRAIT:
                value = cells.employee_count(value)
        except CellError as exc:
            raise _ColumnError(columns.header[i], str(exc)) from None
        place(traits, path, value)
    return traits


def _time(values: list[str], index: int | None, columns: Columns) -> float | None:
    if index is None or not values[index]:
        return None
    try:
        return cells.parse_time(values[index], columns.order)
    except CellError as exc:
        raise _ColumnError(columns.header[index], str(exc)) from None


def _outcome(values: list[str], columns: Columns) -> tuple[Outcome | None, str]:
    first, second = (values[i] if i is not None else "" for i in columns.outcome)
    if columns.layout.crm == "hubspot":
        outcome = columns.crm.hubspot.contact(first, second)
        reason = f"lifecycle stage {first}" if outcome == "won" else f"lead status {second}"
        return outcome, reason
    index = columns.outcome[0]
    try:
        converted = cells.flag(first)
    except CellError as exc:
        assert index is not None  # an empty cell is never an error
        raise _ColumnError(columns.header[index], str(exc)) from None
    outcome = columns.crm.salesforce.lead("1" if converted else "0", second)
    return outcome, "converted" if outcome == "won" else f"lead status {second}"
