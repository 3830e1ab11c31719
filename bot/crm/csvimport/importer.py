"""A CRM export into leadbot: each row an identify call through the real ingest pipeline,
its CRM record linked, its outcome a label.

- The lead is keyed by e-mail (the call has no userId), so a later webhook or SDK call for
  the same person, whatever its userId, lands on it.
- The call's messageId is ``<crm>:<record id>:import:<hash of the row's traits>``: the same
  row imported again is a duplicate the pipeline drops (no event, no history row); a row
  whose cells changed since is a new call that updates the lead's traits.
- Its timestamp is the row's create date; the lead is scored at the import's time.
- History is not news: an import never queues an alert. A lead imported hot counts as
  announced at the import, so the next alert comes when it crosses into hot again.
- Outcomes go through ``bot.crm.outcomes.store_outcomes`` (ref ``<record id>:<outcome>``,
  so an import, a webhook and a pull store one label), at the row's last-modified date when
  the export has one, else the import's time.
- Rows go in groups of ``CHUNK``, each its own transactions; a crash midway loses nothing
  that a second run does not redo.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.crm.base import CrmOutcome
from bot.crm.csvimport.cells import DateOrder, date_order
from bot.crm.csvimport.layouts import Layout
from bot.crm.csvimport.reader import read_table
from bot.crm.csvimport.rows import Columns, LeadRow, RowError, lead_row
from bot.crm.outcomes import store_outcomes
from bot.errors import InputError
from bot.ingest.inbound import InboundEvent, parse_body
from bot.ingest.pipeline import Pipeline
from bot.models.edges import BandEdges
from bot.models.versions import active_model
from config.loader import LeadbotConfig
from scoring.bands import Thresholds
from storage import crm as repo
from storage.engine import sqlite_writer_engine

CHUNK = 200  # rows per ingest transaction
PROGRESS_EVERY = 1000  # rows between progress lines


class Quiet(Router):
    """Routes no alert anywhere: an import replays history, which is not news."""

    def destinations(self, traits: Any) -> tuple[str, ...]:
        return ()


@dataclass
class Tally:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    won: int = 0
    lost: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self, total: int, elapsed: float) -> str:
        return (
            f"{self.rows}/{total} rows read: {self.created} leads created, {self.updated} "
            f"updated, {self.unchanged} unchanged; labels {self.won} won, {self.lost} lost; "
            f"{self.skipped} rows skipped ({elapsed:.1f} s)"
        )


@dataclass(frozen=True)
class Options:
    order: DateOrder | None = None  # how to read 3/5/2024; None: as the file shows
    record_url: str | None = None  # "…/{id}/view" when the CRM's web address is known
    progress_every: int = PROGRESS_EVERY


async def import_file(
    engine: AsyncEngine, config: LeadbotConfig, layout: Layout, path: Path, *, now: float,
    err: TextIO, options: Options | None = None,
) -> Tally:  # fmt: skip
    """Import ``path``; problems (``file:line: column: what``) and progress go to ``err``.
    Raises ``FileProblem`` when the file cannot be read as ``layout``'s export."""
    options = options or Options()
    table = read_table(path)
    columns = Columns.of(table, layout, config.crm, str(path))
    columns.order = options.order or date_order(columns.dates(table))
    if table.encoding != "utf-8":
        err.write(f"{path}: not UTF-8, read as {table.encoding}\n")
    importer = _Importer(engine, config, layout, now, options)
    await importer.start()
    tally, total, started = Tally(), len(table.records), time.perf_counter()
    async with Pipeline(engine, config, inline=True, router=Quiet()) as pipeline, importer:
        for chunk in _chunks(table.records):
            rows = []
            for record in chunk:
                tally.rows += 1
                row = lead_row(record, columns)
                if isinstance(row, RowError):
                    _skip(tally, err, path, row)
                else:
                    rows.append(row)
            await importer.run(pipeline, rows, tally, err, path)
            if tally.rows % options.progress_every < len(chunk) or tally.rows == total:
                err.write(f"import: {tally.line(total, time.perf_counter() - started)}\n")
                err.flush()
    return tally


def _chunks(records: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(records), CHUNK):
        yield records[start : start + CHUNK]


def _skip(tally: Tally, err: TextIO, path: Path, row: RowError) -> None:
    tally.skipped += 1
    problem = f"{path}:{row.line}: {row.column}: {row.problem}"
    tally.problems.append(problem)
    err.write(problem + "\n")


