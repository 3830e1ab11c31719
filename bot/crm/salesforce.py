"""Salesforce: scores onto Leads' ``Leadbot_*__c`` fields, converted and closed Leads back.

Over ``simple-salesforce`` (REST, SOQL, sObject Collections, Tooling), whose calls block:
each runs in a worker thread. Access is an instance URL with an access token, or a username,
password and security token leadbot logs in with (SOAP login, as simple-salesforce does it);
with those, an expired session (401 ``INVALID_SESSION_ID``) is renewed by logging in again.

Leadbot never creates Leads: reps own record creation, and a Lead needs fields (company,
owner, source) only they know. A lead with no Lead under its e-mail is refused, one by one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.format import format_soql
from simple_salesforce.login import SalesforceLogin

from bot.crm.base import (
    Changes,
    CrmOutcome,
    CrmRefused,
    CrmUnavailable,
    ScoreUpdate,
    WriteResult,
    Written,
)
from config.crm import Crm, SalesforceOutcomes
from config.errors import ConfigError, Problem
from config.settings import Settings

T = TypeVar("T")
API_VERSION = "59.0"
FIRST_PULL_DAYS = 30  # a first pull reads Leads changed this recently; older history: import
REASONS_LENGTH = 1000
EMAIL_QUERY_CHARS = 6000  # a query is a GET: its URL, once encoded, stays under 16 KB
SETUP_HINT = "run `leadbot crm setup salesforce`"
NO_LEAD = "no Lead with this e-mail in Salesforce"
FIELDS = (
    "Leadbot_Score__c",
    "Leadbot_Band__c",
    "Leadbot_Grade__c",
    "Leadbot_Probability__c",
    "Leadbot_Reasons__c",
    "Leadbot_Scored_At__c",
)
_PULLED = "Id, Email, FirstName, LastName, Company, Title, Status, IsConverted, LastModifiedDate"


class SalesforceRefusal(CrmRefused):
    """A refusal with Salesforce's ``errorCode`` (``INSUFFICIENT_ACCESS``, …)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TimeoutSession(requests.Session):
    """A session whose requests time out after ``timeout`` seconds unless told otherwise
    (simple-salesforce's login passes no timeout, and a hung login must not hang the
    syncer), and whose ``verify`` CA file is used even when REQUESTS_CA_BUNDLE is set
    (requests lets the environment override a session's own)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if kwargs.get("verify") is None:
            kwargs["verify"] = self.verify
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class Login:
    """A username, password and security token; ``domain`` is ``login``, ``test`` (a
    sandbox), a My Domain (``acme.my``), or a full ``https://`` login server URL."""

    username: str
    password: str
    security_token: str
    domain: str = "login"


