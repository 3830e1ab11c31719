"""HubSpot's webhooks: ``POST /crm/hubspot/webhooks``, a contact's or a deal's outcome stored
as a label the moment HubSpot reports the change.

HubSpot signs each delivery (v3): ``X-HubSpot-Signature-v3`` is the base64 HMAC-SHA256,
keyed with the app's client secret (HUBSPOT_CLIENT_SECRET), of method + URI + body +
``X-HubSpot-Request-Timestamp`` (unix ms). The HMAC is hubspot-api-client's own
(``Signature``); a timestamp more than 5 minutes from now is refused. The URI is the URL
HubSpot called: behind a TLS proxy the server sees http, so a signature over
``LEADBOT_PUBLIC_URL`` + path is accepted too.

An event is a hint, not the truth: the contact or deal is read back through the HubSpot
connector (the deal's contacts through the associations API), so a late or repeated delivery
stores what the record is now. Answers: 200 once the labels are committed (outcome refs make a
redelivery a no-op); 503 when HubSpot's API or the database failed, so HubSpot delivers again
later and nothing is lost; 401 for a bad signature; 404 while HUBSPOT_CLIENT_SECRET is unset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature

from bot.crm.base import Connector, CrmOutcome, CrmRefused, CrmUnavailable
from bot.crm.hubspot import HubSpotConnector
from bot.crm.outcomes import store_outcomes
from bot.models.learning import Learner
from bot.models.live import ActiveModel
from bot.throttle import Throttled
from bot.web.answers import json_response, read_body, refused, unavailable
from bot.web.keys import ENGINE, LIMITS
from config.crm import HubSpotOutcomes
from config.loader import LeadbotConfig
from config.settings import Settings
from storage.health import is_outage

log = logging.getLogger(__name__)
_store_failures = Throttled(log)  # the database failing every delivery: a line per 30 s

PATH = "/crm/hubspot/webhooks"
ENDPOINT = "hubspot"  # the metrics label
SIGNATURE = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
MAX_AGE_SECONDS = Signature.MAX_ALLOWED_TIMESTAMP  # 300: HubSpot's documented 5 minutes
CONTACT_PROPERTIES = ("lifecyclestage", "hs_lead_status")
# HubSpot signs the URI with these decoded (its v3 documentation lists them).
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
            "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}  # fmt: skip


@dataclass
class HubSpotWebhooks:
    secret: str
    source: HubSpotConnector
    outcomes: HubSpotOutcomes
    active: ActiveModel
    public_url: str | None = None


HUBSPOT_WEBHOOKS = web.AppKey("hubspot_webhooks", HubSpotWebhooks)
LEARNER = web.AppKey("learner", Learner)  # woken after new labels, when the app runs one


def add_hubspot_webhooks(
    app: web.Application,
    settings: Settings,
    config: LeadbotConfig,
    connectors: Mapping[str, Connector],
) -> None:
    """The route; it verifies and stores only with HUBSPOT_CLIENT_SECRET and a connector
    (HUBSPOT_ACCESS_TOKEN) to read the records back."""
    app.router.add_post(PATH, receive_hubspot)
    source = connectors.get("hubspot")
    if settings.hubspot_client_secret is None:
        return
    if not isinstance(source, HubSpotConnector):
        log.warning(
            "HUBSPOT_CLIENT_SECRET is set but HUBSPOT_ACCESS_TOKEN is not: HubSpot's webhooks "
            "are refused until it is (each record is read back with it)"
        )
        return
    app[HUBSPOT_WEBHOOKS] = HubSpotWebhooks(
        secret=settings.hubspot_client_secret.get_secret_value(),
        source=source,
        outcomes=config.crm.hubspot,
        active=ActiveModel(config.model),
        public_url=settings.public_url,
    )


def _refused(status: int, reason: str, error: str, field: str) -> web.Response:
    return refused(ENDPOINT, status, reason, {"error": error, "field": field})


async def receive_hubspot(request: web.Request) -> web.Response:
    hook = request.app.get(HUBSPOT_WEBHOOKS)
    if hook is None:
        return _refused(404, "not_configured", "HubSpot webhooks are off: set "
                        "HUBSPOT_CLIENT_SECRET (the app's client secret) and "
                        "HUBSPOT_ACCESS_TOKEN, then restart", "HUBSPOT_CLIENT_SECRET")  # fmt: skip
    body = await read_body(request)
    if isinstance(body, web.Response):
        return body
    refusal = verify(request, body, hook, request.app[LIMITS].clock())
    if refusal is not None:
        return refusal
    try:
        wanted = select_events(orjson.loads(body), hook.outcomes)
    except (orjson.JSONDecodeError, ValueError) as exc:
        return _refused(400, "invalid", f"not HubSpot's array of events: {exc}", "")
    try:
        outcomes = await fetch_outcomes(hook.source, wanted)
    except (CrmUnavailable, CrmRefused) as exc:
        log.warning("HubSpot webhook: reading the records failed (HubSpot retries): %s", exc)
        return unavailable(ENDPOINT, f"HubSpot's API failed, deliver again later: {exc}")
    except Exception:  # a bug: logged, and HubSpot delivers again (never a 500)
        log.exception("HubSpot webhook: reading the records failed")
        return unavailable(ENDPOINT, "reading the records failed, deliver again later")
    return await _store(request, hook, outcomes, len(wanted))


async def _store(
    request: web.Request, hook: HubSpotWebhooks, outcomes: list[CrmOutcome], wanted: int
) -> web.Response:
    engine = request.app[ENGINE]
    try:
        model = await hook.active.current(engine)
        result = await store_outcomes(engine, outcomes, model=model)
    except Exception as exc:  # HubSpot delivers again; never a 500
        # Once a period: an outage fails every delivery alike (a traceback for a bug).
        _store_failures.failed(
            "store", "HubSpot webhook: storing %d outcomes failed (HubSpot delivers again): %r",
            len(outcomes), exc, exc_info=not is_outage(exc),
        )  # fmt: skip
        return unavailable(ENDPOINT, "the database failed, deliver again later")
    _store_failures.recovered("store", "HubSpot webhook: outcomes are stored again")
    learner = request.app.get(LEARNER)
    if result.stored and learner is not None:
        learner.wake()
    if result.stored or result.unmatched:
        log.info("HubSpot webhook: %d labels stored, %d known, %d records match no lead",
                 result.stored, result.duplicates, len(result.unmatched))  # fmt: skip
    return json_response(200, {
        "records": wanted, "outcomes": len(outcomes), "stored": result.stored,
        "duplicates": result.duplicates, "unmatched": len(result.unmatched),
    })  # fmt: skip


# -- the signature ---------------------------------------------------------------------------


def verify(
    request: web.Request, body: bytes, hook: HubSpotWebhooks, now: float
) -> web.Response | None:
    """None when the request is HubSpot's, else the 401 (or 400) to answer."""
    signature, timestamp = request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, "")
    for name, value in ((SIGNATURE, signature), (TIMESTAMP, timestamp)):
        if not value:
            return _refused(401, "signature", f"the {name} header is missing", name)
    if not timestamp.isdigit():
        return _refused(401, "signature", f"not unix milliseconds: {timestamp[:40]!r}", TIMESTAMP)
    age = now - int(timestamp) / 1000
    if abs(age) > MAX_AGE_SECONDS:
        when = "old" if age > 0 else "in the future"
        message = (f"the request is {abs(age):.0f} s {when}; more than {MAX_AGE_SECONDS} s is "
                   "refused (a replay, or a clock off)")  # fmt: skip
        return _refused(401, "signature", message, TIMESTAMP)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return _refused(400, "invalid", "the body is not UTF-8", "")
    for uri in signed_uris(request, hook.public_url):
        try:
            if Signature.is_valid(signature, hook.secret, text, http_uri=uri,
                                  http_method=request.method, signature_version="v3",
                                  timestamp=timestamp):  # fmt: skip
                return None
        except InvalidSignatureTimestampError:  # the library's own clock disagrees
            return _refused(401, "signature", "the request timestamp is too old", TIMESTAMP)
    return _refused(401, "signature", "the signature does not match the body with the "
                    "HUBSPOT_CLIENT_SECRET (behind a proxy, set LEADBOT_PUBLIC_URL to the URL "
                    "HubSpot calls)", SIGNATURE)  # fmt: skip


