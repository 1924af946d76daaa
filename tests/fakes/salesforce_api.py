"""A small fake of the Salesforce REST API served over real HTTPS, for tests driving ``simple-salesforce``.

``simple-salesforce`` builds every URL as ``https://<instance>/...``, so the fake serves TLS with a
self-signed certificate for 127.0.0.1 that it makes at start-up; clients trust it through ``fake.ca_file``
(``requests``' ``verify=``)::

    with FakeSalesforce() as fake:
        fake.add_opportunity("0065g00000AbCdEAAV", stage="Discovery", account="Acme Corp")
        # token: POST {fake.login_url}/services/oauth2/token (client credentials)

What it imitates (Salesforce REST API Developer Guide, https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta):

* ``POST /services/oauth2/token`` with ``grant_type=client_credentials`` and the connected app's key and
  secret in HTTP Basic auth or as ``client_id``/``client_secret`` form fields ("OAuth 2.0 Client
  Credentials Flow for Server-to-Server Integration"). Success: ``access_token``, ``instance_url`` (the
  fake itself), ``id``, ``token_type`` ``Bearer``, ``issued_at``, ``signature``, ``scope``. Wrong
  credentials: 400 ``{"error": "invalid_client", "error_description": "invalid client credentials"}``.
* ``/services/data/vXX.X/`` resources, ``Authorization: Bearer <token>``; a missing, unknown or expired
  token gets 401 ``[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]``.
  Errors are a JSON array of ``{"message", "errorCode", "fields"?}`` ("Status Codes and Error Responses").
* ``GET sobjects/Opportunity/{id}`` (15- or 18-character id; optional ``fields=``), ``GET sobjects/User/{id}``;
  unknown records 404 ``NOT_FOUND``; each record carries ``attributes: {type, url}``.
* ``GET sobjects/{Opportunity|User}/describe``: ``name``, ``label``, ``fields`` (``name``, ``label``,
  ``type``, ``updateable``, ``nillable``, ``length``, ``picklistValues``, ``referenceTo``).
* ``GET query?q=SOQL``: ``SELECT f, Account.Name FROM Opportunity|User WHERE a = 'x' [AND b = true]
  [LIMIT n]`` -> ``{"totalSize", "done": true, "records"}``; a field the object lacks -> 400 ``INVALID_FIELD``,
  what the fake can't parse -> 400 ``MALFORMED_QUERY``.
* ``PATCH sobjects/Opportunity/{id}`` with a JSON body -> 204; an unknown field -> 400 ``INVALID_FIELD``;
  a read-only one -> 400 ``INVALID_FIELD_FOR_INSERT_UPDATE``; a value a validation rule refuses
  (:meth:`FakeSalesforce.reject_field`) -> 400 ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` with ``fields``.
  A refused PATCH changes nothing.
* Every answer carries ``Sforce-Limit-Info: api-usage=N/15000``.

Test-only knobs: :meth:`fail` (503 ``SERVER_UNAVAILABLE``, 403 ``REQUEST_LIMIT_EXCEEDED``, any status),
:meth:`set_down`, :meth:`set_delay` (the request takes effect, the answer comes late), :meth:`expire_tokens`.
Calls are recorded (:attr:`calls`, :meth:`calls_to`) by route: ``token``, ``get``, ``query``, ``describe``,
``patch``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import itertools
import json
import re
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Call", "FakeSalesforce"]

ORG_ID = "00D5g000004ABCDEAA"
API_LIMIT = 15_000
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

DEFAULT_STAGES = (
    "Prospecting", "Discovery", "Scoping", "Technical Evaluation", "Proposal", "Negotiating",
    "Closed Won", "Closed Lost",
)
CLOSED_STAGES = {"Closed Won": True, "Closed Lost": False}  # stage -> IsWon

# Standard Opportunity fields the fake knows: name -> (type, updateable)
_OPPORTUNITY_FIELDS: dict[str, tuple[str, bool]] = {
    "Id": ("id", False), "Name": ("string", True), "StageName": ("picklist", True),
    "IsClosed": ("boolean", False), "IsWon": ("boolean", False), "AccountId": ("reference", True),
    "CloseDate": ("date", True), "Amount": ("currency", True), "OwnerId": ("reference", True),
    "LastModifiedDate": ("datetime", False),
}
_USER_FIELDS: dict[str, tuple[str, bool]] = {
    "Id": ("id", False), "Name": ("string", True), "Email": ("email", True), "Username": ("string", True),
    "IsActive": ("boolean", True),
}


def to18(record_id: str) -> str:
    """The case-safe 18-character form of a 15- or 18-character id."""
    if len(record_id) == 18:
        return record_id[:15] + record_id[15:].upper()
    suffix = ""
    for i in range(3):
        chunk = record_id[i * 5 : i * 5 + 5]
        suffix += _SUFFIX[sum(1 << j for j, c in enumerate(chunk) if "A" <= c <= "Z")]
    return record_id + suffix


@dataclass(frozen=True)
class Call:
    """One request the fake received. ``route`` is token/get/query/describe/patch/other."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    at: float


