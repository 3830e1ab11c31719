"""HubSpot: scores onto contacts (batch upsert by e-mail), outcomes back from contacts and deals.

Everything goes through ``hubspot-api-client`` (``hubspot.Client``), whose calls block: each
runs in a worker thread with a request timeout, paced ``min_interval`` apart (private apps
may make 100 requests per 10 s). The client's ``*_with_http_info`` calls return the answer's
headers, so ``usage()`` reports HubSpot's ``X-HubSpot-RateLimit-*`` figures.

Errors map onto the connector contract: 429, 5xx, timeouts and refused connections are
``CrmUnavailable`` (with ``Retry-After``); 401, 403 and a missing ``leadbot_*`` property are
``CrmRefused`` with what to do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import urllib3
from hubspot import Client
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
)
from urllib3.util.retry import Retry

from bot.crm.base import (
    Changes,
    CrmOutcome,
    CrmRefused,
    CrmUnavailable,
    ScoreUpdate,
    WriteResult,
    Written,
)
from config.crm import Crm, HubSpotOutcomes
from config.settings import Settings

log = logging.getLogger(__name__)

NAME = "hubspot"
GROUP = "leadbot"
SETUP_HINT = "run `leadbot crm setup hubspot` (or have an admin create the leadbot properties)"
RECORD_URL = "https://app.hubspot.com/contacts/{portal}/record/0-1/{id}"
CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "jobtitle",
    "company",
    "lifecyclestage",
    "hs_lead_status",
    "lastmodifieddate",
)
DEAL_PROPERTIES = ("dealname", "dealstage", "hs_lastmodifieddate")
PAGE = 100  # search pages (HubSpot allows up to 200)
SEARCH_CAP = 10_000  # HubSpot's search answers at most this many results per query
REASONS_MAX = 2000
_BAND_OPTIONS = ("hot", "warm", "cold")

# The properties leadbot writes, as ``leadbot crm setup hubspot`` creates them:
# name → (label, type, fieldType, description).
PROPERTIES: dict[str, tuple[str, str, str, str]] = {
    "leadbot_score": ("Leadbot score", "number", "number", "The lead's score, 0-100."),
    "leadbot_band": ("Leadbot band", "enumeration", "select", "hot, warm or cold."),
    "leadbot_grade": ("Leadbot grade", "string", "text", "Fit grade and engagement, e.g. A1."),
    "leadbot_probability": (
        "Leadbot probability",
        "number",
        "number",
        "Estimated probability of a won deal, 0-1.",
    ),
    "leadbot_reasons": ("Leadbot reasons", "string", "textarea", "Top score contributions."),
    "leadbot_scored_at": ("Leadbot scored at", "datetime", "date", "When leadbot scored it."),
}


def property_definition(name: str) -> dict[str, Any]:
    """A leadbot property as HubSpot's properties API takes it (``PropertyCreate``)."""
    label, kind, field_type, description = PROPERTIES[name]
    body: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "groupName": GROUP,
        "description": description,
    }
    if kind == "enumeration":
        body["options"] = [
            {"label": band.title(), "value": band, "displayOrder": i, "hidden": False}
            for i, band in enumerate(_BAND_OPTIONS)
        ]
    return body


def hubspot_client(token: str, api_url: str | None = None) -> Client:
    """The official client, pointed at ``api_url`` when set (every API's Configuration
    takes ``host``). Connections are retried twice; a read or a status never is: the
    caller decides (a timed-out upsert may have been applied)."""
    config: dict[str, Any] = {
        "access_token": token,
        # Read HubSpot's answers leniently: a field it leaves out is None, not a crash.
        "client_side_validation": False,
        # A 429 or 503 with Retry-After must come back to the syncer, which pauses this CRM
        # for that long: urllib3 would otherwise retry it itself, or give up without it.
        "retry": Retry(
            total=2,
            connect=2,
            read=0,
            status=0,
            other=0,
            redirect=0,
            respect_retry_after_header=False,
        ),
    }
    if api_url:
        config["host"] = api_url.rstrip("/")
    return Client.create(**config)