def signed_uris(request: web.Request, public_url: str | None) -> list[str]:
    """The URLs HubSpot may have signed: the one this server saw, and behind a proxy the
    public one; each as sent and with HubSpot's documented characters decoded."""
    seen = [f"{request.scheme}://{request.host}{request.raw_path}", str(request.url)]
    if public_url:
        seen.append(public_url.rstrip("/") + request.raw_path)
    uris: list[str] = []
    for uri in seen + [_decode(u) for u in seen]:
        if uri not in uris:
            uris.append(uri)
    return uris


def _decode(uri: str) -> str:
    for encoded, char in _DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


# -- the events ------------------------------------------------------------------------------


@dataclass
class Wanted:
    """The records whose outcome to read back, in the order HubSpot reported them."""

    contacts: list[str] = field(default_factory=list)
    deals: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.contacts) + len(self.deals)


def select_events(payload: Any, outcomes: HubSpotOutcomes) -> Wanted:
    """The contacts and deals whose change may be an outcome. Other events (another
    property, a value that is no outcome, an object type leadbot does not read) are
    acknowledged and ignored."""
    if not isinstance(payload, list):
        raise ValueError(f"expected a JSON array, got {type(payload).__name__}")
    wanted = Wanted()
    for event in payload:
        if not isinstance(event, dict) or event.get("objectId") is None:
            continue
        kind, name = event.get("subscriptionType"), event.get("propertyName")
        value, record = event.get("propertyValue"), str(event["objectId"])
        if kind == "contact.propertyChange" and name in CONTACT_PROPERTIES:
            stage, status = (value, None) if name == "lifecyclestage" else (None, value)
            if outcomes.contact(stage, status) and record not in wanted.contacts:
                wanted.contacts.append(record)
        elif kind == "deal.propertyChange" and name == "dealstage" and outcomes.deal(value):
            wanted.deals.extend([] if record in wanted.deals else [record])
    return wanted


async def fetch_outcomes(source: HubSpotConnector, wanted: Wanted) -> list[CrmOutcome]:
    """Each record's outcome as HubSpot holds it now (a deal's: one per contact)."""
    found: list[CrmOutcome] = []
    for contact in wanted.contacts:
        outcome = await source.contact_outcome(contact)
        if outcome is not None:
            found.append(outcome)
    for deal in wanted.deals:
        found.extend(await source.deal_outcomes(deal))
    return found
