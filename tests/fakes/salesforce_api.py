"""A fake Salesforce REST API at the wire, for tests.

An aiohttp app on 127.0.0.1 (ephemeral port) speaking the endpoints ``simple-salesforce``
1.12 calls. simple-salesforce builds every URL as ``https://{sf_instance}/…``, so the fake
serves TLS with a certificate from its own test CA (``trustme``): give the client a
``requests.Session`` whose ``verify`` is ``fake.ca_file``. ``fake.url`` is the instance URL.

- SOAP login (``POST /services/Soap/u/{version}``): username and password + security token,
  answered with the ``loginResponse`` envelope simple-salesforce parses (``sessionId``,
  ``serverUrl`` on this server), or an ``INVALID_LOGIN`` fault.
- SOQL (``GET …/query?q=``): ``SELECT fields FROM Lead|CustomField`` with ``WHERE``
  conditions joined by ``AND`` (``Email IN (…)``, ``LastModifiedDate >= 2026-…Z``,
  ``Field = 'value'``), ``page_size`` records a page with ``nextRecordsUrl`` paging.
- sObjects: ``POST …/sobjects/Lead/`` (201), ``GET``/``PATCH …/sobjects/Lead/{id}`` (204).
- sObject Collections: ``PATCH …/composite/sobjects`` (``allOrNone`` false), one result per
  record with errors in Salesforce's shape (``statusCode``, ``message``, ``fields``).
- Tooling: ``POST …/tooling/sobjects/CustomField/`` and ``GET …/tooling/query?q=`` of
  ``CustomField`` (``DeveloperName`` without ``__c``, ``TableEnumOrId``).

Every answer carries ``Sforce-Limit-Info: api-usage=N/M`` (each data request counts one).
Auth is ``Authorization: Bearer <session id>``; an unknown or expired one is 401
``INVALID_SESSION_ID``. Failures on demand: ``fail_next`` (500/503), ``limit_next`` (403
``REQUEST_LIMIT_EXCEEDED``), ``hang_next`` (no answer for T seconds), ``expire_sessions``.
Every request is recorded in ``calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import ssl
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

import trustme
from aiohttp import web

Clock = Callable[[], float]
Answer = tuple[int, Any]  # HTTP status, JSON body (or str for SOAP)

LEADBOT_FIELDS = (
    "Leadbot_Score__c",
    "Leadbot_Band__c",
    "Leadbot_Grade__c",
    "Leadbot_Probability__c",
    "Leadbot_Reasons__c",
    "Leadbot_Scored_At__c",
)
LEAD_FIELDS = frozenset(
    {"Id", "Email", "FirstName", "LastName", "Company", "Title", "Status", "IsConverted"}
    | {"LastModifiedDate", "CreatedDate", "LeadSource", "Industry", "Country"}
)
_DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/(?P<rest>.*)$")
_SOAP = re.compile(r"^/services/Soap/u/(?P<version>\d+\.\d)/?$")
_SELECT = re.compile(r"^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?\s*$", re.I | re.S)
_QUOTED = r"'((?:[^'\\]|\\.)*)'"
_IN = re.compile(rf"^(\w+)\s+IN\s+\(\s*({_QUOTED}(?:\s*,\s*{_QUOTED})*)\s*\)$", re.I | re.S)
_COMPARE = re.compile(rf"^(\w+)\s*(>=|<=|=|>|<)\s*(?:{_QUOTED}|(\S+))$", re.S)
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, and how it answered."""

    method: str  # HTTP method
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, the raw text for SOAP, or None
    at: float
    status: int = 200


@dataclass(slots=True)
class _Injected:
    status: int
    body: Any
    hang: float = 0.0


@dataclass(slots=True)
class FakeLead:
    id: str
    fields: dict[str, Any]
    modified: float  # LastModifiedDate, unix seconds


@dataclass(slots=True)
class _Cursor:
    records: list[dict[str, Any]]
    total: int
    done_before: int = 0
    pages: itertools.count = field(default_factory=itertools.count)


