"""A card click tells the truth (issue 12 point 5): once the action is committed, a card
that cannot be refreshed for everyone (the fake Bot Connector failing the update) makes
the clicker hear what was stored, never "nothing was changed"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.web.keys import ENGINE
from storage.tables import Feedback, Lead
from tests.bot.slack_helpers import Client
from tests.bot.teams.test_teams_app import (
    REP,
    activity,
    alert_card,
    execute,
    post,
)
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.filterwarnings(
    "ignore:It is recommended to use web.RequestKey:aiohttp.web_exceptions.NotAppKeyWarning"
)


@pytest.mark.parametrize(
    ("action", "data", "said"),
    [
        ("claim", {}, "Claimed"),
        ("disqualify", {"reason": "no budget"}, "Disqualified"),
    ],
)
async def test_a_stored_click_whose_card_cannot_be_updated_says_what_was_stored(
    client: Client, fake: FakeConnector, action: str, data: dict[str, str], said: str
) -> None:
    card_id, _ = await alert_card(client, fake)
    fake.fail_next("update", status=500)
    click = execute(fake, card_id, f"lead_{action}", leadbot="lead_action", action=action,
                    lead_id="u1", **data)  # fmt: skip
    answer = await (await post(client, click)).json()
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert answer["value"] == f"{said} — I couldn't refresh the alert."
    assert [c.ok for c in fake.calls_to("update")] == [False]
    async with client.app[ENGINE].connect() as conn:
        claimed_by = (await conn.execute(select(Lead.claimed_by))).scalar_one()  # type: ignore[call-overload]
        outcomes = (await conn.execute(select(Feedback.outcome))).scalars().all()  # type: ignore[call-overload]
    stored = {"claim": claimed_by == f"teams:{REP}", "disqualify": outcomes == ["disqualified"]}
    assert stored[action]


async def test_the_submit_fallback_says_what_was_stored_when_the_update_fails(
    client: Client, fake: FakeConnector
) -> None:
    card_id, _ = await alert_card(client, fake)
    fake.fail_next("update", status=404)
    data = {"leadbot": "lead_action", "action": "qualify", "lead_id": "u1"}
    submit = activity(fake, "message", replyToId=card_id, value=data)
    assert (await post(client, submit)).status in (200, 202)
    [told] = fake.calls_to("reply", ok_only=True)
    assert told.body["text"] == "Qualified — I couldn't refresh the alert."
    async with client.app[ENGINE].connect() as conn:
        outcomes = (await conn.execute(select(Feedback.outcome))).scalars().all()  # type: ignore[call-overload]
    assert outcomes == ["qualified"]


async def test_a_click_that_fails_before_the_commit_still_says_nothing_was_changed(
    client: Client, fake: FakeConnector
) -> None:
    card_id, _ = await alert_card(client, fake)
    click = execute(fake, card_id, "lead_claim", leadbot="lead_action", action="claim",
                    lead_id="ghost")  # fmt: skip
    answer = await (await post(client, click)).json()
    assert answer["statusCode"] == 400
    assert "Nothing was changed" in answer["value"]["message"]
    assert fake.calls_to("update") == []
