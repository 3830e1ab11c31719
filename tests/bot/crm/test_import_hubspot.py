"""``leadbot import hubspot``: a contacts export as HubSpot writes it becomes scored leads,
linked to their records, with Customer as won and Unqualified as lost; a second import
doubles nothing; bad rows are reported by line and column and the others imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.csvimport.reader import FileProblem
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig, load_config
from tests.bot.conftest import events, identify, track
from tests.bot.crm.import_helpers import (
    HUBSPOT_HEADER,
    NOW,
    counts,
    csv_text,
    labels,
    leads,
    links,
    run_import,
    write,
)

CARLA = ["1501", "Carla", "Ortiz", "Carla@Northwind.io", "CRO", "Northwind Software, Inc.",
         "1,000", "Computer Software", "United States", "Customer", "Connected",
         "2024-03-05 14:02", "ana@seller.example", "Met at SaaStr,\nasked for a demo"]  # fmt: skip
SAM = ["1502", "Sam", "Lee", "sam.lee@gmail.com", "Student", "State University", "501-1000",
       "Higher Education", "Canada", "Lead", "Unqualified", "2024-04-01 09:30", "", ""]  # fmt: skip
OLIVIA = ["1503", "Olivia", "Brandt", "olivia@brandt.example", "Head of Sales Operations",
          "Brandt GmbH", "51-200", "Machinery", "Germany", "Marketing Qualified Lead",
          "In Progress", "2024-05-20 08:00", "", ""]  # fmt: skip
OMAR = ["1504", "Omar", "Haddad", "omar@haddad.example", "VP Sales", "Haddad Retail", "250",
        "Retail", "France", "Opportunity", "Open deal", "2024-06-02 10:15", "", ""]  # fmt: skip


DEFAULT_YAML = (Path(__file__).parents[3] / "config" / "default.yaml").read_text()


@pytest.fixture
def default() -> LeadbotConfig:
    return load_config(None)  # the bundled model: the scores a user sees


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write(tmp_path / "hubspot-contacts.csv", csv_text(HUBSPOT_HEADER, [CARLA, SAM, OLIVIA]))


async def test_contacts_become_scored_linked_leads_with_outcome_labels(
    engine: AsyncEngine, default: LeadbotConfig, export: Path
) -> None:
    tally, err = await run_import(engine, default, "hubspot", export)
    assert (tally.rows, tally.created, tally.won, tally.lost, tally.skipped) == (3, 3, 1, 1, 0)
    assert "3/3 rows read: 3 leads created" in err
    found = await leads(engine)
    carla, sam = found["carla@northwind.io"], found["sam.lee@gmail.com"]
    assert carla["id"] == "carla@northwind.io"  # keyed by e-mail, not the record id
    assert (carla["name"], carla["company"]) == ("Carla Ortiz", "Northwind Software, Inc.")
    traits = carla["state"]["traits"]
    assert traits["company"] == {"name": "Northwind Software, Inc.", "employee_count": 1000,
                                 "industry": "Computer Software"}  # fmt: skip
    assert traits["address"] == {"country": "United States"}
    assert (traits["title"], traits["lifecycle_stage"], traits["lead_status"]) == (
        "CRO", "Customer", "Connected")  # fmt: skip
    assert traits["notes"] == "Met at SaaStr,\nasked for a demo"  # a custom column, quoted
    assert traits["contact_owner"] == "ana@seller.example"
    assert "crm" not in traits  # HubSpot is where the record lives, not the lead's stack
    assert found["olivia@brandt.example"]["state"]["traits"]["company"]["employee_count"] == 125
    assert carla["score"] > sam["score"]  # a CRO at a software company outscores a student
    assert carla["fit"] > 30 > sam["score"]
    assert carla["first_seen_at"].timestamp() == 1709647320  # 2024-03-05 14:02 UTC
    assert await labels(engine) == {
        "carla@northwind.io": ("won", "crm:hubspot", "1501:won"),
        "sam.lee@gmail.com": ("lost", "crm:hubspot", "1502:lost"),
    }  # Olivia is open: no label
    assert await links(engine) == {
        "carla@northwind.io": ("hubspot", "1501", None),  # the URL needs the portal id
        "sam.lee@gmail.com": ("hubspot", "1502", None),
        "olivia@brandt.example": ("hubspot", "1503", None),
    }


async def test_a_second_import_doubles_nothing_and_a_changed_row_updates(
    engine: AsyncEngine, default: LeadbotConfig, export: Path, tmp_path: Path
) -> None:
    await run_import(engine, default, "hubspot", export)
    before = await counts(engine)
    tally, _ = await run_import(engine, default, "hubspot", export)
    assert (tally.created, tally.updated, tally.unchanged, tally.won, tally.lost) == (0, 0, 3, 0, 0)
    assert await counts(engine) == before
    # A later export: Olivia became a customer. Her lead is updated and labelled won.
    later = [*OLIVIA[:9], "Customer", "Connected", *OLIVIA[11:]]
    path = write(tmp_path / "later.csv", csv_text(HUBSPOT_HEADER, [CARLA, SAM, later]))
    tally, _ = await run_import(engine, default, "hubspot", path)
    assert (tally.created, tally.updated, tally.unchanged, tally.won) == (0, 1, 2, 1)
    after = await counts(engine)
    assert (after["leads"], after["events"], after["feedback"]) == (3, 4, 3)


async def test_an_event_from_the_app_lands_on_the_imported_lead(
    engine: AsyncEngine, default: LeadbotConfig, export: Path
) -> None:
    await run_import(engine, default, "hubspot", export)
    imported = (await leads(engine))["carla@northwind.io"]["score"]
    call = track("u-77", "Demo Requested", NOW + 60)
    call["context"] = {"traits": {"email": "carla@northwind.io"}}
    async with Pipeline(engine, default) as pipeline:
        await pipeline.ingest(events(call, now=NOW + 60), now=NOW + 60)
    found = await leads(engine)
    assert len(found) == 3  # no new lead for userId u-77: the e-mail is Carla's
    # The demo's 30 points, and no longer inactive since 2024 (-10).
    assert found["carla@northwind.io"]["score"] == pytest.approx(imported + 40)


async def test_an_import_never_alerts_even_on_a_hot_lead(engine: AsyncEngine, export: Path) -> None:
    hot_at_20 = load_config(
        text=DEFAULT_YAML.replace("warm: 40", "warm: 10").replace("hot: 70", "hot: 20"),
        name="hot.yaml",
    )
    await run_import(engine, hot_at_20, "hubspot", export)
    carla = (await leads(engine))["carla@northwind.io"]
    assert carla["band"] == "hot"
    assert (await counts(engine))["outbox"] == 0  # history is not news
    # The same person arriving live (a new e-mail, through the ordinary pipeline) alerts.
    live = identify("u-9", NOW, **{**carla["state"]["traits"], "email": "c2@northwind.io"})
    async with Pipeline(engine, hot_at_20) as pipeline:
        await pipeline.ingest(events(live, now=NOW), now=NOW)
    assert (await counts(engine))["outbox"] == 1


async def test_bad_rows_are_reported_by_line_and_column_and_the_rest_imported(
    engine: AsyncEngine, default: LeadbotConfig, tmp_path: Path
) -> None:
    bad_email = ["1601", "Bo", "Ng", "bo.ng(at)example.com", *SAM[4:]]
    bad_date = ["1602", "Al", "Ito", "al@ito.example", *SAM[4:11], "2024-13-45 10:00", "", ""]
    bad_size = ["1603", "Di", "Ru", "di@ru.example", "CTO", "Ru", "lots", *SAM[7:]]
    no_email = ["1604", "Ed", "Po", "", *SAM[4:]]
    rows = [CARLA, bad_email, bad_date, SAM, bad_size, no_email]
    path = write(tmp_path / "contacts.csv", csv_text(HUBSPOT_HEADER, rows))
    tally, err = await run_import(engine, default, "hubspot", path)
    assert (tally.rows, tally.created, tally.skipped) == (6, 2, 4)
    # Carla's notes hold a line break: her record spans lines 2-3, the next starts on 4.
    assert tally.problems == [
        f"{path}:4: Email: 'bo.ng(at)example.com' is not an e-mail address",
        f"{path}:5: Create Date: '2024-13-45 10:00' is not a date: month must be in 1..12",
        f"{path}:7: Number of Employees: 'lots' is not a number of employees "
        "(1200, 1,200, 501-1000)",
        f"{path}:8: Email: empty: a lead is keyed by e-mail",
    ]
    assert all(problem in err for problem in tally.problems)
    assert set(await leads(engine)) == {"carla@northwind.io", "sam.lee@gmail.com"}


async def test_columns_and_outcomes_follow_the_config(engine: AsyncEngine, tmp_path: Path) -> None:
    config = load_config(text=DEFAULT_YAML + """
crm:
  hubspot:
    won_lifecycle_stages: [customer, opportunity]
    columns: {"Contact owner": owner.email, "Notes": null, "Industry": industry_label}
""", name="crm.yaml")  # fmt: skip
    path = write(tmp_path / "contacts.csv", csv_text(HUBSPOT_HEADER, [CARLA, OMAR]))
    tally, _ = await run_import(engine, config, "hubspot", path)
    assert tally.won == 2  # Omar's opportunity counts as won here
    traits = (await leads(engine))["carla@northwind.io"]["state"]["traits"]
    assert traits["owner"] == {"email": "ana@seller.example"}
    assert traits["industry_label"] == "Computer Software"
    assert "notes" not in traits
    assert "industry" not in traits["company"]


async def test_a_file_that_is_not_a_hubspot_export_is_refused_whole(
    engine: AsyncEngine, default: LeadbotConfig, tmp_path: Path
) -> None:
    path = write(tmp_path / "leads.csv", "Lead ID,Email\n00Q1,a@b.example\n")
    with pytest.raises(FileProblem, match=r"no 'Record ID' column: not a hubspot export"):
        await run_import(engine, default, "hubspot", path)
