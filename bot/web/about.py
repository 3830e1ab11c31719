"""The bot's own about, privacy and terms pages at ``/``, ``/privacy`` and ``/terms``.

Teams requires a developer website, privacy and terms URL in the app manifest; a
self-hosted bot packaged without ``--website`` points them here (``bot.teams.package``), so
they must answer. Plain HTML, no external assets: nothing here loads anything from
elsewhere. Each page says what leadbot stores and where, as README's Privacy section does.
"""

from __future__ import annotations

from aiohttp import web

ABOUT, PRIVACY, TERMS = "/", "/privacy", "/terms"
PATHS = (ABOUT, PRIVACY, TERMS)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>leadbot: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 42em; margin: 2em auto; line-height: 1.5">
<h1>{title}</h1>
{body}
<p><a href="/">About</a> · <a href="/privacy">Privacy</a> · <a href="/terms">Terms</a></p>
</body></html>
"""

_ABOUT = """<p>leadbot is an open-source, self-hosted bot that scores sales leads from product
events and alerts sales reps in Slack or Microsoft Teams when a lead turns hot. This instance
is run by the organisation that installed it, not by the leadbot project.</p>"""

_PRIVACY = """<p>Everything leadbot stores is in this instance's own database, run by the
organisation that installed it; nothing is sent to the leadbot project or any third party.
</p>
<ul>
<li><b>Leads</b>: the traits and product events sent to it (e-mail, name, company, page
views, sign-ups…), their identities, scores and score history.</li>
<li><b>Chat</b>: the alerts, digests and follow-ups it posts and where (channel and message
ids), and in Teams the references of conversations it was added to.</li>
<li><b>Reps</b>: who claimed a lead or gave feedback (their Slack or Teams user id), with the
outcome and reason, and the display name Teams gives for a rep who acts, to name them in
digests.</li>
</ul>
<p>The operator can export everything stored about a person (<code>leadbot export</code>)
and delete it (<code>leadbot forget</code>); feedback is kept for learning under a
pseudonym. Ask them for either.</p>"""

_TERMS = """<p>leadbot is free software provided as is, without warranty of any kind. This
instance is operated by the organisation that installed it; its use is governed by that
organisation's own terms and policies.</p>"""

_PAGES = {
    ABOUT: _PAGE.format(title="About", body=_ABOUT),
    PRIVACY: _PAGE.format(title="Privacy", body=_PRIVACY),
    TERMS: _PAGE.format(title="Terms of use", body=_TERMS),
}


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=_PAGES[request.path], content_type="text/html")


def add_about_routes(router: web.UrlDispatcher) -> None:
    for path in PATHS:
        router.add_get(path, _page)
