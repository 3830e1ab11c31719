"""Nothing heavy on the event loop: while a model activation rescores 20,000 leads in the
running bot, a signed webhook is stored (202) and a ``/lead`` slash command acknowledged
(200) before the rescore ends. The figures themselves are ``tests/bench/bench_loop_lag``'s."""

from __future__ import annotations

from pathlib import Path

from tests.bench.bench_loop_lag import measure

LEADS = 20_000
SLACK_ACK_SECONDS = 3.0


async def test_a_webhook_and_a_slash_command_are_answered_during_an_activation_rescore(
    tmp_path: Path,
) -> None:
    measured = await measure(f"sqlite+aiosqlite:///{tmp_path / 'lag.db'}", LEADS)
    assert measured.leads == LEADS + 1  # and the lead the webhook created
    for answered, status in ((measured.webhook, 202), (measured.command, 200)):
        assert answered.status == status
        assert answered.during, "answered only once the rescore was over"
        assert answered.seconds < SLACK_ACK_SECONDS
