"""Salesforce, as the app needs it: read an opportunity, fill its Command Plan fields, set its Primary SA.

This is the only module that imports ``simple_salesforce``. Every call returns plain data
(``OpportunityRecord``, ids, field lists) or raises one of the app's delivery errors:

* ``RetryLater`` — connection refused/reset, timeout, 5xx, ``REQUEST_LIMIT_EXCEEDED`` (the org's 24-hour
  API limit, a 403), or a lookup that did not answer within its budget;
* ``Rejected`` — wrong credentials, a field a validation rule or the field's security refuses (the message
  names the field), anything else Salesforce refuses for good.

Authentication is the OAuth 2.0 client-credentials flow of a connected app ("OAuth 2.0 Client Credentials
Flow for Server-to-Server Integration", Salesforce Help): ``POST <login url>/services/oauth2/token`` with
``grant_type=client_credentials`` and the consumer key and secret in HTTP Basic auth; the answer's
``instance_url`` is where the REST API lives. simple-salesforce can run that flow itself, but only against
``https://<domain>.salesforce.com``; ``SALESFORCE_LOGIN_URL`` may be any URL (a My Domain, a sandbox, a test
server), so the token is fetched here with the same ``requests`` session and handed to
``Salesforce(instance=..., session_id=...)``. An expired token (401 ``INVALID_SESSION_ID``) is renewed once and
the call repeated; the client never sleeps or retries otherwise (the outbox owns retries).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.format import format_soql

from triage.core.errors import Rejected, RetryLater
from triage.core.opportunity import OpportunityRecord
from triage.core.salesforce import to_18

__all__ = ["API_VERSION", "FieldInfo", "SalesforceCRM"]

log = logging.getLogger(__name__)

API_VERSION = "59.0"
CACHE_SECONDS = 60.0  # a retried submission or a second modal within this reuses the answer
_CACHE_MAX = 512
_RETRY_LATER_CODES = {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "UNKNOWN_EXCEPTION"}
T = TypeVar("T")


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    updateable: bool
    reference_to: tuple[str, ...] = ()
    picklist: tuple[str, ...] = ()


class _Session(requests.Session):
    """A requests session with a default timeout (simple-salesforce passes none on most calls).

    ``verify`` is passed on each request because requests lets ``REQUESTS_CA_BUNDLE`` from the environment
    override a session's own ``verify`` (psf/requests#3829); a configured CA bundle must win.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SHORT_TEXT = 255  # a name, a picklist value: Salesforce's text and picklist fields hold at most 255 characters
_LONG_TEXT = 131_072  # the longest Long Text Area


class _Unreadable(ValueError):
    """An answer the documented shape does not describe (a proxy's page, a changed API, a broken org)."""


