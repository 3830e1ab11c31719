"""SalesforceConnector against the fake Salesforce API at the wire (TLS, simple-salesforce):
score writes, their failures, API usage, and the pull of converted and closed Leads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.crm.base import CrmRefused, CrmUnavailable, ScoreUpdate
from bot.crm.salesforce import Login, SalesforceConnector, salesforce_from_settings
from config.crm import Crm, SalesforceOutcomes
from config.errors import ConfigError
from config.settings import load_settings
from tests.fakes.salesforce_api import FakeSalesforce

SCORED_AT = 1_796_000_000.0  # 2026-11-30T00:53:20Z


@pytest.fixture
async def fake() -> AsyncIterator[FakeSalesforce]:
    async with FakeSalesforce() as server:
        yield server


def connector(fake: FakeSalesforce, **options: object) -> SalesforceConnector:
    settings: dict[str, object] = {
        "outcomes": SalesforceOutcomes(),
        "instance_url": fake.url,
        "access_token": fake.token,
        "verify": fake.ca_file,
        "timeout": 2.0,
    }
    return SalesforceConnector(**(settings | options))  # type: ignore[arg-type]


@pytest.fixture
def sf(fake: FakeSalesforce) -> Iterator[SalesforceConnector]:
    made = connector(fake)
    yield made
    made.close()


def update(lead_id: str, email: str | None, record_id: str | None = None) -> ScoreUpdate:
    return ScoreUpdate(
        lead_id=lead_id, email=email, record_id=record_id, score=87.34, band="hot",
        grade="A", probability=0.6123, reasons="Requested a demo +30 · VP Sales +15",
        scored_at=SCORED_AT,
    )  # fmt: skip


async def test_a_lead_found_by_email_gets_the_leadbot_fields_with_the_bearer(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    lead = fake.add_lead("Ada@Example.com")
    result = await sf.write_scores([update("L1", "ada@example.com")])
    assert [(w.lead_id, w.record_id) for w in result.written] == [("L1", lead)]
    assert result.written[0].record_url == f"{fake.url}/lightning/r/Lead/{lead}/view"
    query, patch = fake.calls
    assert "Email IN ('ada@example.com')" in query.query["q"]
    assert patch.method == "PATCH"
    assert patch.path.endswith("/composite/sobjects")
    assert patch.headers["Authorization"] == f"Bearer {fake.token}"
    assert patch.body["allOrNone"] is False
    assert patch.body["records"] == [
        {
            "attributes": {"type": "Lead"},
            "id": lead,
            "Leadbot_Score__c": 87.3,
            "Leadbot_Band__c": "hot",
            "Leadbot_Grade__c": "A",
            "Leadbot_Probability__c": 61.2,
            "Leadbot_Reasons__c": "Requested a demo +30 · VP Sales +15",
            "Leadbot_Scored_At__c": "2026-11-30T00:53:20Z",
        }
    ]
    assert fake.lead(lead)["Leadbot_Score__c"] == 87.3
    assert sf.usage() == "API requests in the last 24 h: 2 of 15,000"


async def test_a_linked_lead_is_written_by_its_id_without_a_query(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    lead = fake.add_lead("someone.else@example.com")
    result = await sf.write_scores([update("L1", "ada@example.com", record_id=lead)])
    assert [w.record_id for w in result.written] == [lead]
    assert [c.path.rsplit("/", 2)[-2:] for c in fake.calls] == [["composite", "sobjects"]]
    assert fake.lead(lead)["Leadbot_Band__c"] == "hot"


async def test_an_unconverted_lead_is_preferred_when_several_share_the_email(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.add_lead("ada@example.com", IsConverted=True, modified=time.time() + 60)
    open_lead = fake.add_lead("ada@example.com")
    result = await sf.write_scores([update("L1", "ada@example.com")])
    assert [w.record_id for w in result.written] == [open_lead]


async def test_a_lead_missing_in_salesforce_is_refused_alone(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    known = fake.add_lead("ada@example.com")
    result = await sf.write_scores(
        [update("L1", "ada@example.com"), update("L2", "nobody@example.com"), update("L3", None)]
    )
    assert [w.record_id for w in result.written] == [known]
    assert result.refused == {"L2": "no Lead with this e-mail in Salesforce", "L3": "no e-mail"}
    assert len(fake.leads) == 1  # leadbot never creates Leads


async def test_per_record_errors_refuse_those_leads_and_write_the_rest(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    good, bad = fake.add_lead("ada@example.com"), fake.add_lead("bob@example.com")
    converted = fake.add_lead("cy@example.com", IsConverted=True)
    fake.record_errors[bad] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Rating is required")
    result = await sf.write_scores(
        [update("L1", None, good), update("L2", None, bad), update("L3", None, converted)]
    )
    assert [w.record_id for w in result.written] == [good]
    assert result.refused == {
        "L2": "FIELD_CUSTOM_VALIDATION_EXCEPTION: Rating is required",
        "L3": "CANNOT_UPDATE_CONVERTED_LEAD: cannot reference converted lead",
    }


@pytest.mark.parametrize("status", [503, 500])
async def test_a_server_error_is_unavailable_and_writes_nothing(
    fake: FakeSalesforce, sf: SalesforceConnector, status: int
) -> None:
    lead = fake.add_lead("ada@example.com")
    fake.fail_next(status=status)
    with pytest.raises(CrmUnavailable, match=str(status)):
        await sf.write_scores([update("L1", None, lead)])
    assert "Leadbot_Score__c" not in fake.lead(lead)
    assert (await sf.write_scores([update("L1", None, lead)])).written  # it passes later


async def test_the_daily_limit_waits_for_the_next_hour(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.limit_next()
    with pytest.raises(CrmUnavailable, match="daily API request limit") as raised:
        await sf.write_scores([update("L1", "ada@example.com")])
    wait = raised.value.retry_after
    assert wait is not None
    assert 60 <= wait <= 3660


async def test_a_hung_answer_is_unavailable_within_the_timeout(fake: FakeSalesforce) -> None:
    quick = connector(fake, timeout=0.3)
    fake.hang_next(10)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable, match=r"did not answer within 0\.3 s"):
        await quick.write_scores([update("L1", "ada@example.com")])
    assert time.monotonic() - started < 1.5
    quick.close()


async def test_an_unreachable_salesforce_is_unavailable(fake: FakeSalesforce) -> None:
    gone = connector(fake)
    await fake.stop()
    with pytest.raises(CrmUnavailable, match="could not reach Salesforce"):
        await gone.write_scores([update("L1", "ada@example.com")])
    gone.close()


async def test_an_expired_token_without_a_login_is_refused(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.expire_sessions()
    with pytest.raises(CrmRefused, match="SALESFORCE_ACCESS_TOKEN expired") as raised:
        await sf.write_scores([update("L1", "ada@example.com")])
    assert fake.token not in str(raised.value)


async def test_an_expired_session_logs_in_again_with_the_password(
    fake: FakeSalesforce,
) -> None:
    login = Login(fake.username, fake.password, fake.security_token, domain=fake.url)
    relogging = connector(fake, login=login)
    lead = fake.add_lead("ada@example.com")
    fake.expire_sessions()
    result = await relogging.write_scores([update("L1", None, lead)])
    assert [w.record_id for w in result.written] == [lead]
    assert fake.logins == 1
    soap = fake.calls_to("POST", "/services/Soap/u/59.0")[0]
    assert "<n1:password>passSECTOKEN</n1:password>" in soap.body
    assert fake.calls[-1].headers["Authorization"] == "Bearer 00DFAKE!session-login-1"
    relogging.close()


async def test_a_wrong_password_is_refused_naming_the_variables(fake: FakeSalesforce) -> None:
    login = Login(fake.username, "wrong", fake.security_token, domain=fake.url)
    only_login = connector(fake, instance_url=None, access_token=None, login=login)
    with pytest.raises(CrmRefused, match=r"INVALID_LOGIN.*SALESFORCE_PASSWORD"):
        await only_login.write_scores([update("L1", "ada@example.com")])
    only_login.close()


async def test_missing_leadbot_fields_tell_to_run_setup() -> None:
    async with FakeSalesforce(fields_ready=False) as fake:
        sf = connector(fake)
        lead = fake.add_lead("ada@example.com")
        with pytest.raises(CrmRefused, match="leadbot crm setup salesforce"):
            await sf.write_scores([update("L1", None, lead)])
        sf.close()


async def test_usage_is_none_before_any_answer(sf: SalesforceConnector) -> None:
    assert sf.usage() is None


async def test_changed_outcomes_pages_and_maps_converted_closed_and_open() -> None:
    now = time.time()
    async with FakeSalesforce(page_size=2) as fake:
        sf = connector(fake)
        fake.add_lead("old@example.com", IsConverted=True, modified=now - 7200)
        won = fake.add_lead("won@example.com", IsConverted=True, modified=now - 300)
        lost = fake.add_lead(
            "lost@example.com", Status="Closed - Not Converted", modified=now - 200
        )
        fake.add_lead("open@example.com", Status="Working - Contacted", modified=now - 100)
        fake.add_lead("new@example.com", modified=now - 50)
        changes = await sf.changed_outcomes(now - 3600, now)
        sf.close()
    outcomes = {(o.record_id, o.outcome, o.ref, o.email) for o in changes.outcomes}
    assert outcomes == {
        (won, "won", f"{won}:won", "won@example.com"),
        (lost, "lost", f"{lost}:lost", "lost@example.com"),
    }
    assert changes.cursor == pytest.approx(now - 50, abs=0.002)
    queries = fake.calls_to("GET", "/query")
    assert "LastModifiedDate >= " in queries[0].query["q"]
    assert len(queries) == 2


async def test_changed_outcomes_with_nothing_new_moves_the_cursor_to_now(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    changes = await sf.changed_outcomes(None, 1_796_000_000.0)
    assert changes.outcomes == []
    assert changes.cursor == 1_796_000_000.0


def test_settings_without_salesforce_give_no_connector() -> None:
    assert salesforce_from_settings(load_settings({}), Crm()) is None


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"SALESFORCE_ACCESS_TOKEN": "s3cr3t"}, "SALESFORCE_INSTANCE_URL"),
        ({"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com"}, "SALESFORCE_ACCESS_TOKEN"),
        ({"SALESFORCE_USERNAME": "u", "SALESFORCE_PASSWORD": "p"}, "SALESFORCE_SECURITY_TOKEN"),
    ],
)
def test_a_half_configuration_names_the_missing_variable(env: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError, match=missing) as raised:
        salesforce_from_settings(load_settings(env), Crm())
    assert "s3cr3t" not in str(raised.value)


def test_settings_with_a_token_or_a_login_give_a_connector() -> None:
    env = {"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com"}
    made = salesforce_from_settings(load_settings(env | {"SALESFORCE_ACCESS_TOKEN": "t"}), Crm())
    assert made is not None
    assert made.name == "salesforce"
    assert made.batch_size == 200
    login = {"SALESFORCE_USERNAME": "u", "SALESFORCE_PASSWORD": "p"}
    login |= {"SALESFORCE_SECURITY_TOKEN": "s", "SALESFORCE_DOMAIN": "test"}
    assert salesforce_from_settings(load_settings(login), Crm()) is not None


async def test_emails_are_quoted_in_soql_and_long_lists_split(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    quoted = fake.add_lead("o'neil@example.com")
    many = [update(f"L{i}", f"{'x' * 60}{i}@example.com") for i in range(200)]
    result = await sf.write_scores([update("Q", "O'Neil@example.com"), *many])
    assert [w.record_id for w in result.written] == [quoted]
    assert len(result.refused) == 200
    queries = fake.calls_to("GET", "/query")
    assert len(queries) == 3  # 201 e-mails of ~75 characters: 6,000 characters a query
    assert all(len(q.query["q"]) < 6200 for q in queries)


async def test_more_than_200_records_go_in_two_collections_requests(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    ids = [fake.add_lead(f"p{i}@example.com") for i in range(201)]
    result = await sf.write_scores([update(f"L{i}", None, lead) for i, lead in enumerate(ids)])
    assert len(result.written) == 201
    patches = fake.calls_to("PATCH", "/composite/sobjects")
    assert [len(p.body["records"]) for p in patches] == [200, 1]