def hubspot_time(at: float) -> str:
    """HubSpot's datetime format: ISO 8601 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_hubspot_time(value: object) -> float | None:
    """A HubSpot datetime property (ISO 8601, or epoch milliseconds) as unix seconds."""
    text = str(value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return int(text) / 1000
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def score_properties(update: ScoreUpdate) -> dict[str, str]:
    return {
        "leadbot_score": f"{update.score:.1f}",
        "leadbot_band": update.band,
        "leadbot_grade": update.grade,
        "leadbot_probability": f"{update.probability:.4f}",
        "leadbot_reasons": update.reasons[:REASONS_MAX],
        "leadbot_scored_at": hubspot_time(update.scored_at),
    }


class HubSpotConnector:
    """``bot.crm.base.Connector`` for HubSpot, with the webhook's lookups
    (``contact_outcome``, ``deal_outcomes``)."""

    name = NAME
    batch_size = 100
    min_interval = 0.1

    def __init__(
        self,
        token: str,
        outcomes: HubSpotOutcomes,
        *,
        api_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.outcomes = outcomes
        self.timeout = timeout
        client = hubspot_client(token, api_url)
        # Each discovery property builds a new API client: build each once.
        self._batch = client.crm.contacts.batch_api
        self._contacts = client.crm.contacts.basic_api
        self._contact_search = client.crm.contacts.search_api
        self._deals = client.crm.deals.basic_api
        self._deal_search = client.crm.deals.search_api
        self._associations = client.crm.associations.v4.basic_api
        self._portal: int | None = None
        self._usage: str | None = None
        self._last_request = 0.0
        self._pace = asyncio.Lock()

    # -- the contract -------------------------------------------------------------------

    async def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        result = WriteResult()
        by_email: dict[str, ScoreUpdate] = {}
        for update in updates:
            email = (update.email or "").strip().lower()
            if not email:
                result.refused[update.lead_id] = "no e-mail: HubSpot upserts contacts by e-mail"
            elif email not in by_email:  # a second lead on one e-mail waits for the next batch
                by_email[email] = update
        if by_email:
            portal = await self.portal_id()
            await self._upsert(by_email, portal, result)
        return result

    async def changed_outcomes(self, since: float | None, now: float) -> Changes:
        outcomes: list[CrmOutcome] = []
        seen: list[float] = []
        for record in await self._search_all(self._contact_search, "lastmodifieddate", since):
            seen.append(_modified(record, "lastmodifieddate"))
            outcome = self._contact(record)
            if outcome is not None:
                outcomes.append(outcome)
        for deal in await self._search_all(self._deal_search, "hs_lastmodifieddate", since):
            seen.append(_modified(deal, "hs_lastmodifieddate"))
            outcomes.extend(await self._deal(deal))
        return Changes(outcomes=outcomes, cursor=max(seen) if seen else now)

    def usage(self) -> str | None:
        return self._usage

    # -- lookups the webhook endpoint uses ----------------------------------------------

    async def contact_outcome(self, contact_id: str) -> CrmOutcome | None:
        """The contact's outcome now (None: not an outcome, or no such contact)."""
        record = await self._read(self._contacts, contact_id, CONTACT_PROPERTIES)
        return None if record is None else self._contact(record)

    async def deal_outcomes(self, deal_id: str) -> list[CrmOutcome]:
        """One outcome per contact of a won or lost deal (none for an open deal)."""
        deal = await self._read(self._deals, deal_id, DEAL_PROPERTIES)
        return [] if deal is None else await self._deal(deal)

    async def portal_id(self) -> int | None:
        """The HubSpot account's id (for record URLs), read once; None when HubSpot does
        not say (the scores are written all the same, without a URL)."""
        if self._portal is None:
            api = self._batch.api_client  # the client has no account-info API: its transport
            try:
                details = await self._call(
                    api.call_api,
                    "/account-info/v3/details",
                    "GET",
                    header_params={"Accept": "application/json"},
                    response_types_map={200: "object"},
                    auth_settings=["oauth2"],
                    _return_http_data_only=False,
                )
                self._portal = int(details["portalId"])
            except (_NotFound, _BadRequest, KeyError, TypeError, ValueError) as exc:
                log.warning("HubSpot: no portal id in the account details (%s)", exc)
        return self._portal

    # -- writes -------------------------------------------------------------------------

    async def _upsert(
        self, by_email: dict[str, ScoreUpdate], portal: int | None, result: WriteResult
    ) -> None:
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id=email,
                id_property="email",
                object_write_trace_id=update.lead_id,
                properties=score_properties(update),
            )
            for email, update in by_email.items()
        ]
        body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
        try:
            answer = await self._call(self._batch.upsert_with_http_info, body)
        except _BadRequest as exc:
            await self._isolate(by_email, portal, result, exc.message)
            return
        accepted = dict(by_email)
        for error in getattr(answer, "errors", None) or []:
            if (refused := _schema_refusal(error.message or "")) is not None:
                raise refused
            for email in (error.context or {}).get("ids") or []:
                bad = accepted.pop(str(email).lower(), None)
                if bad is not None:
                    result.refused[bad.lead_id] = f"HubSpot: {error.message}"
        for update, record in _matched(accepted, answer.results or []):
            url = None if portal is None else RECORD_URL.format(portal=portal, id=record.id)
            result.written.append(Written(update.lead_id, str(record.id), url))

    async def _isolate(
        self, by_email: dict[str, ScoreUpdate], portal: int | None, result: WriteResult, why: str
    ) -> None:
        """A 400 refuses a whole batch for one bad record: halve until it is alone, so the
        rest are written."""
        if len(by_email) == 1:
            update = next(iter(by_email.values()))
            result.refused[update.lead_id] = f"HubSpot: {why}"
            return
        items = list(by_email.items())
        half = len(items) // 2
        for part in (items[:half], items[half:]):
            await self._upsert(dict(part), portal, result)

    # -- reads --------------------------------------------------------------------------

    async def _search_all(self, api: Any, modified: str, since: float | None) -> list[Any]:
        """Every record modified since ``since``, oldest first, past HubSpot's 10,000
        results per query (the next query starts at the last time seen)."""
        records: list[Any] = []
        start, after = since, None
        while True:
            answer = await self._call(api.do_search_with_http_info, _search(modified, start, after))
            records.extend(answer.results or [])
            nxt = answer.paging.next.after if answer.paging and answer.paging.next else None
            if nxt is None:
                return records
            if int(nxt) + PAGE <= SEARCH_CAP:
                after = nxt
                continue
            last = _modified(records[-1], modified)
            if start is not None and last <= start:
                log.warning("HubSpot: over %d records share one modified time", SEARCH_CAP)
                return records
            start, after = last, None

    async def _read(self, api: Any, record_id: str, properties: Sequence[str]) -> Any:
        try:
            return await self._call(
                api.get_by_id_with_http_info, record_id, properties=list(properties)
            )
        except _NotFound:
            return None

    def _contact(self, record: Any) -> CrmOutcome | None:
        props = record.properties or {}
        stage, status = props.get("lifecyclestage"), props.get("hs_lead_status")
        outcome = self.outcomes.contact(stage, status)
        if outcome is None:
            return None
        reason = (
            f"lifecycle stage {stage}" if outcome == "won" and stage else f"lead status {status}"
        )
        return CrmOutcome(
            crm=NAME,
            record_id=str(record.id),
            email=props.get("email") or None,
            outcome=outcome,
            at=_modified(record, "lastmodifieddate"),
            reason=reason,
            ref=f"{record.id}:{outcome}",
            traits=_traits(props),
        )

    async def _deal(self, deal: Any) -> list[CrmOutcome]:
        stage = (deal.properties or {}).get("dealstage")
        outcome = self.outcomes.deal(stage)
        if outcome is None:
            return []
        at = _modified(deal, "hs_lastmodifieddate")
        found = []
        for contact_id in await self._deal_contacts(str(deal.id)):
            contact = await self._read(self._contacts, contact_id, CONTACT_PROPERTIES)
            props = contact.properties or {} if contact is not None else {}
            found.append(
                CrmOutcome(
                    crm=NAME,
                    record_id=contact_id,
                    email=props.get("email") or None,
                    outcome=outcome,
                    at=at,
                    reason=f"deal {deal.id} {stage}",
                    ref=f"deal:{deal.id}:{contact_id}:{outcome}",
                    traits=_traits(props),
                )
            )
        return found

    async def _deal_contacts(self, deal_id: str) -> list[str]:
        ids: list[str] = []
        after = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500}
            if after is not None:
                kwargs["after"] = after
            try:
                answer = await self._call(
                    self._associations.get_page_with_http_info,
                    "deals",
                    deal_id,
                    "contacts",
                    **kwargs,
                )
            except _NotFound:
                return ids
            ids.extend(str(r.to_object_id) for r in answer.results or [])
            if not (answer.paging and answer.paging.next):
                return ids
            after = answer.paging.next.after

    # -- one request --------------------------------------------------------------------

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method`` (a client ``*_with_http_info`` call) in a worker thread, paced, with
        the timeout; its data, after noting the rate-limit headers."""
        async with self._pace:
            wait = self._last_request + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_request = time.monotonic()
        kwargs["_request_timeout"] = self.timeout
        try:
            data, _status, headers = await asyncio.to_thread(method, *args, **kwargs)
        except Exception as exc:  # the client raises one ApiException class per API
            mapped = mapped_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        self._usage = usage_text(headers) or self._usage
        return data


def _matched(by_email: dict[str, ScoreUpdate], results: list[Any]) -> list[tuple[ScoreUpdate, Any]]:
    """Each upserted contact with its update: by the trace id sent (the lead id), else by
    its e-mail, else (as many answers as updates left) in the order sent."""
    by_lead = {u.lead_id: u for u in by_email.values()}
    pairs: list[tuple[ScoreUpdate, Any]] = []
    left: list[Any] = []
    for record in results:
        email = str((record.properties or {}).get("email") or "").lower()
        update = by_lead.pop(str(record.object_write_trace_id), None) or by_email.get(email)
        if update is not None and update.lead_id in by_lead:
            del by_lead[update.lead_id]
        if update is None:
            left.append(record)
        else:
            pairs.append((update, record))
    unmatched = [u for u in by_email.values() if u.lead_id in by_lead]
    if left and len(left) == len(unmatched):
        pairs.extend(zip(unmatched, left, strict=True))
    return pairs


class _BadRequest(Exception):
    """A 400 that is not about leadbot's properties: one bad record refuses the batch."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _NotFound(Exception):
    pass