def sf_datetime(ts: float) -> str:
    """Salesforce's datetime format in answers: ``2026-12-03T10:00:00.000+0000``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _soql_string(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def _soql_datetime(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _errors(code: str, message: str, status: int = 400) -> Answer:
    return status, [{"message": message, "errorCode": code}]


class FakeSalesforce:
    """The fake server; start it with ``async with``."""

    def __init__(
        self,
        *,
        token: str = "00DFAKE!session-1",
        username: str = "leadbot@example.com",
        password: str = "pass",
        security_token: str = "SECTOKEN",
        page_size: int = 2000,
        daily_limit: int = 15000,
        fields_ready: bool = True,
        can_customize: bool = True,
        clock: Clock = time.time,
    ) -> None:
        self.token = token
        self.username, self.password, self.security_token = username, password, security_token
        self.page_size = page_size
        self.daily_limit = daily_limit
        self.api_used = 0
        self.can_customize = can_customize
        self.clock = clock
        self.calls: list[Call] = []
        self.leads: dict[str, FakeLead] = {}
        self.custom_fields: dict[str, dict[str, Any]] = (
            {name: {} for name in LEADBOT_FIELDS} if fields_ready else {}
        )
        self.record_errors: dict[str, tuple[str, str]] = {}  # lead id → (statusCode, message)
        self.sessions: set[str] = {token}
        self.logins = 0
        self._injected: deque[_Injected] = deque()
        self._cursors: dict[str, _Cursor] = {}
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._dir = tempfile.TemporaryDirectory(prefix="fake-salesforce-")
        self._ca = trustme.CA()
        self.ca_file = str(Path(self._dir.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self._dir.cleanup()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._closing.clear()
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, ssl_context=context)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing.set()  # hung answers end now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The instance URL (``SALESFORCE_INSTANCE_URL``), also the login server's."""
        return f"https://127.0.0.1:{self._port}"

    # -- data -----------------------------------------------------------------------------

    def add_lead(self, email: str | None, *, modified: float | None = None, **fields: Any) -> str:
        """A Lead (``LastName``/``Company`` default), returning its 18-character id."""
        lead_id = f"00Q{next(self._ids):012d}AAA"
        values = {"Email": email, "LastName": "Doe", "Company": "Acme", "IsConverted": False}
        values |= {"Status": "Open - Not Contacted"} | fields
        stamp = self.clock() if modified is None else modified
        self.leads[lead_id] = FakeLead(lead_id, values, stamp)
        return lead_id

    def lead(self, lead_id: str) -> dict[str, Any]:
        return self.leads[lead_id].fields

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        """Calls with HTTP ``method`` whose path contains ``fragment``."""
        return [c for c in self.calls if c.method == method and fragment in c.path]

    # -- failure injection --------------------------------------------------------------

    def fail_next(self, times: int = 1, *, status: int = 503) -> None:
        """The next ``times`` requests answer HTTP ``status`` (500 or 503)."""
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
        body = [{"message": "An unexpected error occurred.", "errorCode": code}]
        self._injected.extend(_Injected(status, body) for _ in range(times))

    def limit_next(self, times: int = 1) -> None:
        """The next ``times`` requests are over the org's daily API request limit."""
        self.api_used = max(self.api_used, self.daily_limit)
        body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        self._injected.extend(_Injected(403, body) for _ in range(times))

    def hang_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` requests get no answer for ``seconds`` (then a 503)."""
        body = [{"message": "timed out", "errorCode": "SERVER_UNAVAILABLE"}]
        self._injected.extend(_Injected(503, body, seconds) for _ in range(times))

    def expire_sessions(self) -> None:
        """Every session id so far is expired: requests with it get 401 INVALID_SESSION_ID."""
        self.sessions.clear()

    # -- HTTP ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        body: Any = raw if "Soap" in request.path else (json.loads(raw) if raw else None)
        query = {k: v[-1] for k, v in parse_qs(request.query_string).items()}
        injected = self._injected.popleft() if self._injected else None
        if injected is not None and injected.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), injected.hang)
        status, answer = (
            (injected.status, injected.body)
            if injected is not None
            else self._answer(request.method, request.path, query, body, request.headers)
        )
        self.calls.append(
            Call(request.method, request.path, query, dict(request.headers), body,
                 self.clock(), status)
        )  # fmt: skip
        self.api_used += 1
        # Connection: close, so no idle TLS connection outlives a test (urllib3 2 closes its
        # pools only when they are garbage-collected).
        usage = f"api-usage={self.api_used}/{self.daily_limit}"
        headers = {"Sforce-Limit-Info": usage, "Connection": "close"}
        if isinstance(answer, str):
            return web.Response(
                text=answer, status=status, content_type="text/xml", headers=headers
            )
        if status == 204:
            return web.Response(status=204, headers=headers)
        return web.json_response(answer, status=status, headers=headers)

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: Any
    ) -> Answer:
        if (soap := _SOAP.match(path)) and method == "POST":
            return self._login(body, soap["version"])
        data = _DATA.match(path)
        if data is None:
            return _errors("NOT_FOUND", "The requested resource does not exist", 404)
        bearer = headers.get("Authorization", "")
        if not bearer.startswith("Bearer ") or bearer[7:] not in self.sessions:
            return _errors("INVALID_SESSION_ID", "Session expired or invalid", 401)
        rest, version = data["rest"].rstrip("/"), data["version"]
        if rest in ("query", "tooling/query") and method == "GET":
            return self._query(query.get("q", ""), version, tooling=rest.startswith("tooling"))
        if rest.startswith("query/") and method == "GET":
            return self._more(rest.removeprefix("query/"), version)
        if rest == "composite/sobjects" and method == "PATCH":
            return self._collections_update(body)
        if rest == "sobjects/Lead" and method == "POST":
            return self._create(body)
        if rest.startswith("sobjects/Lead/"):
            return self._one(method, rest.removeprefix("sobjects/Lead/"), body, version)
        if rest == "tooling/sobjects/CustomField" and method == "POST":
            return self._create_field(body)
        return _errors("NOT_FOUND", "The requested resource does not exist", 404)

    # -- login --------------------------------------------------------------------------

    def _login(self, body: str, version: str) -> Answer:
        def value(tag: str) -> str:
            found = re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", body, re.S)
            return found.group(1) if found else ""

        expected = self.password + self.security_token
        if value("username") != self.username or value("password") != expected:
            return 500, _LOGIN_FAULT
        self.logins += 1
        session = f"00DFAKE!session-login-{self.logins}"
        self.sessions.add(session)
        server = f"{self.url}/services/Soap/u/{version}/00DFAKE000000001"
        return 200, _LOGIN_OK.format(session=session, server=server, url=self.url)

    # -- SOQL ---------------------------------------------------------------------------

    def _query(self, soql: str, version: str, *, tooling: bool) -> Answer:
        parsed = _SELECT.match(soql)
        if parsed is None:
            return _errors("MALFORMED_QUERY", f"unexpected token: {soql[:40]!r}")
        fields = [f.strip() for f in parsed[1].split(",")]
        table, where = parsed[2], parsed[3]
        rows, known = self._table(table, tooling)
        if rows is None:
            return _errors("INVALID_TYPE", f"sObject type '{table}' is not supported.")
        for name in fields:
            if name not in known:
                return _errors("INVALID_FIELD", f"No such column '{name}' on entity '{table}'.")
        try:
            conditions = [self._condition(c, known) for c in _split_and(where)] if where else []
        except ValueError as exc:
            return _errors("MALFORMED_QUERY", str(exc))
        chosen = [row for row in rows if all(test(row) for test in conditions)]
        records = [self._record(table, row, fields, version) for row in chosen]
        cursor = _Cursor(records, len(records))
        return self._page(f"01gFAKE{next(self._ids):08d}", cursor, version)

    def _table(self, table: str, tooling: bool) -> tuple[list[dict[str, Any]] | None, set[str]]:
        rows: list[dict[str, Any]]
        if tooling and table == "CustomField":
            rows = [
                {"Id": f"00NFAKE{i:08d}", "DeveloperName": name.removesuffix("__c"),
                 "TableEnumOrId": "Lead"}
                for i, name in enumerate(sorted(self.custom_fields))
            ]  # fmt: skip
            return rows, {"Id", "DeveloperName", "TableEnumOrId"}
        if not tooling and table == "Lead":
            rows = [
                {"Id": lead.id, **lead.fields, "LastModifiedDate": lead.modified}
                for lead in self.leads.values()
            ]
            return rows, set(LEAD_FIELDS) | set(self.custom_fields)
        return None, set()

    def _condition(self, text: str, known: set[str]) -> Callable[[dict[str, Any]], bool]:
        if found := _IN.match(text.strip()):
            name = found[1]
            values = {_soql_string(v).lower() for v in re.findall(_QUOTED, found[2])}
            self._known(name, known)
            return lambda row: str(row.get(name) or "").lower() in values
        if found := _COMPARE.match(text.strip()):
            name, op = found[1], found[2]
            self._known(name, known)
            if found[3] is not None:
                wanted = _soql_string(found[3]).lower()
                if op != "=":
                    raise ValueError(f"the fake compares strings with = only: {text!r}")
                return lambda row: str(row.get(name) or "").lower() == wanted
            literal = found[4]
            if literal.lower() in ("true", "false"):
                flag = literal.lower() == "true"
                return lambda row: bool(row.get(name)) == flag
            moment = _soql_datetime(literal)
            ops: dict[str, Callable[[float, float], bool]] = {
                ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
                "<": lambda a, b: a < b, "=": lambda a, b: a == b,
            }  # fmt: skip
            return lambda row: ops[op](float(row.get(name) or 0), moment)
        raise ValueError(f"unexpected condition: {text!r}")

    @staticmethod
    def _known(name: str, known: set[str]) -> None:
        if name not in known:
            raise ValueError(f"No such column '{name}'")

    @staticmethod
    def _record(table: str, row: dict[str, Any], fields: list[str], version: str) -> dict:
        record: dict[str, Any] = {
            "attributes": {"type": table, "url": f"/services/data/v{version}/sobjects/{table}/"
                           + str(row["Id"])}
        }  # fmt: skip
        for name in fields:
            value: Any = row.get(name)
            is_time = name == "LastModifiedDate" and value is not None
            record[name] = sf_datetime(float(value)) if is_time else value
        return record

    def _page(self, locator: str, cursor: _Cursor, version: str) -> Answer:
        page = cursor.records[: self.page_size]
        rest = cursor.records[self.page_size :]
        answer: dict[str, Any] = {"totalSize": cursor.total, "done": not rest, "records": page}
        if rest:
            offset = cursor.done_before + len(page)
            next_locator = f"{locator.split('-')[0]}-{offset}"
            self._cursors[next_locator] = _Cursor(rest, cursor.total, offset)
            answer["nextRecordsUrl"] = f"/services/data/v{version}/query/{next_locator}"
        return 200, answer

    def _more(self, locator: str, version: str) -> Answer:
        cursor = self._cursors.pop(locator, None)
        if cursor is None:
            return _errors("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(locator, cursor, version)

    # -- sObjects -----------------------------------------------------------------------

    def _unknown_field(self, record: dict[str, Any]) -> str | None:
        allowed = LEAD_FIELDS | set(self.custom_fields) | {"attributes", "id", "Id"}
        return next((name for name in record if name not in allowed), None)

    def _collections_update(self, body: Any) -> Answer:
        records = (body or {}).get("records") or []
        if len(records) > 200:
            return _errors(
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        for record in records:
            if (name := self._unknown_field(record)) is not None:
                return _errors("INVALID_FIELD", f"No such column '{name}' on sobject of type Lead")
        results = [self._update_one(record) for record in records]
        return 200, results

    def _update_one(self, record: dict[str, Any]) -> dict[str, Any]:
        lead_id = record.get("id")
        lead = self.leads.get(str(lead_id))
        if lead is None:
            return _failed(lead_id, "ENTITY_IS_DELETED", "entity is deleted")
        if lead_id in self.record_errors:
            code, message = self.record_errors[lead_id]
            return _failed(lead_id, code, message)
        if lead.fields.get("IsConverted"):
            return _failed(
                lead_id, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"
            )
        lead.fields |= {k: v for k, v in record.items() if k not in ("attributes", "id")}
        lead.modified = self.clock()
        return {"id": lead_id, "success": True, "errors": []}

    def _create(self, body: Any) -> Answer:
        body = dict(body or {})
        if (name := self._unknown_field(body)) is not None:
            return _errors("INVALID_FIELD", f"No such column '{name}' on sobject of type Lead")
        if not body.get("LastName") or not body.get("Company"):
            return _errors("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]")
        lead_id = self.add_lead(body.pop("Email", None), **body)
        return 201, {"id": lead_id, "success": True, "errors": []}

    def _one(self, method: str, lead_id: str, body: Any, version: str) -> Answer:
        lead = self.leads.get(lead_id)
        if lead is None:
            return _errors("NOT_FOUND", "The requested resource does not exist", 404)
        if method == "GET":
            row = {"Id": lead.id, **lead.fields, "LastModifiedDate": lead.modified}
            return 200, self._record("Lead", row, sorted(row), version)
        if method == "PATCH":
            result = self._update_one({**(body or {}), "id": lead_id})
            if result["success"]:
                return 204, None
            error = result["errors"][0]
            return _errors(error["statusCode"], error["message"])
        return _errors("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.", 405)

    # -- Tooling --------------------------------------------------------------------------

    def _create_field(self, body: Any) -> Answer:
        if not self.can_customize:
            return _errors(
                "INSUFFICIENT_ACCESS", "insufficient access rights on cross-reference id"
            )
        full_name = str((body or {}).get("FullName") or "")
        table, _, name = full_name.partition(".")
        if table != "Lead" or not name.endswith("__c"):
            return _errors("INVALID_FIELD", f"invalid FullName: {full_name!r}")
        if name in self.custom_fields:
            return _errors("DUPLICATE_DEVELOPER_NAME", "There's already a field named " + name)
        self.custom_fields[name] = dict(body.get("Metadata") or {})
        field_id = f"00NFAKE{next(self._ids):08d}"
        return 201, {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []}


def _failed(lead_id: object, code: str, message: str) -> dict[str, Any]:
    error = {"statusCode": code, "message": message, "fields": []}
    return {"id": lead_id, "success": False, "errors": [error]}


def _split_and(where: str) -> list[str]:
    """WHERE conditions joined by AND, outside quoted strings."""
    parts, current, quoted, escaped = [], "", False, False
    tokens = re.split(r"(\s+AND\s+)", where, flags=re.I)
    for token in tokens:
        if re.fullmatch(r"\s+AND\s+", token, re.I) and not quoted:
            parts.append(current)
            current = ""
            continue
        current += token
        for char in token:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "'":
                quoted = not quoted
    parts.append(current)
    return [p for p in parts if p.strip()]


_LOGIN_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
<soapenv:Body><loginResponse><result>\
<metadataServerUrl>{url}/services/Soap/m/59.0/00DFAKE000000001</metadataServerUrl>\
<passwordExpired>false</passwordExpired><sandbox>false</sandbox>\
<serverUrl>{server}</serverUrl><sessionId>{session}</sessionId>\
<userId>005FAKE000000001AAA</userId><userInfo><organizationId>00DFAKE000000001AAA\
</organizationId><userName>leadbot@example.com</userName></userInfo>\
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""

_LOGIN_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>\
<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, \
password, security token; or user locked out.</faultstring><detail>\
<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>\
<sf:exceptionMessage>Invalid username, password, security token; or user locked out.\
</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>\
</soapenv:Envelope>"""
