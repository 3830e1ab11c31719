"""``leadbot import salesforce``: a Leads report as Excel saves it in Europe (semicolons,
day-first dates, Windows-1252, the report's footer) becomes leads with Converted as won and
Closed - Not Converted as lost; the CLI's exit status and summary; an ambiguous date."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from config.loader import LeadbotConfig, load_config
from tests.bot.crm.import_helpers import counts, csv_text, labels, leads, links, run_import, write

HEADER = [
    "Lead ID", "First Name", "Last Name", "Email", "Title", "Company", "No. of Employees",
    "Industry", "Country", "Lead Source", "Lead Status", "Converted", "Created Date",
]  # fmt: skip
ROWS = [
    ["00Q5e00000AbCdEAAX", "Jörg", "Müller", "joerg@mueller-software.example",
     "Chief Revenue Officer", "Müller Software AG", "1.200", "Software", "Germany",
     "Web", "Qualified", "1", "25/03/2024 14:02"],
    ["00Q5e00000AbCdFAAX", "Lena", "Berg", "lena.berg@hotmail.com", "Student",
     "Uni Wien", "", "Education", "Austria", "Trade Show", "Closed - Not Converted", "0",
     "05/03/2024"],
    ["00Q5e00000AbCdGAAX", "Tom", "Weiss", "tom@weiss.example", "Head of Sales",
     "Weiss; Partner GmbH", "40", "Consulting", "Germany", "Partner Referral",
     "Working - Contacted", "0", "03/04/2024 09:15"],
]  # fmt: skip
FOOTER = (
    '\r\n"Confidential Information - Do Not Distribute"\r\n'
    '"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."\r\n'
)


@pytest.fixture
def default() -> LeadbotConfig:
    return load_config(None)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    content = csv_text(HEADER, ROWS, sep=";") + FOOTER
    return write(tmp_path / "report.csv", content, bom=False, encoding="cp1252")


async def test_a_leads_report_becomes_leads_labels_and_links(
    engine: AsyncEngine, default: LeadbotConfig, report: Path
) -> None:
    url = "https://acme.my.salesforce.com/lightning/r/Lead/{id}/view"
    tally, err = await run_import(engine, default, "salesforce", report, record_url=url)
    assert f"{report}: not UTF-8, read as windows-1252" in err
    assert (tally.rows, tally.created, tally.won, tally.lost, tally.skipped) == (3, 3, 1, 1, 0)
    found = await leads(engine)
    joerg = found["joerg@mueller-software.example"]
    assert (joerg["name"], joerg["company"]) == ("Jörg Müller", "Müller Software AG")
    traits = joerg["state"]["traits"]
    assert traits["company"]["employee_count"] == 1200
    assert traits["lead_source"] == "Web"
    assert "converted" not in traits  # the outcome, not who the lead is
    # 25/03/2024 can only be day first, so 05/03/2024 is 5 March too.
    assert joerg["first_seen_at"].timestamp() == 1711375320  # 2024-03-25 14:02 UTC
    lena = found["lena.berg@hotmail.com"]
    assert lena["first_seen_at"].timestamp() == 1709596800  # 2024-03-05
    assert joerg["score"] > lena["score"]
    assert found["tom@weiss.example"]["company"] == "Weiss; Partner GmbH"
    assert await labels(engine) == {
        joerg["id"]: ("won", "crm:salesforce", "00Q5e00000AbCdEAAX:won"),
        lena["id"]: ("lost", "crm:salesforce", "00Q5e00000AbCdFAAX:lost"),
    }
    linked = await links(engine)
    assert linked[joerg["id"]] == ("salesforce", "00Q5e00000AbCdEAAX",
                                   url.format(id="00Q5e00000AbCdEAAX"))  # fmt: skip


async def test_an_ambiguous_date_is_a_row_error_unless_the_order_is_given(
    engine: AsyncEngine, default: LeadbotConfig, tmp_path: Path
) -> None:
    dates = ("3/5/2024", "3/5/2024 2:02 PM", "12/31/2024")
    rows = [[*row[:12], date] for row, date in zip(ROWS, dates, strict=True)]
    path = write(tmp_path / "us.csv", csv_text(HEADER, rows))
    # 12/31/2024 shows the file is month first: 3/5/2024 is March 5.
    tally, _ = await run_import(engine, default, "salesforce", path)
    assert tally.skipped == 0
    assert (await leads(engine))["lena.berg@hotmail.com"]["first_seen_at"].timestamp() == (
        1709647320  # 2024-03-05 14:02 UTC
    )
    undecided = write(tmp_path / "undecided.csv", csv_text(HEADER, rows[:2]))
    tally, _ = await run_import(engine, default, "salesforce", undecided)
    assert tally.problems[0] == (
        f"{undecided}:2: Created Date: '3/5/2024' is ambiguous: month 3 day 5, or day 3 "
        "month 5? give --date-order mdy or dmy"
    )
    tally, _ = await run_import(engine, default, "salesforce", undecided, order="dmy")
    assert tally.skipped == 0


async def test_the_command_exits_1_when_rows_were_skipped_and_0_on_a_clean_rerun(
    tmp_path: Path, report: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LEADBOT_CONFIG", raising=False)
    bad = [*ROWS[0][:6], "many", *ROWS[0][7:]]
    bad[0], bad[3] = "00Q5e00000ZZZZZAAX", "zed@bad.example"
    path = write(tmp_path / "bad.csv", csv_text(HEADER, [*ROWS, bad], sep=";"))
    db = tmp_path / "import.db"
    status = await asyncio.to_thread(main, ["import", "salesforce", str(path), "--db", str(db)])
    assert status == 1
    out, err = capsys.readouterr()
    assert f"{path}:5: No. of Employees: 'many' is not a number of employees" in err
    assert "import: 4/4 rows read: 3 leads created" in err
    assert out == (f"{path}: 4 rows — 3 leads created, 0 updated, 0 unchanged; 1 won and 1 "
                   "lost labels stored; 1 rows skipped\n")  # fmt: skip
    status = await asyncio.to_thread(main, ["import", "salesforce", str(report), "--db", str(db)])
    assert status == 0
    assert "3 unchanged; 0 won and 0 lost" in capsys.readouterr().out
    missing = await asyncio.to_thread(main, ["import", "hubspot", str(report), "--db", str(db)])
    assert missing == 2
    assert "no 'Record ID' column: not a hubspot export" in capsys.readouterr().err


async def test_a_rerun_of_a_report_changes_no_table(
    engine: AsyncEngine, default: LeadbotConfig, report: Path
) -> None:
    await run_import(engine, default, "salesforce", report)
    before = await counts(engine)
    await run_import(engine, default, "salesforce", report)
    assert await counts(engine) == before