def mapped_error(exc: Exception) -> Exception | None:
    """The contract's exception for a failed call (None: not HubSpot's answer, a bug)."""
    if isinstance(exc, urllib3.exceptions.HTTPError):  # timeouts, refused connections
        return CrmUnavailable(f"HubSpot did not answer: {type(exc).__name__}")
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        return None
    body = _body(exc)
    message = str(body.get("message") or getattr(exc, "reason", "") or "")[:300]
    if status == 0 or status == 429 or status >= 500:
        after = _retry_after(getattr(exc, "headers", None))
        return CrmUnavailable(f"HubSpot answered {status}: {message}", retry_after=after)
    if status == 401:
        return CrmRefused(
            "HubSpot refused the access token (401): it is wrong, revoked or expired; "
            "create a new private app token and set HUBSPOT_ACCESS_TOKEN"
        )
    if status == 403:
        scopes = _scopes(body) or ["the scope this call needs"]
        return CrmRefused(
            f"HubSpot's private app lacks the scope {', '.join(scopes)} (403): add it in the "
            "app's Scopes tab, then set the new token in HUBSPOT_ACCESS_TOKEN"
        )
    if status == 404:
        return _NotFound(message)
    if (refused := _schema_refusal(message)) is not None:
        return refused
    if status == 400:
        return _BadRequest(message)
    return CrmRefused(f"HubSpot refused the request ({status}): {message}")