def identify_call(crm: str, row: LeadRow, now: float) -> InboundEvent:
    """The row as a Segment-spec identify call, through the webhook's own parser."""
    digest = hashlib.sha256(orjson.dumps(row.traits, option=orjson.OPT_SORT_KEYS))
    call: dict[str, Any] = {
        "type": "identify",
        "messageId": f"{crm}:{row.record_id}:import:{digest.hexdigest()[:20]}",
        "traits": row.traits,
    }
    if row.created is not None:
        call["timestamp"] = datetime.fromtimestamp(row.created, UTC).isoformat()
    [event] = parse_body(orjson.dumps(call), now=now)
    return event


class _Importer:
    def __init__(
        self, engine: AsyncEngine, config: LeadbotConfig, layout: Layout, now: float,
        options: Options,
    ) -> None:  # fmt: skip
        self.engine, self.config, self.layout = engine, config, layout
        self.now, self.options = now, options
        self.model = config.model
        self.thresholds: Thresholds | None = None
        self.seen: set[str] = set()  # e-mails imported by this run
        # SQLite: links are written on a synchronous connection, one thread hop per chunk
        # rather than two per row (as the pipeline's writer does).
        self.sync = sqlite_writer_engine(engine)

    async def __aenter__(self) -> _Importer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.sync is not None:
            self.sync.dispose()

    async def start(self) -> None:
        """The model labels are snapshotted with: the active version, as the chat does."""
        active = await active_model(self.engine)
        if active is not None:
            self.model = active[1]
        edges = BandEdges(self.model.bands)
        self.thresholds = await edges.refresh(self.engine) if edges.live else None

    async def run(
        self, pipeline: Pipeline, rows: list[LeadRow], tally: Tally, err: TextIO, path: Path
    ) -> None:
        calls = []
        for row in rows:
            try:
                calls.append((row, identify_call(self.layout.crm, row, self.now)))
            except InputError as exc:
                field_path, problem = exc.problems[0]
                _skip(tally, err, path, RowError(row.line, field_path or "(row)", problem))
        if not calls:
            return
        emails = [row.email for row, _ in calls]
        async with self.engine.connect() as conn:
            known = set(await conn.run_sync(lambda c: repo.leads_of_emails(c, emails=emails)))
        result = await pipeline.ingest_many([[event] for _, event in calls], now=self.now)
        for (row, _), counts in zip(calls, result.results, strict=True):
            if not counts.accepted:
                tally.unchanged += 1
            elif row.email in known or row.email in self.seen:
                tally.updated += 1
            else:
                tally.created += 1
            self.seen.add(row.email)
        await self._link([row for row, _ in calls])
        await self._outcomes([row for row, _ in calls], tally)

    async def _link(self, rows: list[LeadRow]) -> None:
        """Link each row's record to its lead, unless it is already (a re-import)."""
        if self.sync is not None:
            with self.sync.begin() as sync_conn:
                self._link_records(sync_conn, rows)
            return
        async with self.engine.begin() as conn:
            await conn.run_sync(self._link_records, rows)

    def _link_records(self, conn: Connection, rows: list[LeadRow]) -> None:
        crm, template = self.layout.crm, self.options.record_url or ""
        leads = repo.leads_of_emails(conn, emails=[r.email for r in rows])
        linked = repo.leads_of_records(conn, crm=crm, record_ids=[r.record_id for r in rows])
        links = {
            leads[row.email]: (row.record_id, template.format(id=row.record_id) or None)
            for row in rows
            if row.email in leads and (template or linked.get(row.record_id) != leads[row.email])
        }
        repo.link_records(conn, crm=crm, links=links)

    async def _outcomes(self, rows: list[LeadRow], tally: Tally) -> None:
        for outcome in ("won", "lost"):
            mine = [self._outcome(row) for row in rows if row.outcome == outcome]
            stored = await store_outcomes(
                self.engine, mine, model=self.model, thresholds=self.thresholds
            )
            setattr(tally, outcome, getattr(tally, outcome) + stored.stored)

    def _outcome(self, row: LeadRow) -> CrmOutcome:
        assert row.outcome is not None
        return CrmOutcome(
            crm=self.layout.crm, record_id=row.record_id, email=row.email, outcome=row.outcome,
            at=row.modified if row.modified is not None else self.now, reason=row.reason,
            ref=f"{row.record_id}:{row.outcome}",
        )  # fmt: skip