@dataclass
class _Failure:
    status: int
    error_code: str
    message: str


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Error(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


_cert_lock = threading.Lock()
_cert_paths: tuple[str, str] | None = None


def _certificate() -> tuple[str, str]:
    """(cert file, key file) of a self-signed certificate for 127.0.0.1, made once per process."""
    global _cert_paths
    with _cert_lock:
        if _cert_paths is not None:
            return _cert_paths
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        folder = Path(tempfile.mkdtemp(prefix="fake-salesforce-"))
        cert_file, key_file = folder / "cert.pem", folder / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        _cert_paths = (str(cert_file), str(key_file))
        return _cert_paths


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeSalesforce

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and hung up is expected in timeout tests


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSalesforce/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.fake._dispatch(method, self.path, headers, body)
        except Exception as exc:  # a bug in the fake: show it to the test instead of hanging up
            reply = _Reply(500, [{"message": f"fake_salesforce_crashed: {exc!r}", "errorCode": "UNKNOWN_EXCEPTION"}])
        raw = isinstance(reply.body, bytes)  # an override's answer, sent as it is
        data = reply.body if raw else b"" if reply.status == 204 else json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            if reply.status != 204 and not (raw and "Content-Type" in reply.headers):
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass


class FakeSalesforce:
    """In-process fake Salesforce org. See the module docstring for what it imitates."""

    def __init__(self, *, client_id: str = "3MVG9-test-consumer-key", client_secret: str = "test-consumer-secret",
                 api_version: str = "59.0") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_version = api_version
        self.url = ""
        self.ca_file = ""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._init_state()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> FakeSalesforce:
        if self._server is not None:
            return self
        cert_file, key_file = _certificate()
        self.ca_file = cert_file
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.fake = self
        self._server = server
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="fake-salesforce",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def login_url(self) -> str:
        """What ``SALESFORCE_LOGIN_URL`` is set to; the token's ``instance_url`` is the same server."""
        return self.url

    # -- state ----------------------------------------------------------------------------------------

    def _init_state(self) -> None:
        self._calls: list[Call] = []
        self._opportunities: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._custom_fields: dict[str, tuple[str, bool]] = {}
        self._stages: list[str] = list(DEFAULT_STAGES)
        self._tokens: set[str] = set()
        self._rejections: dict[str, tuple[str, str]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._down = False
        self._answers: dict[str, list[Any]] = {}  # route -> [reply, times left or None]
        self._usage = 0
        self._ids = itertools.count(1)

    def reset(self) -> None:
        with self._lock:
            self._init_state()

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def _new_id(self, prefix: str) -> str:
        return to18(f"{prefix}5g0000{next(self._ids):06d}")

    def add_field(self, name: str, *, type: str = "string", updateable: bool = True) -> None:
        """Declare a custom Opportunity field (``Why_Now__c``); describe lists it, queries and PATCH accept it."""
        with self._lock:
            self._custom_fields[name] = (type, updateable)

    def set_stages(self, stages: list[str]) -> None:
        """The org's StageName picklist, in order (closed stages must be among CLOSED_STAGES' names)."""
        with self._lock:
            self._stages = list(stages)

    def add_account(self, name: str) -> str:
        with self._lock:
            account_id = self._new_id("001")
            self._accounts[account_id] = {"Id": account_id, "Name": name}
            return account_id

    def add_user(self, email: str, *, name: str = "", active: bool = True) -> str:
        with self._lock:
            user_id = self._new_id("005")
            self._users[user_id] = {"Id": user_id, "Name": name or email.split("@")[0], "Email": email,
                                    "Username": email, "IsActive": active}
            return user_id

    def add_opportunity(self, opportunity_id: str, *, stage: str = "Discovery", account: str | None = "Acme Corp",
                        name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Seed an opportunity; extra keyword arguments are custom fields (declared with add_field first)."""
        with self._lock:
            account_id = None
            if account is not None:
                account_id = next((a for a, rec in self._accounts.items() if rec["Name"] == account), None)
                account_id = account_id or self.add_account(account)
            oid = to18(opportunity_id)
            unknown = [f for f in fields if f not in self._custom_fields]
            if unknown:
                raise ValueError(f"declare custom fields first with add_field: {unknown}")
            record = {"Id": oid, "Name": name or f"{account or 'Opportunity'} - New Business", "StageName": stage,
                      "IsClosed": stage in CLOSED_STAGES, "IsWon": CLOSED_STAGES.get(stage, False),
                      "AccountId": account_id, "CloseDate": "2027-03-31", "Amount": 120000.0,
                      "OwnerId": None, "LastModifiedDate": self._now()}
            record.update({f: None for f in self._custom_fields})
            record.update(fields)
            self._opportunities[oid] = record
            return copy.deepcopy(record)

    def opportunity(self, opportunity_id: str) -> dict[str, Any] | None:
        """The stored record as it is now (after PATCHes)."""
        with self._lock:
            rec = self._opportunities.get(to18(opportunity_id))
            return copy.deepcopy(rec) if rec is not None else None

    # -- failure injection ----------------------------------------------------------------------------

    def fail(self, route: str, *, status: int = 503, error_code: str | None = None, message: str | None = None,
             times: int = 1) -> None:
        """Make the next ``times`` calls of ``route`` (token/get/query/describe/patch or ``'*'``) fail.

        503 -> ``SERVER_UNAVAILABLE``; 403 -> ``REQUEST_LIMIT_EXCEEDED`` ("TotalRequests Limit exceeded.")
        unless ``error_code`` says otherwise. A failed call changes nothing.
        """
        code = error_code or {503: "SERVER_UNAVAILABLE", 403: "REQUEST_LIMIT_EXCEEDED",
                              500: "UNKNOWN_EXCEPTION"}.get(status, "UNKNOWN_EXCEPTION")
        text = message or {"SERVER_UNAVAILABLE": "Server temporarily unavailable",
                           "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded."}.get(code, "An error occurred")
        with self._lock:
            q = self._failures.setdefault(route, deque())
            for _ in range(times):
                q.append(_Failure(status, code, text))

    def reject_field(self, field_name: str, message: str) -> None:
        """A validation rule: any PATCH that sets ``field_name`` fails with this message until cleared."""
        with self._lock:
            self._rejections[field_name] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", message)

    def clear_rejections(self) -> None:
        with self._lock:
            self._rejections.clear()

    def set_down(self, down: bool) -> None:
        """While down every request (the token endpoint too) gets 503 ``SERVER_UNAVAILABLE``."""
        with self._lock:
            self._down = down

    def set_delay(self, route: str, seconds: float) -> None:
        """Answer ``route`` (``'*'`` = any) only after ``seconds`` (the call takes effect first); 0 removes."""
        with self._lock:
            if seconds > 0:
                self._delays[route] = seconds
            else:
                self._delays.pop(route, None)

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (401 INVALID_SESSION_ID), like a session timeout."""
        with self._lock:
            self._tokens.clear()

    # -- read helpers ---------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, route: str, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.route == route and (method is None or c.method == method)]

    # -- internals ------------------------------------------------------------------------------------

    @staticmethod
    def _now() -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def _fields_of(self, sobject: str) -> dict[str, tuple[str, bool]]:
        if sobject == "Opportunity":
            return {**_OPPORTUNITY_FIELDS, **self._custom_fields}
        if sobject == "User":
            return dict(_USER_FIELDS)
        raise _Error(404, "NOT_FOUND", f"The requested resource does not exist: sobject type '{sobject}'")

    def _records(self, sobject: str) -> dict[str, dict[str, Any]]:
        return self._opportunities if sobject == "Opportunity" else self._users

    def _route(self, method: str, path: str) -> tuple[str, list[str]]:
        if path == "/services/oauth2/token":
            return "token", []
        m = re.fullmatch(r"/services/data/v(\d+\.\d)/(.*)", path)
        if not m:
            return "other", []
        rest = [unquote(p) for p in m[2].strip("/").split("/") if p]
        if rest[:1] == ["query"]:
            return "query", rest
        if len(rest) == 3 and rest[0] == "sobjects" and rest[2] == "describe":
            return "describe", rest
        if len(rest) == 3 and rest[0] == "sobjects" and method == "PATCH":
            return "patch", rest
        if len(rest) == 3 and rest[0] == "sobjects" and method == "GET":
            return "get", rest
        return "other", rest

    def _dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        route, rest = self._route(method, parts.path)
        parsed: Any = None
        if body:
            ctype = headers.get("content-type", "")
            if "json" in ctype:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = ValueError
            else:
                parsed = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self._calls.append(Call(method, parts.path, route, query, copy.deepcopy(parsed) if parsed is not
                                    ValueError else None, dict(headers), time.time()))
            delay = self._delays.get(route, self._delays.get("*", 0.0))
            try:
                reply = self._answered(route) or self._answer(method, route, rest, query, parsed, headers)
            except _Error as e:
                err: dict[str, Any] = {"message": e.message, "errorCode": e.code}
                if e.fields is not None:
                    err["fields"] = e.fields
                reply = _Reply(e.status, [err])
            self._usage += 1
            reply.headers.setdefault("Sforce-Limit-Info", f"api-usage={self._usage}/{API_LIMIT}")
        if delay > 0:
            self._stopping.wait(delay)
        return reply

    def _answer(self, method: str, route: str, rest: list[str], query: dict[str, str], body: Any,
                headers: dict[str, str]) -> _Reply:
        if self._down:
            raise _Error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
        q = self._failures.get(route) or self._failures.get("*")
        if q:
            f = q.popleft()
            raise _Error(f.status, f.error_code, f.message)
        if route == "token":
            return self._token(method, body, headers)
        auth = headers.get("authorization", "")
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else ""
        if token not in self._tokens:
            raise _Error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if route == "query" and method == "GET":
            return _Reply(200, self._query(query.get("q", "")))
        if route == "describe" and method == "GET":
            return _Reply(200, self._describe(rest[1]))
        if route == "get":
            return _Reply(200, self._get(rest[1], rest[2], query.get("fields")))
        if route == "patch":
            if body is ValueError or not isinstance(body, dict):
                raise _Error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
            self._patch(rest[1], rest[2], body)
            return _Reply(204, None)
        raise _Error(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, method: str, body: Any, headers: dict[str, str]) -> _Reply:
        form = body if isinstance(body, dict) else {}
        if method != "POST" or form.get("grant_type") != "client_credentials":
            return _Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                client_id = client_secret = None
        if client_id != self.client_id or client_secret != self.client_secret:
            return _Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        token = f"{ORG_ID[:15]}!AQ{next(self._ids):010d}.fake"
        self._tokens.add(token)
        return _Reply(200, {
            "access_token": token, "signature": base64.b64encode(token.encode()).decode(), "scope": "api",
            "instance_url": self.url, "id": f"{self.url}/id/{ORG_ID}/0055g000000INTEGAAA", "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        })

    def _describe(self, sobject: str) -> dict[str, Any]:
        fields = []
        for name, (ftype, updateable) in self._fields_of(sobject).items():
            entry: dict[str, Any] = {
                "name": name, "label": name.removesuffix("__c").replace("_", " "), "type": ftype,
                "updateable": updateable, "nillable": ftype not in ("id", "boolean"), "custom": name.endswith("__c"),
                "length": 255 if ftype in ("string", "url", "email") else (32768 if ftype == "textarea" else 0),
                "picklistValues": [], "referenceTo": [],
            }
            if sobject == "Opportunity" and name == "StageName":
                entry["picklistValues"] = [{"active": True, "defaultValue": False, "label": s, "value": s}
                                           for s in self._stages]
            if ftype == "reference":
                entry["referenceTo"] = ["Account"] if name == "AccountId" else ["User"]
            fields.append(entry)
        return {"name": sobject, "label": sobject, "custom": False, "queryable": True, "updateable": True,
                "keyPrefix": "006" if sobject == "Opportunity" else "005", "fields": fields,
                "urls": {"sobject": f"/services/data/v{self.api_version}/sobjects/{sobject}"}}

    def _record_view(self, sobject: str, rec: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject,
                                              "url": f"/services/data/v{self.api_version}/sobjects/{sobject}/"
                                                     f"{rec['Id']}"}}
        for name in names if names is not None else list(rec):
            if name == "Account.Name":
                acct = self._accounts.get(rec.get("AccountId") or "")
                out["Account"] = None if acct is None else {
                    "attributes": {"type": "Account",
                                   "url": f"/services/data/v{self.api_version}/sobjects/Account/{acct['Id']}"},
                    "Name": acct["Name"]}
            else:
                out[name] = rec.get(name)
        return out

    def _get(self, sobject: str, record_id: str, fields: str | None) -> dict[str, Any]:
        known = self._fields_of(sobject)
        names = [f.strip() for f in fields.split(",")] if fields else None
        for n in names or []:
            if n not in known:
                raise _Error(400, "INVALID_FIELD", f"No such column '{n}' on sobject of type {sobject}")
        if not re.fullmatch(r"[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?", record_id):
            raise _Error(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "
                         f"{record_id}")
        rec = self._records(sobject).get(to18(record_id))
        if rec is None:
            raise _Error(404, "NOT_FOUND", "The requested resource does not exist")
        return self._record_view(sobject, rec, names)

    def _patch(self, sobject: str, record_id: str, body: dict[str, Any]) -> None:
        known = self._fields_of(sobject)
        rec = self._records(sobject).get(to18(record_id)) if len(record_id) in (15, 18) else None
        if rec is None:
            raise _Error(404, "NOT_FOUND", "The requested resource does not exist")
        for name in body:
            if name not in known:
                raise _Error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            if not known[name][1]:
                raise _Error(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                             f"Unable to create/update fields: {name}. Please check the security settings of this "
                             "field and verify that it is read/write for your profile or permission set.", [name])
        for name in body:
            if name in self._rejections:
                code, message = self._rejections[name]
                raise _Error(400, code, message, [name])
            ftype = known[name][0]
            if ftype == "reference" and body[name] is not None:
                target = str(body[name])
                if not (len(target) in (15, 18) and (to18(target) in self._users or to18(target) in self._accounts)):
                    raise _Error(400, "FIELD_INTEGRITY_EXCEPTION",
                                 f"{name}: id value of incorrect type: {target}", [name])
        rec.update(body)
        if "StageName" in body:
            rec["IsClosed"] = body["StageName"] in CLOSED_STAGES
            rec["IsWon"] = CLOSED_STAGES.get(body["StageName"], False)
        rec["LastModifiedDate"] = self._now()

    _SOQL = re.compile(
        r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
        r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*",
        re.IGNORECASE | re.DOTALL,
    )
    _COND = re.compile(r"\s*(?P<field>[\w.]+)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|true|false|null)\s*", re.IGNORECASE)

    def _query(self, soql: str) -> dict[str, Any]:
        m = self._SOQL.fullmatch(soql)
        if not m:
            raise _Error(400, "MALFORMED_QUERY", f"unexpected token: '{soql[:40]}'")
        sobject = m["obj"]
        known = self._fields_of(sobject)
        names = [f.strip() for f in m["fields"].split(",")]
        for n in names:
            if n not in known and not (sobject == "Opportunity" and n == "Account.Name"):
                raise _Error(400, "INVALID_FIELD", f"\n{m['fields']}\n^\nERROR at Row:1:Column:8\nNo such column "
                             f"'{n}' on entity '{sobject}'. If you are attempting to use a custom field, be sure to "
                             "append the '__c' after the custom field name.")
        conds: list[tuple[str, Any]] = []
        if m["where"]:
            for part in re.split(r"\s+AND\s+", m["where"], flags=re.IGNORECASE):
                c = self._COND.fullmatch(part)
                if not c:
                    raise _Error(400, "MALFORMED_QUERY", f"unexpected token: '{part.strip()[:40]}'")
                raw = c["value"]
                value: Any
                if raw.lower() in ("true", "false"):
                    value = raw.lower() == "true"
                elif raw.lower() == "null":
                    value = None
                else:
                    value = re.sub(r"\\(.)", r"\1", raw[1:-1])
                if c["field"] not in known:
                    raise _Error(400, "INVALID_FIELD", f"No such column '{c['field']}' on entity '{sobject}'.")
                conds.append((c["field"], value))
        out = []
        for rec in self._records(sobject).values():
            ok = True
            for name, value in conds:
                have = rec.get(name)
                if name == "Id" and isinstance(value, str) and len(value) in (15, 18):
                    ok &= have == to18(value)
                elif name == "Email" and isinstance(value, str):
                    ok &= (have or "").lower() == value.lower()  # SOQL string comparison is case-insensitive
                else:
                    ok &= have == value
            if ok:
                out.append(self._record_view(sobject, rec, names))
        if m["limit"]:
            out = out[: int(m["limit"])]
        return {"totalSize": len(out), "done": True, "records": out}

    # -- answers of any shape (test-only) ---------------------------------------------------------------

    def answer_with(self, route: str, body: Any, *, status: int = 200, headers: dict[str, str] | None = None,
                    times: int | None = None) -> None:
        """Answer ``route`` (token/get/query/describe/patch or ``'*'``) with exactly this, whatever was asked.

        ``body`` is JSON-encoded unless it is ``bytes`` (sent as they are: not JSON, a truncated answer, deep
        nesting the fake could not encode). The next ``times`` calls get it (None: every call until
        :meth:`clear_answers`). No credentials are checked and nothing changes: it is what a proxy, a broken
        org or a changed API would send back.
        """
        with self._lock:
            self._answers[route] = [_Reply(status, body, dict(headers or {})), times]

    def clear_answers(self) -> None:
        with self._lock:
            self._answers.clear()

    def _answered(self, route: str) -> _Reply | None:
        if self._down:
            return None
        key = route if route in self._answers else "*" if "*" in self._answers else None
        if key is None:
            return None
        reply, times = self._answers[key]
        if times is not None:
            if times <= 1:
                del self._answers[key]
            else:
                self._answers[key][1] = times - 1
        return _Reply(reply.status, reply.body, dict(reply.headers))
