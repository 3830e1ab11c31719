"""Who the demo's leads are and what each kind does over the window.

A persona is a name, a share of the leads and a description; its play (what such a lead
does) lives in ``plays.py`` (known leads) or ``visitors.py`` (anonymous ones).
"""

from __future__ import annotations

from dataclasses import dataclass

IDEAL = "ideal_buyer"
LUKEWARM = "good_fit_lukewarm"
RESEARCHER = "researcher"
STUDENT = "student"
COMPETITOR = "competitor"
ANONYMOUS = "anonymous_converter"
OPTED_OUT = "opted_out"
NOISE = "noise"


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    share: float
    description: str


PERSONAS: tuple[Persona, ...] = (
    Persona(IDEAL, 0.08, "sales leader at a fitting software company; ramps up to a demo/trial"),
    Persona(LUKEWARM, 0.20, "good fit, reads some content, never asks for a demo"),
    Persona(RESEARCHER, 0.25, "mid fit; blog and docs"),
    Persona(STUDENT, 0.15, "student or job seeker on free mail; blog and careers"),
    Persona(COMPETITOR, 0.05, "from a competitor's domain; pricing and docs"),
    Persona(ANONYMOUS, 0.10, "browses under an anonymousId, identifies later"),
    Persona(OPTED_OUT, 0.04, "unsubscribes or has an e-mail bounce"),
    Persona(NOISE, 0.13, "one or two anonymous page views"),
)


@dataclass(frozen=True, slots=True)
class DemoLead:
    """One generated lead: its persona and the ids its calls carry."""

    persona: str
    user_id: str | None
    anonymous_id: str | None
    email: str | None
