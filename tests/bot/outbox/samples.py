"""Small, valid typed outbox messages for transport tests (what a row holds, minimal)."""

from __future__ import annotations

from bot.outbox.messages import AlertMessage, AlertScore, LeadRef, WhyNow


def sample_alert(lead_id: str) -> AlertMessage:
    """A hot-lead alert about ``lead_id`` with no contributions or facts."""
    return AlertMessage(
        lead=LeadRef(lead_id),
        score=AlertScore(80.0, 40.0, 40.0, "hot", "A", 4, 0.9),
        why_now=WhyNow("track", "Demo Requested", "2026-03-02T09:00:00Z"),
        contributions=(),
        facts=(),
        actions=("claim", "qualify", "disqualify", "snooze"),
        at="2026-03-02T09:00:00Z",
    )
