"""``leadbot crm setup salesforce`` against the fake Salesforce API: the six Lead fields
through the Tooling API, once; what an admin must create when the user may not."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest

from bot.crm.salesforce import SalesforceConnector
from bot.crm.setup_salesforce import FIELDS, create_fields, setup_salesforce
from config.crm import SalesforceOutcomes
from config.settings import load_settings
from tests.fakes.salesforce_api import LEADBOT_FIELDS, FakeSalesforce


@pytest.fixture
async def fake() -> AsyncIterator[FakeSalesforce]:
    async with FakeSalesforce(fields_ready=False) as server:
        yield server


async def run_setup(fake: FakeSalesforce) -> tuple[int, str, str]:
    sf = SalesforceConnector(
        outcomes=SalesforceOutcomes(), instance_url=fake.url, access_token=fake.token,
        verify=fake.ca_file, timeout=2.0,
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    try:
        code = await create_fields(sf, out, err)
    finally:
        sf.close()
    return code, out.getvalue(), err.getvalue()


async def test_setup_creates_the_six_lead_fields(fake: FakeSalesforce) -> None:
    code, out, _ = await run_setup(fake)
    assert code == 0
    assert set(fake.custom_fields) == set(LEADBOT_FIELDS)
    assert fake.custom_fields["Leadbot_Score__c"] | {"description": ""} == {
        "label": "Leadbot Score", "type": "Number", "precision": 5, "scale": 1,
        "description": "", "inlineHelpText": "The lead score, 0-100.",
    }  # fmt: skip
    assert fake.custom_fields["Leadbot_Reasons__c"]["type"] == "LongTextArea"
    assert fake.custom_fields["Leadbot_Reasons__c"]["length"] == 1000
    assert fake.custom_fields["Leadbot_Probability__c"]["type"] == "Percent"
    assert fake.custom_fields["Leadbot_Scored_At__c"]["type"] == "DateTime"
    assert fake.custom_fields["Leadbot_Band__c"] == fake.custom_fields["Leadbot_Band__c"] | {
        "type": "Text", "length": 20,
    }  # fmt: skip
    posts = fake.calls_to("POST", "/tooling/sobjects/CustomField")
    assert [c.body["FullName"] for c in posts] == [f"Lead.{f}" for f in LEADBOT_FIELDS]
    assert all(c.headers["Authorization"] == f"Bearer {fake.token}" for c in posts)
    assert out.count(": created") == 6
    assert "field-level security" in out.lower()


async def test_setup_twice_creates_nothing_the_second_time(fake: FakeSalesforce) -> None:
    await run_setup(fake)
    before = len(fake.calls_to("POST", "/tooling/sobjects/CustomField"))
    code, out, _ = await run_setup(fake)
    assert code == 0
    assert len(fake.calls_to("POST", "/tooling/sobjects/CustomField")) == before == 6
    assert out.count(": already there") == 6


async def test_setup_creates_only_the_missing_fields(fake: FakeSalesforce) -> None:
    fake.custom_fields["Leadbot_Score__c"] = {"type": "Number"}
    code, out, _ = await run_setup(fake)
    assert code == 0
    posts = fake.calls_to("POST", "/tooling/sobjects/CustomField")
    assert len(posts) == 5
    assert "Leadbot_Score__c: already there" in out


async def test_without_access_setup_prints_what_an_admin_must_create() -> None:
    async with FakeSalesforce(fields_ready=False, can_customize=False) as fake:
        code, out, err = await run_setup(fake)
    assert code == 1
    assert fake.custom_fields == {}
    assert "INSUFFICIENT_ACCESS" in err
    for spec in FIELDS:
        line = next(line for line in err.splitlines() if spec.api_name in line)
        assert spec.shown in line
        assert spec.label in line
    assert "Number(5, 1)" in err
    assert "Long Text Area(1000)" in err
    assert "Text(20)" in err
    assert "field-level security" in err.lower()
    assert "Salesforce is ready" not in out


async def test_the_command_runs_from_the_environment(
    fake: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)  # the private CA, as users set it
    settings = load_settings(
        {"SALESFORCE_INSTANCE_URL": fake.url, "SALESFORCE_ACCESS_TOKEN": fake.token}
    )
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(setup_salesforce, settings, out, err)
    assert (code, err.getvalue()) == (0, "")
    assert set(fake.custom_fields) == set(LEADBOT_FIELDS)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "Salesforce is not configured"),
        ({"SALESFORCE_USERNAME": "u", "SALESFORCE_PASSWORD": "p"}, "SALESFORCE_SECURITY_TOKEN"),
    ],
)
def test_the_command_without_a_configuration_says_what_to_set(
    env: dict[str, str], says: str
) -> None:
    err = io.StringIO()
    assert setup_salesforce(load_settings(env), io.StringIO(), err) == 2
    assert says in err.getvalue()
