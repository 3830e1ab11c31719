"""CRM export cells and files: the time formats each CRM writes, employee counts and ranges,
e-mails, Converted flags; separators, a BOM, quoted line breaks and line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.crm.csvimport.cells import CellError, date_order, email, employee_count, flag, parse_time
from bot.crm.csvimport.reader import FileProblem, read_table

MARCH_5_1402 = 1709647320.0  # 2024-03-05 14:02 UTC


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("2024-03-05 14:02", None),  # HubSpot
        ("2024-03-05T14:02:00Z", None),
        ("2024-03-05T15:02:00.000+01:00", None),
        ("3/5/2024 2:02 PM", "mdy"),  # Salesforce, US locale
        ("05/03/2024 14:02", "dmy"),  # Salesforce, European locale
        ("05.03.2024 14:02", None),  # German locale: always day first
    ],
)
def test_each_crm_time_format(text: str, order: str | None) -> None:
    assert parse_time(text, order) == MARCH_5_1402  # type: ignore[arg-type]


def test_slashed_dates_follow_the_file_else_are_refused() -> None:
    assert date_order(["3/5/2024", "12/31/2024"]) == "mdy"
    assert date_order(["05/03/2024 14:02", "25/03/2024"]) == "dmy"
    assert date_order(["3/5/2024", "2024-01-30"]) is None
    assert date_order(["13/1/2024", "1/13/2024"]) is None  # both: each value on its own
    assert parse_time("25/03/2024", None) == parse_time("2024-03-25", None)
    assert parse_time("4/4/2024", None) == parse_time("2024-04-04", None)  # either way
    with pytest.raises(CellError, match="ambiguous"):
        parse_time("3/5/2024", None)
    with pytest.raises(CellError, match="not a date"):
        parse_time("2024-02-30", None)
    with pytest.raises(CellError, match="not a date"):
        parse_time("yesterday", "mdy")
    with pytest.raises(CellError, match="hour 14 with PM"):
        parse_time("3/5/2024 14:02 PM", "mdy")


@pytest.mark.parametrize(
    ("text", "count"),
    [("1200", 1200), ("1,200", 1200), ("1.200", 1200), ("1 200", 1200), ("501-1000", 750),
     ("1,001 - 5,000", 3000), ("10,001+", 10001), ("10000+", 10000), ("0", 0)],
)  # fmt: skip
def test_employee_counts_and_ranges(text: str, count: int) -> None:
    assert employee_count(text) == count


def test_bad_cells_say_what_is_wrong() -> None:
    for bad in ("12.5", "lots", "-3", "500-100"):
        with pytest.raises(CellError):
            employee_count(bad)
    assert email(" Ana@Example.COM ") == "ana@example.com"
    for bad in ("ana", "ana@example", "a b@example.com", "ana@@example.com"):
        with pytest.raises(CellError, match="not an e-mail address"):
            email(bad)
    assert (flag("1"), flag("true"), flag(""), flag("0")) == (True, True, False, False)
    with pytest.raises(CellError, match="not 1/0"):
        flag("maybe")


def test_files_as_excel_writes_them(tmp_path: Path) -> None:
    semicolons = tmp_path / "a.csv"
    semicolons.write_bytes(
        b'\xef\xbb\xbfRecord ID;Email;Notes\r\n1;a@x.example;"one;\r\ntwo"\r\n2;b@x.example;\r\n'
    )
    table = read_table(semicolons)
    assert table.header == ["Record ID", "Email", "Notes"]  # no BOM in the first header
    assert [(r.line, r.cells) for r in table.records] == [
        (2, ["1", "a@x.example", "one;\r\ntwo"]),
        (4, ["2", "b@x.example", ""]),
    ]
    excel_hint = tmp_path / "b.csv"
    excel_hint.write_text("sep=,\nRecord ID;x,Email\n1;y,a@x.example\n")
    table = read_table(excel_hint)
    assert table.header == ["Record ID;x", "Email"]
    assert table.records[0].line == 3
    empty = tmp_path / "c.csv"
    empty.write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(FileProblem, match="empty"):
        read_table(empty)
    with pytest.raises(FileProblem, match="No such file"):
        read_table(tmp_path / "missing.csv")
