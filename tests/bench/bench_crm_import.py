"""CRM import benchmark: rows/s of ``leadbot import hubspot`` on SQLite, beside a floor (the
same file read, checked and parsed into identify calls, with no database) in the same run.

``python -m tests.bench.bench_crm_import [--rows 5000]``

A tenth of the rows are customers (won), a tenth unqualified (lost). Prints the first
import's rows/s and the re-import's (every row a duplicate), and fails (exit 1) when the
re-import changed a table.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import tempfile
import time
from pathlib import Path

from bot.crm.csvimport.cells import date_order
from bot.crm.csvimport.importer import identify_call, import_file
from bot.crm.csvimport.layouts import HUBSPOT
from bot.crm.csvimport.reader import read_table
from bot.crm.csvimport.rows import Columns, LeadRow, lead_row
from config.loader import load_config
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bot.crm.import_helpers import HUBSPOT_HEADER, NOW, counts, csv_text, write

TITLES = ["CRO", "VP Sales", "Student", "Engineer", "Head of RevOps", "Marketing Manager"]
STAGES = [("Customer", "Connected"), ("Lead", "Unqualified")] + [("Lead", "New")] * 8


def export(path: Path, rows: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        stage, status = rng.choice(STAGES)
        lines.append([
            str(10_000 + i), f"First{i}", f"Last{i}", f"person{i}@company{i % 900}.example",
            rng.choice(TITLES), f"Company {i % 900}", str(rng.choice([12, 80, 450, 3000])),
            rng.choice(["Computer Software", "Retail", "Banking"]), "United States", stage,
            status, f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 09:30", "", "",
        ])  # fmt: skip
    return write(path, csv_text(HUBSPOT_HEADER, lines))


def floor(path: Path) -> float:
    """Seconds to read, check and parse every row, without a database."""
    started = time.perf_counter()
    table = read_table(path)
    columns = Columns.of(table, HUBSPOT, load_config(None).crm, str(path))
    columns.order = date_order(columns.dates(table))
    for record in table.records:
        row = lead_row(record, columns)
        assert isinstance(row, LeadRow)
        identify_call("hubspot", row, NOW)
    return time.perf_counter() - started


async def timed_import(path: Path, db: Path) -> tuple[float, float, bool]:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    config = load_config(None)
    try:
        await upgrade(engine)
        started = time.perf_counter()
        await import_file(engine, config, HUBSPOT, path, now=NOW, err=io.StringIO())
        first = time.perf_counter() - started
        before = await counts(engine)
        started = time.perf_counter()
        await import_file(engine, config, HUBSPOT, path, now=NOW, err=io.StringIO())
        again = time.perf_counter() - started
        return first, again, await counts(engine) == before
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadbot-bench-") as tmp:
        path = export(Path(tmp) / "contacts.csv", args.rows)
        base = floor(path)
        first, again, unchanged = asyncio.run(timed_import(path, Path(tmp) / "bench.db"))
    print(f"floor (read + check + parse, no database): {args.rows / base:,.0f} rows/s")
    print(f"import into SQLite: {args.rows / first:,.0f} rows/s ({first:.1f} s)")
    print(f"re-import (all duplicates): {args.rows / again:,.0f} rows/s ({again:.1f} s)")
    if not unchanged:
        print("FAIL: the re-import changed a table")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
