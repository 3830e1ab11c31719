"""What the CRM import tests share: exports as the CRMs write them, and table counts."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.csvimport.importer import Options, Tally, import_file
from bot.crm.csvimport.layouts import LAYOUTS
from config.loader import LeadbotConfig
from storage.crm import FEEDBACK, LINKS
from storage.tables import Lead

LEADS = Lead.__table__  # type: ignore[attr-defined]

NOW = 1_790_000_000.0  # 2026-09-22: an import long after the records were created

HUBSPOT_HEADER = [
    "Record ID", "First Name", "Last Name", "Email", "Job Title", "Company Name",
    "Number of Employees", "Industry", "Country/Region", "Lifecycle Stage", "Lead Status",
    "Create Date", "Contact owner", "Notes",
]  # fmt: skip


def csv_text(header: list[str], rows: list[list[str]], sep: str = ",") -> str:
    """Rows as Excel writes them: every cell quoted that needs it, CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write(path: Path, content: str, *, bom: bool = True, encoding: str = "utf-8") -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + content.encode(encoding))
    return path


async def run_import(
    engine: AsyncEngine, config: LeadbotConfig, crm: str, path: Path, **options: Any
) -> tuple[Tally, str]:
    err = io.StringIO()
    tally = await import_file(engine, config, LAYOUTS[crm], path, now=NOW, err=err,
                              options=Options(**options))  # fmt: skip
    return tally, err.getvalue()


async def counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows per table an import writes to."""
    found = {}
    async with engine.connect() as conn:
        for table in ("leads", "events", "score_history", "outbox", "feedback", "crm_links"):
            found[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    return found


async def leads(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """E-mail → the lead's row."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(LEADS))).mappings().all()
    return {row["email"]: dict(row) for row in rows}


async def labels(engine: AsyncEngine) -> dict[str, tuple[str, str, str]]:
    """Lead id → (outcome, source, ref)."""
    query = select(FEEDBACK.c.lead_id, FEEDBACK.c.outcome, FEEDBACK.c.source, FEEDBACK.c.ref)
    async with engine.connect() as conn:
        return {lead: (o, s, r) for lead, o, s, r in (await conn.execute(query)).all()}


async def links(engine: AsyncEngine) -> dict[str, tuple[str, str, str | None]]:
    """Lead id → (crm, record id, record URL)."""
    query = select(LINKS.c.lead_id, LINKS.c.crm, LINKS.c.record_id, LINKS.c.record_url)
    async with engine.connect() as conn:
        return {lead: (c, r, u) for lead, c, r, u in (await conn.execute(query)).all()}


async def count_of(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