class SalesforceConnector:
    """The ``bot.crm.base.Connector`` for Salesforce Leads; see the module docstring."""

    name = "salesforce"
    batch_size = 200  # sObject Collections take 200 records a request
    min_interval = 0.05

    def __init__(
        self,
        *,
        outcomes: SalesforceOutcomes,
        instance_url: str | None = None,
        access_token: str | None = None,
        login: Login | None = None,
        timeout: float = 15.0,
        verify: str | bool = True,
        version: str = API_VERSION,
    ) -> None:
        """``verify`` is a CA bundle path for a private CA (``REQUESTS_CA_BUNDLE`` works
        too); verification itself is never turned off."""
        if not (instance_url and access_token) and login is None:
            raise ValueError("Salesforce needs an instance URL and access token, or a login")
        self.outcomes = outcomes
        self.timeout = timeout
        self.version = version
        self._instance_url = instance_url.rstrip("/") if instance_url else None
        self._access_token = access_token
        self._login = login
        self._session = TimeoutSession(timeout)
        self._session.verify = verify or True
        self._client: Salesforce | None = None
        self._lock = threading.Lock()

    # -- the connector contract ---------------------------------------------------------

    async def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        """Update each lead's Lead (linked id, else found by e-mail) in one Collections
        PATCH; leads with no Lead, and records Salesforce refuses, are refused alone."""
        return await self.call(lambda sf: self._write(sf, list(updates)))

    async def changed_outcomes(self, since: float | None, now: float) -> Changes:
        start = since if since is not None else now - FIRST_PULL_DAYS * 86400
        return await self.call(lambda sf: self._changes(sf, start, now))

    def usage(self) -> str | None:
        usage = self._client.api_usage.get("api-usage") if self._client else None
        if usage is None:
            return None
        return f"API requests in the last 24 h: {usage.used:,} of {usage.total:,}"

    def close(self) -> None:
        """Close the HTTP connections (the connector is unusable after). urllib3 2 leaves
        a cleared pool's sockets to the garbage collector: close each pool first."""
        for adapter in self._session.adapters.values():
            manager = getattr(adapter, "poolmanager", None)
            if manager is None:
                continue
            for key in list(manager.pools.keys()):
                if (pool := manager.pools.get(key)) is not None:
                    pool.close()
        self._session.close()

    def record_url(self, record_id: str) -> str:
        return f"{self._base_url()}/lightning/r/Lead/{record_id}/view"

    async def call(self, work: Callable[[Salesforce], T]) -> T:
        """Run ``work`` with the client in a worker thread, logging in again once on an
        expired session; Salesforce's errors become CrmUnavailable or CrmRefused."""
        return await asyncio.to_thread(self._run, work)

    # -- client and errors --------------------------------------------------------------

    def _run(self, work: Callable[[Salesforce], T]) -> T:
        with self._lock:
            try:
                return self._attempt(work)
            except (CrmRefused, CrmUnavailable):
                raise
            except Exception as exc:
                failure = _mapped(exc, self.timeout)
                if failure is exc:
                    raise
        # Raised outside the handler, without the client's exception as its cause: that
        # traceback's frames hold urllib3's connection pool (and its open sockets) for as
        # long as anyone keeps the error, and the message already says what failed.
        raise failure

    def _attempt(self, work: Callable[[Salesforce], T]) -> T:
        try:
            return work(self._connected())
        except SalesforceExpiredSession:
            if self._login is None:
                raise SalesforceRefusal(
                    "SALESFORCE_ACCESS_TOKEN expired or was revoked (401 INVALID_SESSION_ID): "
                    "set a fresh one, or SALESFORCE_USERNAME, SALESFORCE_PASSWORD and "
                    "SALESFORCE_SECURITY_TOKEN so leadbot logs in itself",
                    code="INVALID_SESSION_ID",
                ) from None
            self._client = self._logged_in(self._login)
            return work(self._client)

    def _connected(self) -> Salesforce:
        if self._client is None:
            if self._instance_url and self._access_token:
                self._client = Salesforce(
                    session_id=self._access_token, instance_url=self._instance_url,
                    session=self._session, version=self.version,
                )  # fmt: skip
            else:
                assert self._login is not None
                self._client = self._logged_in(self._login)
        return self._client

    def _logged_in(self, login: Login) -> Salesforce:
        server = login.domain if login.domain.startswith("https://") else None
        session_id, instance = SalesforceLogin(
            username=login.username, password=login.password,
            security_token=login.security_token, sf_version=self.version,
            session=self._session, domain=None if server else login.domain,
            scratch_url=server.rstrip("/") if server else None,
        )  # fmt: skip
        return Salesforce(
            session_id=session_id, instance=instance, session=self._session, version=self.version
        )

    def _base_url(self) -> str:
        if self._client is not None:
            return f"https://{self._client.sf_instance}"
        return self._instance_url or ""

    # -- writes ---------------------------------------------------------------------------

    def _write(self, sf: Salesforce, updates: list[ScoreUpdate]) -> WriteResult:
        result = WriteResult()
        targets: list[tuple[ScoreUpdate, str]] = []
        unlinked = [u for u in updates if not u.record_id]
        found = self._find_by_email(sf, [u.email for u in unlinked if u.email])
        for update in updates:
            record_id = update.record_id or found.get((update.email or "").strip().lower())
            if record_id:
                targets.append((update, record_id))
            else:
                result.refused[update.lead_id] = NO_LEAD if update.email else "no e-mail"
        if not targets:
            return result
        for start in range(0, len(targets), self.batch_size):  # Collections take 200
            self._update(sf, targets[start : start + self.batch_size], result)
        return result

    def _update(
        self, sf: Salesforce, targets: list[tuple[ScoreUpdate, str]], result: WriteResult
    ) -> None:
        records = [_fields(update) | {"id": rid} for update, rid in targets]
        answers = sf.restful(
            "composite/sobjects", method="PATCH", timeout=self.timeout,
            json={"allOrNone": False, "records": records},
        )  # fmt: skip
        for (update, record_id), answer in zip(targets, answers or [], strict=True):
            if answer.get("success"):
                url = self.record_url(record_id)
                result.written.append(Written(update.lead_id, record_id, url))
            else:
                result.refused[update.lead_id] = _record_errors(answer.get("errors") or [])

    def _find_by_email(self, sf: Salesforce, emails: list[str]) -> dict[str, str]:
        """Lead id by lower-cased e-mail, one query a batch (two for very long e-mails);
        an unconverted Lead first, then the latest changed (several Leads may share one)."""
        wanted = sorted({e.strip().lower() for e in emails if e.strip()})
        best: dict[str, tuple[tuple[bool, str], str]] = {}
        for group in _groups(wanted, EMAIL_QUERY_CHARS):
            soql = format_soql(
                "SELECT Id, Email, IsConverted, LastModifiedDate FROM Lead WHERE Email IN {}",
                group,
            )
            for record in sf.query_all_iter(soql, timeout=self.timeout):
                email = str(record.get("Email") or "").lower()
                rank = (not record.get("IsConverted"), str(record.get("LastModifiedDate") or ""))
                if email and (email not in best or rank > best[email][0]):
                    best[email] = (rank, str(record["Id"]))
        return {email: lead_id for email, (_, lead_id) in best.items()}

    # -- outcomes -------------------------------------------------------------------------

    def _changes(self, sf: Salesforce, since: float, now: float) -> Changes:
        moment = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        soql = f"SELECT {_PULLED} FROM Lead WHERE LastModifiedDate >= {moment}"
        outcomes: list[CrmOutcome] = []
        latest: float | None = None
        for record in sf.query_all_iter(soql, timeout=self.timeout):
            modified = _timestamp(record.get("LastModifiedDate"))
            latest = modified if latest is None else max(latest, modified)
            outcome = self.outcomes.lead(record.get("IsConverted"), record.get("Status"))
            if outcome is not None:
                outcomes.append(_outcome(record, outcome, modified))
        return Changes(outcomes, latest if latest is not None else now)