def _schema_refusal(message: str) -> CrmRefused | None:
    """A missing leadbot property refuses every write until someone creates it."""
    if "PROPERTY_DOESNT_EXIST" not in message and "does not exist" not in message:
        return None
    missing = [name for name in PROPERTIES if name in message] or ["a leadbot property"]
    return CrmRefused(f"HubSpot has no contact property {', '.join(missing)}: {SETUP_HINT}")


def _body(exc: Exception) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    try:
        body = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def required_scopes(exc: Exception) -> list[str]:
    """The scopes a 403 ``MISSING_SCOPES`` answer names."""
    return _scopes(_body(exc))


def _scopes(body: dict[str, Any]) -> list[str]:
    return [
        scope
        for error in body.get("errors") or []
        for scope in (error.get("context") or {}).get("requiredGranularScopes") or []
    ]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def usage_text(headers: Any) -> str | None:
    """HubSpot's ``X-HubSpot-RateLimit-*`` headers as one line, or None without them."""
    if headers is None:
        return None
    parts = []
    daily, daily_left = (headers.get(f"X-HubSpot-RateLimit-Daily{s}") for s in ("", "-Remaining"))
    if daily and daily_left and daily.isdigit() and daily_left.isdigit():
        parts.append(f"API calls today: {int(daily) - int(daily_left):,} of {int(daily):,}")
    most, left = (headers.get(f"X-HubSpot-RateLimit-{s}") for s in ("Max", "Remaining"))
    if most and left and most.isdigit() and left.isdigit():
        window = int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds") or 10_000) / 1000
        parts.append(f"{int(most) - int(left)} of {int(most)} in the last {window:g} s")
    return "; ".join(parts) or None


