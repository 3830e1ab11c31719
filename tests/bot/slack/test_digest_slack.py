"""`/lead digest` through Slack: a signed slash command, user-group membership read from the
fake Slack's `usergroups.users.list`, the answer at the command's response_url."""

from __future__ import annotations

import orjson

from tests.bot.slack.test_learning_slack import learning_config, running
from tests.bot.slack.test_slack_app import command_body, post_slack
from tests.bot.slack_helpers import eventually
from tests.fakes.slack_api import FakeSlack


async def test_a_member_of_a_manager_group_gets_the_team_wide_digest(
    db_url: str, slack: FakeSlack
) -> None:
    slack.usergroups["S0MGRS"] = ["U0LEAD"]
    async with running(db_url, learning_config(managers="S0MGRS"), slack) as client:
        body = command_body(slack, "digest week", user="U0LEAD", n=1)
        assert (await post_slack(client, body)).status == 200
        await eventually(lambda: len(slack.calls_to("response_url")) == 1)
        [answer] = slack.calls_to("response_url")
        assert answer.body["response_type"] == "ephemeral"
        assert "Weekly digest" in orjson.dumps(answer.body).decode()
        assert slack.calls_to("usergroups.users.list")[0].body["usergroup"] == "S0MGRS"


async def test_someone_in_no_group_and_no_team_is_refused_politely(
    db_url: str, slack: FakeSlack
) -> None:
    slack.usergroups["S0MGRS"] = ["U0LEAD"]
    async with running(db_url, learning_config(managers="S0MGRS"), slack) as client:
        body = command_body(slack, "digest week", user="U0STRANGER", n=2)
        assert (await post_slack(client, body)).status == 200
        await eventually(lambda: len(slack.calls_to("response_url")) == 1)
        [answer] = slack.calls_to("response_url")
        text = orjson.dumps(answer.body).decode()
        assert "Sorry, digests are for sales managers" in text
        assert "Weekly digest" not in text