def _groups(values: list[str], chars: int) -> list[list[str]]:
    """``values`` in runs of at most ``chars`` characters (at least one value each)."""
    groups: list[list[str]] = []
    size = chars
    for value in values:
        if size + len(value) > chars:
            groups.append([])
            size = 0
        groups[-1].append(value)
        size += len(value) + 3  # quotes and a comma
    return groups


def _fields(update: ScoreUpdate) -> dict[str, Any]:
    scored_at = datetime.fromtimestamp(update.scored_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "attributes": {"type": "Lead"},
        "Leadbot_Score__c": round(update.score, 1),
        "Leadbot_Band__c": update.band,
        "Leadbot_Grade__c": update.grade,
        "Leadbot_Probability__c": round(update.probability * 100, 1),  # a Percent field
        "Leadbot_Reasons__c": update.reasons[:REASONS_LENGTH],
        "Leadbot_Scored_At__c": scored_at,
    }


def _record_errors(errors: list[dict[str, Any]]) -> str:
    if any(e.get("statusCode") == "INVALID_FIELD" and "Leadbot_" in str(e) for e in errors):
        raise SalesforceRefusal(
            _missing_fields(str(errors[0].get("message"))), code="INVALID_FIELD"
        )
    described = [f"{e.get('statusCode')}: {e.get('message')}" for e in errors]
    return "; ".join(described) or "refused without a reason"


def _outcome(record: dict[str, Any], outcome: str, at: float) -> CrmOutcome:
    lead_id = str(record["Id"])
    reason = "Lead converted" if outcome == "won" else f"Lead Status {record.get('Status')}"
    traits = {
        "email": record.get("Email"),
        "firstName": record.get("FirstName"),
        "lastName": record.get("LastName"),
        "title": record.get("Title"),
        "company": {"name": record.get("Company")},
    }
    return CrmOutcome(
        crm="salesforce", record_id=lead_id, email=record.get("Email"), outcome=outcome,
        at=at, reason=reason, ref=f"{lead_id}:{outcome}", traits=traits,
    )  # fmt: skip


