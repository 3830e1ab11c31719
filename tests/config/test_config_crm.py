"""The ``crm`` section: outcome mapping by stage and status names, column overrides, errors."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import load_config

BASE = "model: {name: m}\n"


def test_defaults_follow_each_crms_standard_names() -> None:
    crm = load_config(text=BASE).crm
    assert crm.hubspot.contact("Customer", None) == "won"
    assert crm.hubspot.contact("Opportunity", None) is None  # not won unless configured
    assert crm.hubspot.contact("lead", "Bad Timing") == "lost"
    assert crm.hubspot.contact("lead", "BAD_TIMING") == "lost"  # the API's internal value
    assert crm.hubspot.contact("customer", "Unqualified") == "won"  # a stage outranks a status
    assert crm.hubspot.contact(None, "In Progress") is None
    assert crm.hubspot.deal("closedwon") == "won"
    assert crm.hubspot.deal("closedlost") == "lost"
    assert crm.hubspot.deal("appointmentscheduled") is None
    assert crm.salesforce.lead("1", "Closed - Converted") == "won"
    assert crm.salesforce.lead("0", "Closed - Not Converted") == "lost"
    assert crm.salesforce.lead("false", "Working - Contacted") is None
    assert crm.label_weight == 2.0


def test_the_mapping_is_configurable() -> None:
    text = (
        BASE
        + """crm:
  label_weight: 3
  hubspot:
    won_lifecycle_stages: [customer, opportunity]
    columns: {"Annual Revenue": company.annual_revenue, "Fax Number": null}
  salesforce: {won_when_converted: false, lost_lead_statuses: [Junk]}
"""
    )
    crm = load_config(text=text).crm
    assert crm.hubspot.contact("opportunity", None) == "won"
    assert crm.hubspot.columns == {"Annual Revenue": "company.annual_revenue", "Fax Number": None}
    assert crm.salesforce.lead("1", None) is None
    assert crm.salesforce.lead("0", "junk") == "lost"
    assert crm.label_weight == 3.0


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("crm: {label_weight: 0}", "crm.label_weight"),
        ("crm: {hubspot: {columns: {A: 'not a path'}}}", "crm.hubspot.columns.A"),
        ("crm: {salesforce: {won_when: true}}", "crm.salesforce.won_when"),
    ],
)
def test_errors_name_line_and_field(section: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text=BASE + section + "\n", name="leadbot.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.field) == ("leadbot.yaml", 2, field)