def _clean(text: Any, limit: int = 300) -> str:
    """Salesforce's (or a proxy's) words made fit for one log or check line: no control characters, short."""
    one = " ".join(_CONTROL.sub("", str(text)).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _errors(e: SalesforceError) -> list[dict[str, Any]]:
    content = e.content
    if isinstance(content, list):
        return [c for c in content if isinstance(c, dict)]
    if isinstance(content, dict):
        return [content]
    return []


def _describe_error(e: SalesforceError) -> str:
    parts = []
    for err in _errors(e):
        raw_fields = err.get("fields")
        fields = ", ".join(f for f in (raw_fields if isinstance(raw_fields, list) else []) if isinstance(f, str))
        parts.append(f"{fields + ': ' if fields else ''}{_str(err.get('message')) or ''} "
                     f"({_str(err.get('errorCode')) or '?'})")
    return _clean("; ".join(parts)) or f"HTTP {e.status}"


def _translate(e: SalesforceError, what: str) -> Exception:
    codes = {_str(err.get("errorCode")) for err in _errors(e)}
    text = f"Salesforce {what}: {_describe_error(e)}"
    if e.status >= 500 or codes & _RETRY_LATER_CODES:
        return RetryLater(text)
    return Rejected(text)


class SalesforceCRM:
    def __init__(self, *, client_id: str, client_secret: str, login_url: str = "https://login.salesforce.com",
                 fields: Mapping[str, str] | None = None, primary_sa_field: str | None = None,
                 verify: str | bool = True, timeout: float = 10.0, api_version: str = API_VERSION) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_url = login_url.rstrip("/") + "/services/oauth2/token"
        self.fields = dict(fields or {})  # request field -> API name (Command Plan fields)
        self.primary_sa_field = primary_sa_field
        self._timeout = timeout
        self._api_version = api_version
        self._session = _Session(timeout)
        self._session.verify = verify
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None
        self.instance_url: str | None = None
        self._cache: dict[str, tuple[float, OpportunityRecord | None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="salesforce-lookup")
        self.token_requests = 0

    # -- auth -----------------------------------------------------------------------------------------

    def _login(self) -> Salesforce:
        self.token_requests += 1
        try:
            resp = self._session.post(self._token_url, data={"grant_type": "client_credentials"},
                                      auth=(self._client_id, self._client_secret))
        except requests.RequestException as e:
            raise RetryLater(f"Salesforce login at {urlsplit(self._token_url).netloc} unreachable: "
                             f"{type(e).__name__}") from None
        try:
            body = resp.json()
        except (ValueError, RecursionError):  # not JSON, or nested past any parser's depth
            body = {}
        if resp.status_code >= 500 or resp.status_code == 429:
            raise RetryLater(f"Salesforce login answered HTTP {resp.status_code}")
        token = body.get("access_token") if isinstance(body, dict) else None
        if resp.status_code != 200 or not token:
            detail = (_str(body.get("error_description")) or _str(body.get("error"))) if isinstance(body, dict) \
                else None
            raise Rejected(f"Salesforce login refused (HTTP {resp.status_code}): "
                           f"{_clean(detail, 200) if detail else 'no access token'}; "
                           "check SALESFORCE_CLIENT_ID/SECRET and that the connected app enables the "
                           "client credentials flow with a run-as user")
        if not isinstance(token, str) or len(token) > 4096 or not token.isprintable() or " " in token:
            raise Rejected("Salesforce login answered with an access_token that is not a token")
        instance_url = body.get("instance_url")
        netloc = _https_host(instance_url)
        if netloc is None:
            raise Rejected(f"Salesforce login gave no usable https instance_url: {_clean(repr(instance_url), 120)}")
        self.instance_url = f"https://{netloc}"
        return Salesforce(instance=netloc, session_id=token, session=self._session, version=self._api_version)

    def _client(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._login()
            return self._sf

    def _forget(self, sf: Salesforce) -> None:
        with self._lock:
            if self._sf is sf:
                self._sf = None

    def _call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn`` with a logged-in client; renew an expired token once; translate every failure."""
        for attempt in (1, 2):
            sf = self._client()
            try:
                return fn(sf)
            except SalesforceExpiredSession:
                self._forget(sf)
                if attempt == 2:
                    raise Rejected(f"Salesforce {what}: a fresh token was refused as expired") from None
            except SalesforceError as e:
                raise _translate(e, what) from None
            except (_Unreadable, RecursionError) as e:  # RecursionError: JSON nested deeper than json can read
                raise RetryLater(f"Salesforce {what}: unreadable answer ({_clean(e, 120) or type(e).__name__})") \
                    from None
            except requests.Timeout:
                raise RetryLater(f"Salesforce {what}: timed out") from None
            except requests.RequestException as e:
                raise RetryLater(f"Salesforce {what}: {type(e).__name__}") from None
        raise AssertionError("unreachable")

    def connect(self) -> str:
        """Log in now (``triage check``); returns the instance URL."""
        with self._lock:
            self._sf = self._login()
        return self.instance_url or ""

    # -- opportunities --------------------------------------------------------------------------------

    def _fetch_opportunity(self, opportunity_id: str, timeout: float) -> OpportunityRecord | None:
        names = ["Id", "Name", "StageName", "IsClosed", "IsWon", "Account.Name", *self.fields.values()]
        # Field names come from the validated config (API-name pattern); the id is quoted by format_soql.
        select = ", ".join(dict.fromkeys(names))
        soql = format_soql(f"SELECT {select} FROM Opportunity WHERE Id = {{}} LIMIT 1",  # noqa: S608
                           to_18(opportunity_id))
        return self._call("opportunity lookup", lambda sf: self._read_opportunity(sf.query(soql, timeout=timeout)))

    def _read_opportunity(self, result: Any) -> OpportunityRecord | None:
        """The query's answer as a record; anything but the documented shape is _Unreadable, never guessed at
        (a missing ``IsClosed`` is not "open", missing ``records`` is not "not found")."""
        records = _records(result)
        if not records:
            return None
        rec = records[0]
        account = rec.get("Account")
        if account is not None and not isinstance(account, dict):
            raise _Unreadable("Account is not an object")
        is_closed, is_won = rec.get("IsClosed"), rec.get("IsWon")
        if not isinstance(is_closed, bool) or not isinstance(is_won, bool | None):
            raise _Unreadable("IsClosed or IsWon is not a boolean")
        values = {key: _text(rec, api_name, _LONG_TEXT) for key, api_name in self.fields.items()}
        return OpportunityRecord(id=_text(rec, "Id", 18, required=True), name=_text(rec, "Name", _SHORT_TEXT) or "",
                                 stage=_text(rec, "StageName", _SHORT_TEXT, required=True), is_closed=is_closed,
                                 is_won=bool(is_won), account_name=_text(account or {}, "Name", _SHORT_TEXT),
                                 values=values)

    def opportunity(self, opportunity_id: str, *, budget: float | None = None,
                    fresh: bool = False) -> OpportunityRecord | None:
        """The opportunity, or None if it does not exist; answered within ``budget`` seconds or RetryLater.

        Answers are cached for CACHE_SECONDS (``fresh`` skips the cache), so a retried submission or a
        second modal does not ask again. With a budget the lookup runs on a worker thread and is abandoned,
        not awaited, when the budget runs out: the caller is never held longer than ``budget``.
        """
        key = to_18(opportunity_id)
        now = time.monotonic()
        if not fresh:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        if budget is None:
            record = self._fetch_opportunity(opportunity_id, self._timeout)
        else:
            # The socket timeout is a little longer than the budget, so the caller is always released by the
            # budget (one message), and the abandoned thread still ends soon after.
            future = self._pool.submit(self._fetch_opportunity, opportunity_id, budget + 0.25)
            try:
                record = future.result(timeout=budget)
            except FutureTimeout:
                raise RetryLater(f"Salesforce did not answer within {budget:g} s") from None
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + CACHE_SECONDS, record)
        return record

    def current_values(self, opportunity_id: str, api_names: list[str]) -> dict[str, Any]:
        """The named fields as Salesforce has them now (GET sobjects/Opportunity/{id}?fields=...)."""
        if not api_names:
            return {}
        rec = self._call("opportunity read", lambda sf: _object(sf.Opportunity.get(
            to_18(opportunity_id), params={"fields": ",".join(api_names)})))
        return {n: rec.get(n) for n in api_names}

    def update_opportunity(self, opportunity_id: str, values: Mapping[str, Any]) -> None:
        """PATCH the given API-named fields (one request); field-level refusals name the field."""
        if not values:
            return
        self._call("opportunity update", lambda sf: sf.Opportunity.update(to_18(opportunity_id), dict(values)))
        self._cache.pop(to_18(opportunity_id), None)

    def fill_blank(self, opportunity_id: str, values: Mapping[str, str]) -> dict[str, str]:
        """Write request-field values to their Command Plan fields where Salesforce is still blank.

        Reads the fields first, so a retry after a lost answer (or an AE who filled the field meanwhile)
        writes nothing twice and overwrites nothing. Returns what was written, by request field.
        """
        api = {k: self.fields[k] for k in values if k in self.fields}
        current = self.current_values(opportunity_id, list(api.values()))
        todo = {k: values[k] for k, name in api.items() if not str(current.get(name) or "").strip()}
        self.update_opportunity(opportunity_id, {api[k]: v for k, v in todo.items()})
        return todo

    # -- users ----------------------------------------------------------------------------------------

    def user_id_by_email(self, email: str) -> str | None:
        """The active Salesforce user with this email, or None (none, or more than one)."""
        soql = format_soql("SELECT Id FROM User WHERE Email = {} AND IsActive = true LIMIT 2", email)
        records = self._call("user lookup", lambda sf: _records(sf.query(soql)))
        if len(records) != 1:
            return None
        return self._call("user lookup", lambda sf: _text(records[0], "Id", 18, required=True))

    def set_primary_sa(self, opportunity_id: str, user_id: str | None) -> None:
        """Write the Primary SA field (one PATCH); None clears it."""
        if not self.primary_sa_field:
            raise Rejected("no [salesforce.fields] primary_sa is configured")
        self.update_opportunity(opportunity_id, {self.primary_sa_field: user_id})

    def primary_sa(self, opportunity_id: str) -> str | None:
        if not self.primary_sa_field:
            return None
        current = self.current_values(opportunity_id, [self.primary_sa_field]).get(self.primary_sa_field)
        if current is not None and not (isinstance(current, str) and len(current) in (15, 18) and current.isalnum()):
            raise RetryLater(f"Salesforce opportunity read: unreadable answer ({self.primary_sa_field} is not an id)")
        return current

    # -- describe -------------------------------------------------------------------------------------

    def describe_fields(self, sobject: str = "Opportunity") -> dict[str, FieldInfo]:
        return self._call(f"describe {sobject}", lambda sf: _read_fields(getattr(sf, sobject).describe()))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()


# -- reading answers: the documented shape, or _Unreadable --------------------------------------------

def _https_host(url: Any) -> str | None:
    """``host[:port]`` of an https URL, or None for anything else (not text, another scheme, no host)."""
    if not isinstance(url, str) or len(url) > 2048 or not url.isprintable() or " " in url:
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises
    except ValueError:
        return None
    return parts.netloc if parts.scheme == "https" and parts.hostname else None


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Unreadable(f"a JSON object was expected, not {type(value).__name__}")
    return value


def _records(result: Any) -> list[dict[str, Any]]:
    records = _object(result).get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _Unreadable("records is not a list of records")
    return records


def _text(rec: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> Any:
    """A text field: a string of at most ``limit`` characters without control characters (None if allowed)."""
    v = rec.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v or len(v) > limit or _CONTROL.search(v):
        raise _Unreadable(f"{name} is not a text of at most {limit} characters")
    return v


def _read_fields(desc: Any) -> dict[str, FieldInfo]:
    fields = _object(desc).get("fields")
    if not isinstance(fields, list):
        raise _Unreadable("fields is not a list")
    out = {}
    for f in fields:
        f = _object(f)
        name = _text(f, "name", _SHORT_TEXT, required=True)
        refs, picks = f.get("referenceTo") or [], f.get("picklistValues") or []
        if not isinstance(refs, list) or not isinstance(picks, list):
            raise _Unreadable(f"{name}: referenceTo or picklistValues is not a list")
        out[name] = FieldInfo(
            name=name, type=_text(f, "type", 40) or "", updateable=f.get("updateable") is True,
            reference_to=tuple(_text({"r": r}, "r", _SHORT_TEXT, required=True) for r in refs),
            picklist=tuple(_text(_object(p), "value", _SHORT_TEXT, required=True) for p in picks
                           if _object(p).get("active", True) is not False))
    return out
