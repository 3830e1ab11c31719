"""What known leads do: plays that draw one lead and write its Segment calls.

Plays place sessions by fractions of the window (``0.7–0.95`` is "near the end"), so the
stories keep their shape for any number of days.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bot.demo import vocab
from bot.demo.people import People
from bot.demo.personas import (
    COMPETITOR,
    IDEAL,
    LUKEWARM,
    OPTED_OUT,
    RESEARCHER,
    STUDENT,
    DemoLead,
)
from bot.demo.timeline import Clock, Pending, Window, Writer


@dataclass(slots=True)
class Stage:
    """What a play draws from and writes to."""

    rng: random.Random
    people: People
    window: Window
    out: list[Pending]

    def writer(self, country: str, **ids: str | None) -> Writer:
        clock = Clock(self.rng, self.window, vocab.UTC_OFFSET_HOURS[country])
        return Writer(clock, self.out, **ids)


def blog(rng: random.Random) -> str:
    return "/blog/" + rng.choice(vocab.BLOG)


def content(rng: random.Random) -> str:
    """A page someone reads to learn, not to buy."""
    kind = rng.choices(("blog", "customers", "case", "product", "home"), (5, 2, 1, 2, 1))[0]
    if kind == "blog":
        return blog(rng)
    if kind == "customers":
        return "/customers/" + rng.choice(vocab.CUSTOMERS)
    if kind == "case":
        return "/case-studies/" + rng.choice(vocab.CASE_STUDIES)
    return "/product" if kind == "product" else "/"


def docs(rng: random.Random) -> str:
    return "/docs/" + rng.choice(vocab.DOCS)


def profile(stage: Stage, good: bool) -> tuple[dict[str, Any], str]:
    """Traits and country of a good-fit or a mid-fit lead."""
    rng, people = stage.rng, stage.people
    if good:
        title = rng.choice(vocab.SALES_LEADERS + vocab.SALES_OPS)
        company = people.company((*vocab.TECH_INDUSTRIES, "Financial Services"), (50, 2000))
        country = rng.choice(vocab.CORE_COUNTRIES)
        crm = rng.choice((*vocab.CRMS, None))
    else:
        title = rng.choice(vocab.OTHER_ROLES + vocab.SALES_OPS)
        company = people.company(vocab.TECH_INDUSTRIES + vocab.OTHER_INDUSTRIES, (10, 5000))
        country = rng.choice(vocab.CORE_COUNTRIES + vocab.OTHER_COUNTRIES)
        crm = rng.choice((*vocab.CRMS, None, None))
    traits = people.person(title=title, company=company, country=country, mail="work", crm=crm)
    return traits, country


def ideal(stage: Stage) -> DemoLead:
    rng, people = stage.rng, stage.people
    company = people.company(vocab.TECH_INDUSTRIES, (150, 800))
    country = rng.choice(vocab.CORE_COUNTRIES)
    crm = rng.choice(("Salesforce", "HubSpot"))
    title = rng.choice(vocab.SALES_LEADERS)
    traits = people.person(title=title, company=company, country=country, mail="work", crm=crm)
    w = stage.writer(country, user_id=people.user_id())
    # Week one: a newsletter click brings them in.
    w.session(0.0, 0.3)
    w.identify(traits)
    post = blog(rng)
    w.track("Email Link Clicked", {"campaign": vocab.CAMPAIGNS[0], "url": vocab.SITE + post})
    w.page(post)
    w.page("/product")
    # They look closer: pricing, customer stories, a webinar.
    w.session(0.25, 0.5, referrer=vocab.REFERRERS[0])
    w.page("/pricing")
    w.page("/customers/" + rng.choice(vocab.CUSTOMERS))
    webinar = rng.choice(vocab.WEBINARS)
    w.track("Webinar Registered", {"webinar": webinar})
    w.session(0.4, 0.65)
    w.track("Webinar Attended", {"webinar": webinar, "duration_minutes": rng.randint(35, 60)})
    if rng.random() < 0.6:
        w.track("Whitepaper Downloaded", {"title": rng.choice(vocab.WHITEPAPERS)})
    w.session(0.55, 0.8)
    w.track("Email Link Clicked", {"campaign": "pricing-update", "url": vocab.SITE + "/pricing"})
    w.page("/pricing")
    w.page("/case-studies/" + rng.choice(vocab.CASE_STUDIES))
    w.page("/pricing/enterprise")
    # The week they buy.
    w.session(0.7, 0.95)
    w.page("/pricing")
    outcome = rng.choices(("demo", "trial", "both"), (0.45, 0.25, 0.30))[0]
    if outcome != "demo":
        w.track("Trial Started", {"plan": rng.choice(("Growth", "Scale")), "trial_days": 14})
    if outcome != "trial":
        seats = rng.choice((5, 10, 25, 50))
        w.track("Demo Requested", {"source": "pricing", "seats": seats})
    if rng.random() < 0.25:
        w.page("/pricing/enterprise")
        w.track("Contact Sales Submitted", {"topic": "Enterprise plan"})
    return DemoLead(IDEAL, w.user_id, None, traits["email"])


def lukewarm(stage: Stage) -> DemoLead:
    """A good fit who reads but does not buy: mostly blog, one light signal at most, and
    seldom pricing, early on. Warm under the default model, not hot."""
    rng = stage.rng
    traits, country = profile(stage, good=True)
    w = stage.writer(country, user_id=stage.people.user_id())
    sessions = rng.randint(2, 5)
    signal_in = rng.randrange(sessions)
    for i in range(sessions):
        w.session(i / sessions, (i + 1) / sessions, referrer=rng.choice(vocab.REFERRERS))
        if i == 0:
            w.identify(traits)
            if rng.random() < 0.15:
                w.page("/pricing")
        for _ in range(rng.randint(2, 4)):
            w.page(rng.choice((blog(rng), blog(rng), "/product", "/")))
        if i == signal_in:
            one_content_event(w, rng)
    return DemoLead(LUKEWARM, w.user_id, None, traits["email"])


def one_content_event(w: Writer, rng: random.Random) -> None:
    """Maybe one light signal: a whitepaper, a webinar sign-up, a clicked e-mail."""
    kind = rng.choices(("none", "paper", "webinar", "email"), (3, 2, 1, 2))[0]
    if kind == "paper":
        w.track("Whitepaper Downloaded", {"title": rng.choice(vocab.WHITEPAPERS)})
    elif kind == "webinar":
        w.track("Webinar Registered", {"webinar": rng.choice(vocab.WEBINARS)})
    elif kind == "email":
        post = blog(rng)
        campaign = rng.choice(vocab.CAMPAIGNS)
        w.track("Email Link Clicked", {"campaign": campaign, "url": vocab.SITE + post})
        w.page(post)


def researcher(stage: Stage) -> DemoLead:
    rng = stage.rng
    traits, country = profile(stage, good=False)
    w = stage.writer(country, user_id=stage.people.user_id())
    sessions = rng.randint(2, 5)
    for i in range(sessions):
        w.session(i / sessions, (i + 1) / sessions, referrer=rng.choice(vocab.REFERRERS))
        if i == 0:
            w.identify(traits)
        w.page(blog(rng) if i % 2 == 0 else "/product")
        for _ in range(rng.randint(1, 3)):
            w.page(docs(rng))
        if rng.random() < 0.3:
            w.track("Whitepaper Downloaded", {"title": rng.choice(vocab.WHITEPAPERS)})
        if rng.random() < 0.1:
            w.page("/pricing")
    return DemoLead(RESEARCHER, w.user_id, None, traits["email"])


def student(stage: Stage) -> DemoLead:
    rng, people = stage.rng, stage.people
    title = rng.choice(vocab.STUDENT_TITLES)
    company = None
    if title != "Student":
        company = people.company(vocab.TECH_INDUSTRIES + vocab.OTHER_INDUSTRIES, (10, 5000))
    country = rng.choice(vocab.CORE_COUNTRIES + vocab.OTHER_COUNTRIES * 2)
    traits = people.person(title=title, company=company, country=country, mail="free")
    w = stage.writer(country, user_id=people.user_id())
    sessions = rng.randint(1, 3)
    for i in range(sessions):
        w.session(i / sessions, (i + 1) / sessions, referrer=rng.choice(vocab.REFERRERS))
        if i == 0:
            w.identify(traits)
        w.page(blog(rng))
        w.page(rng.choice(("/careers", "/careers", "/")))
        if rng.random() < 0.15:
            w.track("Whitepaper Downloaded", {"title": rng.choice(vocab.WHITEPAPERS)})
        elif rng.random() < 0.15:
            w.track("Webinar Registered", {"webinar": rng.choice(vocab.WEBINARS)})
    return DemoLead(STUDENT, w.user_id, None, traits["email"])


def competitor(stage: Stage) -> DemoLead:
    """Someone from a rival checking prices and the API; some are sales leaders too."""
    rng, people = stage.rng, stage.people
    title = rng.choice(("VP of Sales", "Marketing Manager", "Software Engineer", "Founder"))
    country = rng.choice(("US", "GB", "DE"))
    traits = people.person(title=title, company=people.competitor(), country=country, mail="work")
    w = stage.writer(country, user_id=people.user_id())
    sessions = rng.randint(2, 3)
    for i in range(sessions):
        w.session(i / sessions, (i + 1) / sessions)
        if i == 0:
            w.identify(traits)
        w.page("/pricing")
        if rng.random() < 0.5:
            w.page("/pricing/enterprise")
        w.page(docs(rng))
        w.page(rng.choice(("/product", docs(rng))))
    return DemoLead(COMPETITOR, w.user_id, None, traits["email"])


def opted_out(stage: Stage) -> DemoLead:
    """Engaged a little through e-mail, then unsubscribed or bounced."""
    rng = stage.rng
    traits, country = profile(stage, good=rng.random() < 0.5)
    w = stage.writer(country, user_id=stage.people.user_id())
    w.session(0.0, 0.4)
    w.identify(traits)
    post = blog(rng)
    w.track("Email Link Clicked", {"campaign": vocab.CAMPAIGNS[0], "url": vocab.SITE + post})
    w.page(post)
    w.page(content(rng))
    w.session(0.4, 1.0)
    campaign = rng.choice(vocab.CAMPAIGNS[1:])
    if rng.random() < 0.5:
        w.track("Unsubscribed", {"campaign": campaign})
        w.identify({"unsubscribed": True})
    else:
        w.track("Email Bounced", {"campaign": campaign, "reason": "mailbox does not exist"})
        w.identify({"email_status": "bounced"})
    return DemoLead(OPTED_OUT, w.user_id, None, traits["email"])
