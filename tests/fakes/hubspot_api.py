"""A fake HubSpot CRM API (v3, associations v4) at the wire, for tests.

An aiohttp app on 127.0.0.1 (ephemeral port) answering the endpoints ``hubspot-api-client``
12 calls for leadbot, at the paths, query parameters and JSON shapes the client sends and
deserializes (``hubspot.Client.create(access_token=..., host=fake.url)``):

- ``POST /crm/v3/objects/contacts/batch/upsert`` (``idProperty: email``): 200 with
  ``status``, ``results`` [{id, properties, createdAt, updatedAt, new}], or 207 with an
  ``errors`` list (one ``VALIDATION_ERROR`` per invalid e-mail, ``context.ids``) beside the
  results; a property nobody defined is HubSpot's 400 ``PROPERTY_DOESNT_EXIST``.
- ``GET /crm/v3/objects/{contacts,deals}/{id}?properties=…``; 404 ``OBJECT_NOT_FOUND``.
- ``POST /crm/v3/objects/{contacts,deals}/search``: ``filterGroups`` (EQ, GTE, GT, LTE, LT),
  ``sorts``, ``limit``, ``after``; ``paging.next.after`` while more remain.
- ``GET /crm/v4/objects/deals/{id}/associations/contacts`` (``after``, ``limit``).
- ``GET /account-info/v3/details``: the portal id.
- ``GET|POST /crm/v3/properties/contacts`` and ``/crm/v3/properties/contacts/groups``.

A bearer token is required (401 ``INVALID_AUTHENTICATION`` otherwise); each endpoint needs
its scope, and a scope taken out of ``scopes`` answers HubSpot's 403 ``MISSING_SCOPES``.
Every request is recorded (``requests``); ``fail_next`` answers the next N requests with 429
(``Retry-After`` and HubSpot's rate-limit body) or 5xx, ``hang_next`` keeps the next N back
for a while (a timeout). Each answer carries the ``X-HubSpot-RateLimit-*`` headers.

    async with FakeHubSpot(token="pat-test") as hub:
        cid = hub.add_contact("ada@example.com", lifecyclestage="customer")
        ...
        assert hub.requests[-1].headers["Authorization"] == "Bearer pat-test"
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from aiohttp import web

Clock = Callable[[], float]
PORTAL_ID = 4242
RATE_MAX = 100  # private apps: 100 requests per 10 s
DAILY = 250_000
ALL_SCOPES = frozenset(
    {
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.objects.deals.read",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
    }
)
# A contact's properties HubSpot defines itself (the ones leadbot reads or sets).
STANDARD_PROPERTIES = (
    ("email", "Email", "string", "text"),
    ("firstname", "First Name", "string", "text"),
    ("lastname", "Last Name", "string", "text"),
    ("jobtitle", "Job Title", "string", "text"),
    ("company", "Company Name", "string", "text"),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio"),
    ("hs_lead_status", "Lead Status", "enumeration", "radio"),
    ("createdate", "Create Date", "datetime", "date"),
    ("lastmodifieddate", "Last Modified Date", "datetime", "date"),
    ("hs_object_id", "Record ID", "number", "number"),
)
_DEFAULT_CONTACT = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
_DEFAULT_DEAL = (
    "amount",
    "closedate",
    "createdate",
    "dealname",
    "dealstage",
    "hs_lastmodifieddate",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def iso(at: float) -> str:
    """A unix time as HubSpot writes it: ``2026-12-03T16:32:35.123Z``."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str) -> float:
    """A filter value as HubSpot takes it: epoch milliseconds, or an ISO date-time."""
    if value.lstrip("-").isdigit():
        return int(value) / 1000
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class Request:
    """One request the fake received, and its answer's status."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    json: Any
    status: int


@dataclass(slots=True)
class Record:
    """A contact or deal: HubSpot keeps every property value as a string."""

    id: str
    properties: dict[str, str]
    created: float
    updated: float
    contacts: list[str] = field(default_factory=list)  # a deal's associated contact ids


@dataclass(frozen=True, slots=True)
class Hold:
    """One request kept back until the test releases it: ``arrived`` is set when it is in."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    retry_after: int | None
    hang: float = 0.0
    hold: Hold | None = None


