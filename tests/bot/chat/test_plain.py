"""Console rendering: readable breakdowns, and lead data that cannot drive a terminal."""

from __future__ import annotations

from bot.chat import plain
from bot.chat.plain import clean, render_top
from bot.outbox.messages import AlertMessage


def render_alert(payload: dict) -> str:  # type: ignore[type-arg]
    """A stored alert payload read back (as the console transport does), then rendered."""
    return plain.render_alert(AlertMessage.from_payload(payload))


def _alert(name: str) -> dict:  # type: ignore[type-arg]
    return {
        "lead": {"id": "u1", "email": "x@acme.com", "name": name, "company": "Acme\x07"},
        "score": {
            "total": 81.0,
            "fit": 35.0,
            "intent": 46.0,
            "band": "hot",
            "grade": "A",
            "engagement": 4,
            "probability": 0.61,
        },
        "why_now": {"type": "track", "name": "Demo Requested", "at": "2026-03-02T10:00:00Z"},
        "contributions": [
            {
                "rule": "demo",
                "label": "Requested a demo",
                "points": 30.0,
                "count": 1,
                "last_seen": 1772445600.0,
            },
            {"rule": "free_mail", "label": "Free e-mail", "points": -15.0},
        ],
        "facts": [["Title", "VP\\nSales"]],
        "actions": ["claim", "qualify"],
        "at": "2026-03-02T10:00:00Z",
    }


def test_an_alert_explains_every_contribution_with_its_sign() -> None:
    text = render_alert(_alert("Dana Reyes"))
    lines = text.splitlines()
    assert lines[0].startswith("HOT LEAD  Dana Reyes (Acme")
    assert "score 81.0" in lines[0]
    assert 'why now: track "Demo Requested" at 2026-03-02 10:00 UTC' in text
    assert any(
        "+30.0" in line and "Requested a demo" in line and "1 event" in line for line in lines
    )
    assert any("-15.0" in line and "Free e-mail" in line for line in lines)


def test_lead_data_cannot_move_the_cursor_or_forge_lines() -> None:
    hostile = "Eve\x1b[2J\x1b[1;1H\nHOT LEAD  Fake (Forged)\r"
    text = render_alert(_alert(hostile))
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\r" not in text
    assert not any(line.startswith("HOT LEAD  Fake") for line in text.splitlines())
    assert clean("a\nb\x00c") == "a�b�c"


def test_top_table_ranks_and_cleans() -> None:
    rows = [
        {
            "id": "u1",
            "name": "Ada\x1b",
            "score": 90.5,
            "band": "hot",
            "grade": "A",
            "engagement": 4,
            "company": "Acme",
        },
        {
            "id": "u2",
            "email": "b@x.com",
            "score": 41.0,
            "band": "warm",
            "grade": "C",
            "engagement": 2,
            "company": None,
        },
    ]
    table = render_top(rows).splitlines()
    assert table[1].split()[:4] == ["1", "90.5", "hot", "A4"]
    assert "b@x.com" in table[2]
    assert "\x1b" not in "\n".join(table)
    assert render_top([]) == "No leads yet."
