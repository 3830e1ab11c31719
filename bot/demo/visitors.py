"""What anonymous visitors do: browse under an ``anonymousId``, and some identify later."""

from __future__ import annotations

from bot.demo import vocab
from bot.demo.personas import ANONYMOUS, NOISE, DemoLead
from bot.demo.plays import Stage, blog, content, docs, profile


def anonymous_converter(stage: Stage) -> DemoLead:
    """Browses for days as a cookie, then fills in a form: an identify carrying both the
    new ``userId`` and the same ``anonymousId``, so the pages seen before count for them.
    A third also send an ``alias`` first, as some Segment setups do."""
    rng, people = stage.rng, stage.people
    good = rng.random() < 0.5
    traits, country = profile(stage, good=good)
    anonymous_id = people.anonymous_id()
    w = stage.writer(country, anonymous_id=anonymous_id)
    sessions = rng.randint(2, 3)
    for i in range(sessions):
        w.session(0.5 * i / sessions, 0.5 * (i + 1) / sessions, rng.choice(vocab.REFERRERS))
        for _ in range(rng.randint(2, 4)):
            w.page(content(rng) if good else rng.choice((content(rng), docs(rng))))
        if good or rng.random() < 0.3:
            w.page("/pricing")
    w.session(0.45, 0.75)
    w.user_id = people.user_id()
    if rng.random() < 1 / 3:
        w.alias(anonymous_id)
    w.identify(traits)
    if good and rng.random() < 0.3:
        w.track("Trial Started", {"plan": "Growth", "trial_days": 14})
    elif rng.random() < 0.6:
        w.track("Whitepaper Downloaded", {"title": rng.choice(vocab.WHITEPAPERS)})
    else:
        w.track("Webinar Registered", {"webinar": rng.choice(vocab.WEBINARS)})
    for _ in range(rng.randint(0, 2)):
        w.session(0.6, 1.0)
        w.page(content(rng))
        w.page("/pricing" if good else blog(rng))
    return DemoLead(ANONYMOUS, w.user_id, anonymous_id, traits["email"])


def noise(stage: Stage) -> DemoLead:
    """One or two page views from a search or a link, never seen again."""
    rng = stage.rng
    country = rng.choice(vocab.CORE_COUNTRIES + vocab.OTHER_COUNTRIES)
    w = stage.writer(country, anonymous_id=stage.people.anonymous_id())
    w.session(0.0, 1.0, referrer=rng.choice(vocab.REFERRERS))
    for _ in range(rng.randint(1, 2)):
        w.page(rng.choice((blog(rng), "/", "/careers", "/product")))
    return DemoLead(NOISE, None, w.anonymous_id, None)