def _timestamp(value: object) -> float:
    """Salesforce's ``2026-12-03T10:00:00.000+0000`` as unix seconds."""
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _missing_fields(detail: str) -> str:
    return (
        f"Salesforce has no such Leadbot field on Lead ({detail}): {SETUP_HINT}, and give "
        "the API user Edit access to the Leadbot fields (field-level security)"
    )


def _mapped(exc: Exception, timeout: float) -> Exception:
    """A failed call as CrmUnavailable (may work later) or CrmRefused (needs an admin)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return CrmRefused(f"Salesforce's TLS certificate did not verify: {exc}")
    if isinstance(exc, requests.Timeout):
        return CrmUnavailable(f"Salesforce did not answer within {timeout:g} s")
    if isinstance(exc, requests.ConnectionError):
        return CrmUnavailable(f"could not reach Salesforce: {type(exc).__name__}")
    if isinstance(exc, SalesforceAuthenticationFailed):
        return SalesforceRefusal(
            f"Salesforce login failed for SALESFORCE_USERNAME ({exc.code}): check the "
            "username, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN",
            code=str(exc.code),
        )
    if isinstance(exc, SalesforceError):
        return _api_error(exc)
    return exc


def _api_error(exc: SalesforceError) -> Exception:
    code, message = _first_error(exc.content)
    if exc.status >= 500:
        return CrmUnavailable(f"Salesforce answered {exc.status} {code}: {message}".strip())
    if code == "REQUEST_LIMIT_EXCEEDED":
        wait = 3600 - time.time() % 3600 + 60  # the rolling 24 h frees calls as hours pass
        at = datetime.fromtimestamp(time.time() + wait, UTC).strftime("%H:%M")
        return CrmUnavailable(
            f"Salesforce's daily API request limit is reached (REQUEST_LIMIT_EXCEEDED: "
            f"{message}); retrying at about {at} UTC. An admin can raise the org's limit.",
            retry_after=wait,
        )
    if code == "INVALID_FIELD" and "Leadbot_" in message:
        return SalesforceRefusal(_missing_fields(message), code=code)
    return SalesforceRefusal(f"Salesforce refused ({exc.status} {code}): {message}", code=code)


def _first_error(content: object) -> tuple[str, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return str(first.get("errorCode") or ""), str(first.get("message") or "")
    return "", str(content)[:300]


# -- from settings ------------------------------------------------------------------------


def salesforce_from_settings(settings: Settings, crm: Crm) -> SalesforceConnector | None:
    """The connector the environment configures: None when no SALESFORCE_* access is set;
    a half configuration raises ConfigError naming the missing variable."""
    secret = _secret
    url, token = settings.salesforce_instance_url, secret(settings.salesforce_access_token)
    logins = {
        "SALESFORCE_USERNAME": settings.salesforce_username,
        "SALESFORCE_PASSWORD": secret(settings.salesforce_password),
        "SALESFORCE_SECURITY_TOKEN": secret(settings.salesforce_security_token),
    }
    given = {name for name, value in logins.items() if value}
    problems = [
        _problem(name, "is not set; the other SALESFORCE_* login variables need it")
        for name in sorted(logins.keys() - given)
        if given
    ]
    if token and not url:
        problems.append(_problem("SALESFORCE_INSTANCE_URL", "is not set; the token needs it"))
    if url and not token and not given:
        problems.append(_problem("SALESFORCE_ACCESS_TOKEN", "is not set (nor a login)"))
    if problems:
        raise ConfigError(problems)
    if not (token or given):
        return None
    login = None
    if given:
        username, password, security_token = (str(value) for value in logins.values())
        domain = settings.salesforce_domain or "login"
        login = Login(username, password, security_token, domain)
    return SalesforceConnector(
        outcomes=crm.salesforce, instance_url=url, access_token=token, login=login
    )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _problem(name: str, message: str) -> Problem:
    return Problem("environment", None, name, message)