class FakeHubSpot:
    """The fake server; start it with ``async with``."""

    def __init__(
        self, *, token: str = "pat-test", portal_id: int = PORTAL_ID, clock: Clock = time.time
    ) -> None:
        self.token = token
        self.portal_id = portal_id
        self.clock = clock
        self.scopes: set[str] = set(ALL_SCOPES)
        # 207: an invalid e-mail is one error beside the results; 400: it refuses the batch
        self.invalid_email_status = 207
        self.account_info = True  # False: /account-info/v3/details answers 404
        self.association_page = 500  # HubSpot's most per page; lower it to test paging
        self.requests: list[Request] = []
        self.contacts: dict[str, Record] = {}
        self.deals: dict[str, Record] = {}
        self.properties: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1001)
        self._failures: deque[_Failure] = deque()
        self._recent: deque[float] = deque()  # request times in the last 10 s
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        for name, label, kind, field_type in STANDARD_PROPERTIES:
            self.define_property(name, label, kind, field_type, "contactinformation", hubspot=True)
        self.groups["contactinformation"] = _group("contactinformation", "Contact information")

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._closing.clear()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing.set()  # a hanging answer gives up
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- test helpers -------------------------------------------------------------------

    def add_contact(
        self, email: str | None, *, modified_at: float | None = None, **properties: str
    ) -> str:
        """A contact with these properties; returns its id."""
        now = self.clock() if modified_at is None else modified_at
        cid = str(next(self._ids))
        props = {k: str(v) for k, v in properties.items()}
        if email:
            props["email"] = email
        record = Record(cid, props, now, now)
        self.contacts[cid] = record
        self._stamp(record, now, "lastmodifieddate")
        return cid

    def add_deal(
        self, stage: str, contacts: list[str], *, modified_at: float | None = None, **props: str
    ) -> str:
        """A deal at ``stage`` associated with these contact ids; returns its id."""
        now = self.clock() if modified_at is None else modified_at
        did = str(next(self._ids))
        record = Record(did, {"dealstage": stage, **props}, now, now, contacts=list(contacts))
        self.deals[did] = record
        self._stamp(record, now, "hs_lastmodifieddate")
        return did

    def contact_by_email(self, email: str) -> Record | None:
        return next(
            (c for c in self.contacts.values() if c.properties.get("email") == email.lower()),
            None,
        )

    def fail_next(self, status: int, n: int = 1, *, retry_after: int | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (429: HubSpot's rate-limit body)."""
        self._failures.extend(_Failure(status, retry_after) for _ in range(n))

    def hang_next(self, seconds: float, n: int = 1) -> None:
        """Keep the next ``n`` requests' answers back ``seconds`` (then answer normally)."""
        self._failures.extend(_Failure(200, None, hang=seconds) for _ in range(n))

    def hold_next(self) -> Hold:
        """Keep the next request's answer back until ``release()`` (then answer normally):
        what happens meanwhile is up to the test, not to a timer."""
        hold = Hold()
        self._failures.append(_Failure(200, None, hold=hold))
        return hold

    def requests_to(self, method: str, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # -- dispatch -----------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
        status, payload, headers = await self._answer(request, body)
        self.requests.append(
            Request(
                method=request.method,
                path=request.path,
                query={k: request.query.getall(k) for k in request.query},
                headers=dict(request.headers),
                json=body,
                status=status,
            )
        )
        headers = {**self._rate_headers(), **headers}  # counts this request
        return web.json_response(payload, status=status, headers=headers)

    async def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self._failures:
            failure = self._failures.popleft()
            if failure.hold is not None:
                failure.hold.arrived.set()
                await _first(failure.hold.released, self._closing)
            elif failure.hang:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), failure.hang)
            elif failure.status == 429:
                headers = {"Retry-After": str(failure.retry_after or 1)}
                return 429, _rate_limited(), headers
            else:
                return failure.status, _error("internal error", "INTERNAL_ERROR"), {}
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _unauthorized(), {}
        route = self._route(request.method, request.path)
        if route is None:
            return 404, _error(f"Unknown path {request.path}", "OBJECT_NOT_FOUND"), {}
        scope, handler, args = route
        if scope and scope not in self.scopes:
            return 403, _missing_scopes(scope), {}
        status, payload = handler(request, body, *args)
        return status, payload, {}

    def _route(self, method: str, path: str) -> tuple[str | None, Any, tuple[str, ...]] | None:
        parts = tuple(p for p in path.split("/") if p)
        contacts_write, contacts_read = "crm.objects.contacts.write", "crm.objects.contacts.read"
        table: dict[tuple[str, tuple[str, ...]], tuple[str | None, Any]] = {
            ("POST", ("crm", "v3", "objects", "contacts", "batch", "upsert")): (
                contacts_write,
                self._upsert,
            ),
            ("POST", ("crm", "v3", "objects", "contacts", "search")): (contacts_read, self._search),
            ("POST", ("crm", "v3", "objects", "deals", "search")): (
                "crm.objects.deals.read",
                self._search,
            ),
            ("GET", ("account-info", "v3", "details")): (None, self._details),
            ("GET", ("crm", "v3", "properties", "contacts")): (
                "crm.schemas.contacts.read",
                self._list_properties,
            ),
            ("POST", ("crm", "v3", "properties", "contacts")): (
                "crm.schemas.contacts.write",
                self._create_property,
            ),
            ("GET", ("crm", "v3", "properties", "contacts", "groups")): (
                "crm.schemas.contacts.read",
                self._list_groups,
            ),
            ("POST", ("crm", "v3", "properties", "contacts", "groups")): (
                "crm.schemas.contacts.write",
                self._create_group,
            ),
        }
        if (method, parts) in table:
            scope, handler = table[(method, parts)]
            return scope, handler, ()
        if (
            method == "GET"
            and parts[:4] == ("crm", "v3", "objects", "contacts")
            and len(parts) == 5
        ):
            return contacts_read, self._get_contact, (parts[4],)
        if method == "GET" and parts[:4] == ("crm", "v3", "objects", "deals") and len(parts) == 5:
            return "crm.objects.deals.read", self._get_deal, (parts[4],)
        deal_assoc = ("crm", "v4", "objects", "deals")
        if (
            method == "GET"
            and parts[:4] == deal_assoc
            and parts[5:] == ("associations", "contacts")
        ):
            return "crm.objects.deals.read", self._associations, (parts[4],)
        return None

    # -- endpoints ----------------------------------------------------------------------

    def _upsert(self, request: web.Request, body: Any) -> tuple[int, Any]:
        started = iso(self.clock())
        inputs = (body or {}).get("inputs") or []
        for item in inputs:
            for name in item.get("properties") or {}:
                if name not in self.properties:
                    return 400, _property_missing(name)
        results, errors = [], []
        if self.invalid_email_status == 400:
            for item in inputs:
                if not _EMAIL.match(str(item.get("id") or "").strip()):
                    message = _invalid_email(str(item.get("id")))["message"]
                    return 400, _error(message, "VALIDATION_ERROR")
        for item in inputs:
            email = str(item.get("id") or "").strip().lower()
            if item.get("idProperty") != "email" or not _EMAIL.match(email):
                errors.append(_invalid_email(str(item.get("id"))))
                continue
            result = self._upsert_one(email, item.get("properties") or {})
            if item.get("objectWriteTraceId"):  # echoed, as HubSpot does, to match answers
                result["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(result)
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso(self.clock()),
        }
        if errors:
            answer |= {"numErrors": len(errors), "errors": errors}
            return 207, answer
        return 200, answer

    def _upsert_one(self, email: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        record = self.contact_by_email(email)
        new = record is None
        if record is None:
            record = Record(str(next(self._ids)), {"email": email}, now, now)
            self.contacts[record.id] = record
        record.properties.update({k: "" if v is None else str(v) for k, v in properties.items()})
        self._stamp(record, now, "lastmodifieddate")
        names = {"email", "createdate", "hs_object_id", "lastmodifieddate", *properties}
        return {**_shape(record, names), "new": new}

    def _get_contact(self, request: web.Request, body: Any, cid: str) -> tuple[int, Any]:
        record = self.contacts.get(cid)
        if record is None:
            return 404, _error(
                "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND"
            )
        names = set(request.query.getall("properties", [])) or set(_DEFAULT_CONTACT)
        return 200, _shape(record, names | {"createdate", "hs_object_id", "lastmodifieddate"})

    def _get_deal(self, request: web.Request, body: Any, did: str) -> tuple[int, Any]:
        record = self.deals.get(did)
        if record is None:
            return 404, _error(
                "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND"
            )
        names = set(request.query.getall("properties", [])) or set(_DEFAULT_DEAL)
        return 200, _shape(record, names | {"createdate", "hs_object_id", "hs_lastmodifieddate"})

    def _search(self, request: web.Request, body: Any) -> tuple[int, Any]:
        deals = "/deals/" in request.path
        records = list((self.deals if deals else self.contacts).values())
        body = body or {}
        groups = body.get("filterGroups") or []
        if groups:
            records = [r for r in records if any(_matches(r, g) for g in groups)]
        for sort in reversed(body.get("sorts") or []):
            name = sort.get("propertyName", "")
            records.sort(
                key=lambda r: _sort_key(r.properties.get(name, "")),
                reverse=sort.get("direction") == "DESCENDING",
            )
        start = int(body.get("after") or 0)
        limit = min(int(body.get("limit") or 10), 200)
        page = records[start : start + limit]
        defaults = _DEFAULT_DEAL if deals else _DEFAULT_CONTACT
        names = set(body.get("properties") or defaults) | {"hs_object_id", "createdate"}
        answer: dict[str, Any] = {
            "total": len(records),
            "results": [_shape(r, names) for r in page],
        }
        if start + limit < len(records):
            answer["paging"] = {"next": {"after": str(start + limit), "link": ""}}
        return 200, answer

    def _associations(self, request: web.Request, body: Any, did: str) -> tuple[int, Any]:
        deal = self.deals.get(did)
        if deal is None:
            return 404, _error(f"deal {did} not found", "OBJECT_NOT_FOUND")
        start = int(request.query.get("after") or 0)
        limit = min(int(request.query.get("limit") or 500), self.association_page)
        page = deal.contacts[start : start + limit]
        kind = {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
        results = [{"toObjectId": int(cid), "associationTypes": [kind]} for cid in page]
        answer: dict[str, Any] = {"results": results}
        if start + limit < len(deal.contacts):
            answer["paging"] = {"next": {"after": str(start + limit), "link": ""}}
        return 200, answer

    def _details(self, request: web.Request, body: Any) -> tuple[int, Any]:
        if not self.account_info:
            return 404, _error("Not found", "OBJECT_NOT_FOUND")
        return 200, {
            "portalId": self.portal_id,
            "accountType": "STANDARD",
            "timeZone": "UTC",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "+00:00",
            "utcOffsetMilliseconds": 0,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    def _list_properties(self, request: web.Request, body: Any) -> tuple[int, Any]:
        return 200, {"results": list(self.properties.values())}

    def _list_groups(self, request: web.Request, body: Any) -> tuple[int, Any]:
        return 200, {"results": list(self.groups.values())}

    def _create_group(self, request: web.Request, body: Any) -> tuple[int, Any]:
        name = (body or {}).get("name", "")
        if name in self.groups:
            return 409, _error(f"A property group named '{name}' already exists.", "CONFLICT")
        self.groups[name] = _group(name, body.get("label", name), body.get("displayOrder", -1))
        return 201, self.groups[name]

    def _create_property(self, request: web.Request, body: Any) -> tuple[int, Any]:
        body = body or {}
        name = body.get("name", "")
        if name in self.properties:
            message = f"Property named '{name}' already exists."
            return 409, _error(message, "CONFLICT")
        if body.get("groupName") not in self.groups:
            return 400, _error(f"group {body.get('groupName')} does not exist", "VALIDATION_ERROR")
        prop = self.define_property(
            name,
            body["label"],
            body["type"],
            body["fieldType"],
            body["groupName"],
            options=body.get("options") or [],
            description=body.get("description", ""),
        )
        return 201, prop

    # -- state --------------------------------------------------------------------------

    def define_property(
        self,
        name: str,
        label: str,
        kind: str,
        field_type: str,
        group: str,
        *,
        hubspot: bool = False,
        options: list[dict[str, Any]] | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        """A contact property, as if created in HubSpot's settings."""
        now = iso(self.clock())
        self.properties[name] = {
            "name": name,
            "label": label,
            "type": kind,
            "fieldType": field_type,
            "groupName": group,
            "description": description,
            "options": [
                {"hidden": False, "displayOrder": i, **o} for i, o in enumerate(options or [])
            ],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": name == "email",
            "hidden": False,
            "hubspotDefined": hubspot,
            "formField": True,
            "createdAt": now,
            "updatedAt": now,
            "modificationMetadata": {
                "archivable": not hubspot,
                "readOnlyDefinition": hubspot,
                "readOnlyValue": False,
            },
        }
        return self.properties[name]

    def _stamp(self, record: Record, at: float, modified: str) -> None:
        record.updated = at
        record.properties.setdefault("createdate", iso(record.created))
        record.properties[modified] = iso(at)
        record.properties["hs_object_id"] = record.id

    def _rate_headers(self) -> dict[str, str]:
        now = self.clock()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - 10:
            self._recent.popleft()
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(RATE_MAX),
            "X-HubSpot-RateLimit-Remaining": str(max(RATE_MAX - len(self._recent), 0)),
            "X-HubSpot-RateLimit-Daily": str(DAILY),
            "X-HubSpot-RateLimit-Daily-Remaining": str(DAILY - len(self.requests)),
            "X-HubSpot-Correlation-Id": _correlation(),
        }


# -- HubSpot's JSON shapes ------------------------------------------------------------------


def _shape(record: Record, names: set[str]) -> dict[str, Any]:
    return {
        "id": record.id,
        "properties": {n: record.properties.get(n) for n in sorted(names)},
        "createdAt": iso(record.created),
        "updatedAt": iso(record.updated),
        "archived": False,
    }


def _group(name: str, label: str, order: int = -1) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": order, "archived": False}


def _sort_key(value: str | None) -> tuple[int, float | str]:
    if not value:
        return (0, "")
    try:
        return (1, parse_time(value))
    except ValueError:
        return (2, value)


def _matches(record: Record, group: Mapping[str, Any]) -> bool:
    for f in group.get("filters") or []:
        have = record.properties.get(f.get("propertyName", ""))
        want, op = str(f.get("value", "")), f.get("operator", "EQ")
        if op == "EQ" and (have or "").lower() != want.lower():
            return False
        if op in {"GTE", "GT", "LTE", "LT"}:
            if not have:
                return False
            a, b = parse_time(have), parse_time(want)
            ok = {"GTE": a >= b, "GT": a > b, "LTE": a <= b, "LT": a < b}[op]
            if not ok:
                return False
    return True


def _correlation() -> str:
    return str(uuid.uuid4())


def _error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": _correlation(),
        "category": category,
        **extra,
    }


def _unauthorized() -> dict[str, Any]:
    return _error(
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
        "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "INVALID_AUTHENTICATION",
    )


def _missing_scopes(scope: str) -> dict[str, Any]:
    return _error(
        "This app hasn't been granted all required scopes to make this call. Read more about "
        "required scopes here: https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def _rate_limited() -> dict[str, Any]:
    return {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": _correlation(),
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "publicapi:app-api-calls-ten-secondly",
    }


def _property_missing(name: str) -> dict[str, Any]:
    detail = (
        f'[{{"isValid":false,"message":"Property \\"{name}\\" does not exist",'
        f'"error":"PROPERTY_DOESNT_EXIST","name":"{name}","localizedErrorMessage":'
        f'"Property \\"{name}\\" does not exist"}}]'
    )
    return _error(f"Property values were not valid: {detail}", "VALIDATION_ERROR")


def _invalid_email(value: str) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": f"Property values were not valid: Email address {value} is invalid",
        "context": {"ids": [value]},
        "errors": [
            {
                "message": f"Email address {value} is invalid",
                "code": "INVALID_EMAIL",
                "context": {"propertyName": ["email"]},
            }
        ],
        "links": {},
    }


async def _first(*events: asyncio.Event) -> None:
    """Until one of ``events`` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