def _search(modified: str, since: float | None, after: str | None) -> PublicObjectSearchRequest:
    deals = modified == "hs_lastmodifieddate"
    filters = []
    if since is not None:
        value = str(int(since * 1000))
        filters = [{"filters": [{"propertyName": modified, "operator": "GTE", "value": value}]}]
    return PublicObjectSearchRequest(
        filter_groups=filters,
        sorts=[{"propertyName": modified, "direction": "ASCENDING"}],
        properties=list(DEAL_PROPERTIES if deals else CONTACT_PROPERTIES),
        limit=PAGE,
        after=after,
    )


def _modified(record: Any, name: str) -> float:
    props = record.properties or {}
    at = parse_hubspot_time(props.get(name))
    if at is None and getattr(record, "updated_at", None) is not None:
        at = record.updated_at.timestamp()
    return at or 0.0


def _traits(props: dict[str, Any]) -> dict[str, Any]:
    """A contact's properties as identify traits, for a lead leadbot never saw."""
    traits = {
        "email": props.get("email"),
        "firstName": props.get("firstname"),
        "lastName": props.get("lastname"),
        "title": props.get("jobtitle"),
        "company": {"name": props["company"]} if props.get("company") else None,
    }
    return {k: v for k, v in traits.items() if v}


def hubspot_from_settings(settings: Settings, crm: Crm) -> HubSpotConnector | None:
    """The connector when HUBSPOT_ACCESS_TOKEN is set, else None."""
    if settings.hubspot_access_token is None:
        return None
    token = settings.hubspot_access_token.get_secret_value()
    if not token:
        return None
    return HubSpotConnector(token, crm.hubspot, api_url=settings.hubspot_api_url)
