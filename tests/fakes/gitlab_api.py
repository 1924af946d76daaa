"""A fake GitLab REST API v4 server, for tests that drive the real python-gitlab client over HTTP.

It runs a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a daemon thread and answers like GitLab does,
following GitLab's REST API docs (https://docs.gitlab.com/api/rest/, https://docs.gitlab.com/api/issues/,
https://docs.gitlab.com/api/notes/, https://docs.gitlab.com/api/users/, https://docs.gitlab.com/api/project_webhooks/):

* auth with the ``PRIVATE-TOKEN`` header (also ``private_token`` query or ``Authorization: Bearer``);
  a wrong or missing token gets ``401 {"message": "401 Unauthorized"}``;
* projects are addressed by numeric id or URL-encoded full path (``group%2Fproject``); unknown ones get
  ``404 {"message": "404 Project Not Found"}``;
* list endpoints paginate (``page``, ``per_page`` default 20, max 100) with ``X-Page``, ``X-Per-Page``,
  ``X-Next-Page``, ``X-Prev-Page``, ``X-Total``, ``X-Total-Pages`` and a ``Link`` header, so python-gitlab's
  ``iterator=True`` / ``get_all=True`` walk the pages;
* unknown labels named in ``labels`` / ``add_labels`` are created in the project, like GitLab does;
* quick actions (``/close``, ``/assign @x``, ``/label ~y`` ...) in an issue description or a note body sent
  through the API are EXECUTED and removed from the stored text, and recorded in ``executed_quick_actions``.
  The fake is deliberately stricter than GitLab: it also accepts leading spaces before the slash, matches
  command names case-insensitively, and executes ``/close``/``/reopen``/``/title``/``/move`` on create too.
  Fenced code blocks (```` ``` ```` / ``~~~``) and ``>>>`` quote blocks are skipped, as GitLab does.
  A note made only of quick actions gets ``202`` and no note (GitLab's behaviour);
* API changes to an issue (labels, assignees, state, due date, title) add system notes ("added ~3 label",
  "closed", ...), as GitLab does; ``notes()`` hides them unless ``include_system=True``.

Users: ``GET /users?search=`` matches username and name (substring, case-insensitive) and the
``public_email`` exactly (case-insensitive). The private ``email`` is matched only when the fake runs with
``admin=True`` (an administrator's token), because that is what GitLab does; a non-admin list answer carries
no email field at all (``UserBasic``), ``GET /users/:id`` shows ``public_email``.

Failure injection: ``fail()`` (any status; 429 carries ``Retry-After`` and ``RateLimit-*``), ``set_down()``
(503 HTML page everywhere), ``set_delay()`` (the request is applied, the answer comes late, so a client
timeout hits *after* the commit), ``drop_response_after_commit()`` (the request is applied, then the
connection is closed without an answer).

Time: timestamps come from the wall clock, or from ``set_time()``/``advance()``; every change gets a strictly
later ``updated_at`` (at least 1 ms) so ``updated_after`` filtering is deterministic without sleeping.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

__all__ = ["Call", "ExecutedQuickAction", "FakeGitLab"]

DEFAULT_LABEL_COLOR = "#6699cc"  # GitLab's Label::DEFAULT_COLOR
MAX_DESCRIPTION = 1_048_576
MAX_NOTE = 1_000_000

_CSS_COLORS = {
    "black",
    "white",
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "pink",
    "gray",
    "grey",
    "brown",
    "cyan",
    "magenta",
    "teal",
    "navy",
    "maroon",
    "olive",
    "lime",
    "aqua",
    "silver",
    "fuchsia",
}

# Commands GitLab interprets on issues (descriptions and notes). Unknown "/words" stay as text.
_QUICK_ACTION_NAMES = """
    close reopen title assign reassign unassign label labels relabel unlabel remove_label due remove_due_date
    confidential lock unlock spend spent spend_time estimate estimate_time remove_estimate
    remove_time_estimate remove_time_spent copy_metadata move clone duplicate award react milestone
    remove_milestone todo done
    subscribe unsubscribe cc weight clear_weight epic remove_epic iteration remove_iteration health_status
    clear_health_status promote promote_to_incident relate unrelate blocks blocked_by board_move
    create_merge_request zoom remove_zoom severity timeline shrug tableflip page type set_parent remove_parent
    add_child remove_child add_contacts remove_contacts checkin_reminder convert_to_ticket add_email
    remove_email
"""
_QUICK_ACTIONS = frozenset(_QUICK_ACTION_NAMES.split())
_QA_LINE = re.compile(r"^[ \t]*/([A-Za-z_][A-Za-z0-9_]*)(?:[ \t]+(.*?))?[ \t]*$")


@dataclass
class Call:
    """One HTTP request the fake received. ``path`` is the raw path as sent (``%2F`` kept), without query."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    status: int | None = None  # what the fake answered; None when the connection was dropped

    @property
    def decoded_path(self) -> str:
        return unquote(self.path)


@dataclass(frozen=True)
class ExecutedQuickAction:
    project: str  # path_with_namespace
    iid: int
    name: str  # command without the slash, lower-case
    argument: str
    source: str  # "description" | "note"


@dataclass
class _Rule:
    method: str
    regex: re.Pattern[str]
    remaining: int
    status: int = 0
    retry_after: int | None = None

    def matches(self, call: Call) -> bool:
        if self.remaining <= 0:
            return False
        if self.method not in ("*", call.method):
            return False
        return bool(self.regex.search(call.path) or self.regex.search(call.decoded_path))


class _HTTPError(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class _Reply:
    status: int
    body: Any = None  # JSON-serialisable, or str/bytes with content_type
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class _Req:
    method: str
    path: str
    query: dict[str, list[str]]
    params: dict[str, Any]


_UNSET: Any = object()


def _fmt(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _fmt_hook(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parse_dt(value: str) -> datetime:
    value = value.strip().replace(" UTC", "+00:00")
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _labels_param(value: Any) -> list[str]:
    """GitLab's CommaSeparatedToArray: a string or an array, every item split on commas, stripped."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _int_list(value: Any) -> list[int]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = []
    for item in items:
        if item in ("", None):
            continue
        try:
            out.append(int(item))
        except (TypeError, ValueError):
            raise _HTTPError(400, {"error": "assignee_ids is invalid"}) from None
    return out


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes", "on")


def _duration_seconds(text: str) -> int | None:
    """GitLab time-tracking durations: 1mo 2w 3d 4h 5m (1d = 8h, 1w = 5d, 1mo = 4w), optional leading '-'."""
    text = text.strip().split(" ")[0] if text.strip() else ""
    m = re.fullmatch(r"(-?)((?:\d+(?:mo|w|d|h|m))+)", text)
    if not m:
        return None
    unit = {"mo": 4 * 5 * 8 * 3600, "w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60}
    total = sum(int(n) * unit[u] for n, u in re.findall(r"(\d+)(mo|w|d|h|m)", m.group(2)))
    return -total if m.group(1) else total


def _text_color(color: str) -> str:
    m = re.fullmatch(r"#([0-9a-fA-F]{6})", color)
    if not m:
        return "#FFFFFF"
    r, g, b = (int(m.group(1)[i : i + 2], 16) for i in (0, 2, 4))
    return "#333333" if (0.299 * r + 0.587 * g + 0.114 * b) > 150 else "#FFFFFF"


def _fuzzy_match(text: str | None, query: str) -> bool:
    """GitLab's Gitlab::SQL::Pattern.fuzzy_arel_match for one column.

    The query is split into words (double-quoted phrases kept whole); words shorter than 3 characters are
    dropped; every remaining word must occur (case-insensitive substring) in the column. When no word is
    long enough, the whole query must equal the column (case-insensitive).
    """
    query = " ".join(query.split())
    if not query:
        return True
    haystack = (text or "").lower()
    terms = [m.group(1) if m.group(1) is not None else m.group(0) for m in re.finditer(r'"([^"]*)"|[^\s"]+', query)]
    terms = [t for t in terms if len(t) >= 3]
    if terms:
        return all(t.lower() in haystack for t in terms)
    return haystack == query.lower()


def _extract_quick_actions(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``text`` into (text without command lines, [(command, argument), ...])."""
    out: list[str] = []
    commands: list[tuple[str, str]] = []
    fence: str | None = None
    in_quote = False
    for line in text.split("\n"):
        bare = line.rstrip("\r")
        stripped = bare.strip()
        if fence:
            out.append(line)
            if stripped.startswith(fence):
                fence = None
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            out.append(line)
            continue
        if stripped.startswith(">>>"):
            in_quote = not in_quote
            out.append(line)
            continue
        if in_quote:
            out.append(line)
            continue
        m = _QA_LINE.match(bare)
        if m and m.group(1).lower() in _QUICK_ACTIONS:
            name, arg = m.group(1).lower(), (m.group(2) or "").strip()
            commands.append((name, arg))
            if name in ("shrug", "tableflip"):
                out.append(f"{arg} {_SUBSTITUTIONS[name]}".strip())
            continue
        out.append(line)
    return "\n".join(out).strip("\n"), commands


_SUBSTITUTIONS = {"shrug": "¯\\_(ツ)_/¯", "tableflip": "(╯°□°)╯︵ ┻━┻"}


def _flatten_form(raw: dict[str, list[str]]) -> dict[str, Any]:
    """parse_qs output -> params: ``key[]`` becomes ``key`` with all its values, others keep the last."""
    return {(k[:-2] if k.endswith("[]") else k): (list(v) if k.endswith("[]") else v[-1]) for k, v in raw.items()}


def _label_refs(arg: str) -> list[str]:
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in re.finditer(r'~"([^"]+)"|~([^\s~"]+)', arg)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid 40 ms delayed-ACK stalls
    server_version = "FakeGitLab/17"
    fake: FakeGitLab  # set on a subclass per server

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr logging
        return

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        bad_body = False
        if raw:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                if ctype == "application/x-www-form-urlencoded":
                    body = _flatten_form(parse_qs(raw.decode(), keep_blank_values=True))
                else:
                    body = json.loads(raw.decode())
            except (ValueError, UnicodeDecodeError):
                bad_body = True
        call = Call(method, split.path, query, body, dict(self.headers.items()))
        reply, drop = self.fake._dispatch(call, bad_body)
        call.status = None if drop else reply.status
        delay = self.fake._delay
        if delay:
            time.sleep(delay)  # the server is slow: the request was applied, the answer comes late
        if drop:
            self.close_connection = True
            return
        if isinstance(reply.body, bytes):
            data = reply.body
        elif isinstance(reply.body, str):
            data = reply.body.encode()
        elif reply.body is None and reply.status == 204:
            data = b""
        else:
            data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (its timeout is shorter than set_delay)
            self.close_connection = True


class FakeGitLab:
    """In-memory GitLab answering over HTTP. Use as a context manager or call start()/stop()."""

    def __init__(self, *, token: str = "glpat-test", username: str = "triage-bot", admin: bool = False):
        self.token = token
        self.admin = admin
        self.calls: list[Call] = []
        self.executed_quick_actions: list[ExecutedQuickAction] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._url: str | None = None
        self._down = False
        self._delay = 0.0
        self._fail_rules: list[_Rule] = []
        self._drop_rules: list[_Rule] = []
        self._clock: datetime | None = None
        self._last_ts = datetime(2000, 1, 1, tzinfo=UTC)
        self._ids: dict[str, int] = {}
        self._projects: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._issues_by_id: dict[int, tuple[int, int]] = {}
        self.server_errors: list[str] = []  # tracebacks of bugs in the fake itself (answered with 500)
        self.bot: dict[str, Any] = self.add_user(username, name="Triage Bot", id=1, bot=True)  # token's user
        self._bot_id = self.bot["id"]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeGitLab:
        if self._server:
            return self
        handler = type("BoundHandler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-gitlab", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if not server:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeGitLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for python-gitlab (``gitlab.Gitlab(fake.url, ...)``); the API lives under /api/v4."""
        if not self._url:
            raise RuntimeError("FakeGitLab is not started")
        return self._url

    def _base(self) -> str:
        return self._url or "http://gitlab.invalid"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ------------------------------------------------------------------ controls
    def fail(self, method: str, path_regex: str, *, status: int, retry_after: int | None = None, times: int = 1):
        """The next ``times`` matching requests get ``status`` without being applied.

        ``method`` is an HTTP verb or ``*``; ``path_regex`` is searched in the raw and the decoded path.
        429 answers carry ``Retry-After`` (``retry_after`` or 60) and ``RateLimit-*`` headers; other statuses
        carry ``Retry-After`` only when ``retry_after`` is given.
        """
        with self._lock:
            self._fail_rules.append(_Rule(method.upper(), re.compile(path_regex), times, status, retry_after))

    def set_down(self, down: bool = True) -> None:
        """While down, every request gets a 503 HTML page and nothing is applied."""
        self._down = down

    def set_delay(self, seconds: float) -> None:
        """Delay every answer (after applying the request) by ``seconds``."""
        self._delay = seconds

    def drop_response_after_commit(self, method: str, path_regex: str, times: int = 1) -> None:
        """Apply the next ``times`` matching requests, then close the connection without an answer."""
        with self._lock:
            self._drop_rules.append(_Rule(method.upper(), re.compile(path_regex), times))

    def set_time(self, when: datetime | None) -> None:
        """Freeze the fake's clock at ``when`` (None: wall clock). Each change still moves it by >= 1 ms."""
        with self._lock:
            self._clock = when.astimezone(UTC) if when else None
            if when is not None:
                self._last_ts = self._clock - timedelta(milliseconds=1)  # type: ignore[operator]

    def advance(self, **delta: float) -> datetime:
        """Move the frozen clock forward, e.g. ``advance(hours=2)``; freezes it at now first if needed."""
        with self._lock:
            base = self._clock or max(datetime.now(UTC), self._last_ts)
            self._clock = base + timedelta(**delta)
            return self._clock

    def now(self) -> datetime:
        with self._lock:
            return self._clock or max(datetime.now(UTC), self._last_ts)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def calls_matching(self, method: str, path_regex: str) -> list[Call]:
        rx = re.compile(path_regex)
        with self._lock:
            return [
                c
                for c in self.calls
                if method.upper() in ("*", c.method) and (rx.search(c.path) or rx.search(c.decoded_path))
            ]

    # ------------------------------------------------------------------ seeding
    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _tick(self) -> datetime:
        now = self._clock or datetime.now(UTC)
        now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        if now <= self._last_ts:
            now = self._last_ts + timedelta(milliseconds=1)
        self._last_ts = now
        if self._clock is not None:
            self._clock = now
        return now

    def add_project(self, path: str, *, id: int | None = None) -> dict[str, Any]:
        with self._lock:
            pid = id if id is not None else self._next_id("project") + 100
            self._ids["project"] = max(self._ids.get("project", 0), pid - 100)
            if pid in self._projects:
                raise ValueError(f"project id {pid} exists")
            self._projects[pid] = {
                "id": pid,
                "path_with_namespace": path.strip("/"),
                "created_at": self._tick(),
                "issues": {},
                "labels": [],
                "boards": [],
                "hooks": [],
                "next_iid": 1,
            }
            return self._render_project(self._projects[pid])

    def add_user(
        self,
        username: str,
        *,
        email: str | None = None,
        name: str | None = None,
        id: int | None = None,
        public_email: str | None = None,
        state: str = "active",
        bot: bool = False,
    ) -> dict[str, Any]:
        """Add a user. ``email`` is the private address (searchable by admins only), ``public_email`` the
        profile's public address (searchable by everyone, exact match)."""
        with self._lock:
            uid = id if id is not None else max([*self._users, 1]) + 1
            if uid in self._users:
                raise ValueError(f"user id {uid} exists")
            self._users[uid] = {
                "id": uid,
                "username": username,
                "name": name or username.replace(".", " ").replace("_", " ").title(),
                "email": email or f"{username}@users.noreply.example.com",
                "public_email": public_email,
                "state": state,
                "bot": bot,
                "created_at": self._tick(),
            }
            return self._render_user(self._users[uid], detail=True)

    def add_label(
        self,
        project: str | int,
        name: str,
        *,
        color: str = DEFAULT_LABEL_COLOR,
        description: str | None = None,
        group: bool = False,
    ) -> dict[str, Any]:
        """Seed a label; ``group=True`` makes it an inherited group label (``is_project_label`` false)."""
        with self._lock:
            p = self._project(project)
            label = self._new_label(p, name, color, description)
            label["is_project_label"] = not group
            return self._render_label(p, label)

    def add_issue(
        self,
        project: str | int,
        *,
        title: str,
        description: str = "",
        labels: list[str] | tuple[str, ...] = (),
        state: str = "opened",
        assignee_usernames: list[str] | tuple[str, ...] = (),
        due_date: date | str | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Seed an issue directly (no quick actions, no API call recorded)."""
        with self._lock:
            p = self._project(project)
            for name in labels:
                self._ensure_label(p, name)
            issue = self._new_issue(p, title=title, description=description, author_id=self.bot["id"])
            if created_at:
                issue["created_at"] = issue["updated_at"] = created_at.astimezone(UTC)
            issue["labels"] = list(dict.fromkeys(labels))
            issue["assignee_ids"] = [self._user_by_username(u)["id"] for u in assignee_usernames]
            issue["due_date"] = due_date.isoformat() if isinstance(due_date, date) else due_date
            if state == "closed":
                issue["state"] = "closed"
                issue["closed_at"] = issue["updated_at"]
                issue["closed_by_id"] = self.bot["id"]
            return self._render_issue(p, issue)

    def add_hook(
        self,
        project: str | int,
        url: str,
        *,
        issues_events: bool = True,
        note_events: bool = True,
        disabled: bool | str = False,
        token: str | None = None,
    ) -> dict[str, Any]:
        """Seed a project webhook. ``disabled``: True (permanently, alert_status "disabled") or
        "temporarily" (alert_status "temporarily_disabled", disabled_until in one hour)."""
        with self._lock:
            p = self._project(project)
            hook = self._new_hook(
                p, {"url": url, "issues_events": issues_events, "note_events": note_events, "token": token}
            )
            if disabled == "temporarily":
                hook["alert_status"] = "temporarily_disabled"
                hook["disabled_until"] = self.now() + timedelta(hours=1)
            elif disabled:
                hook["alert_status"] = "disabled"
            return self._render_hook(p, hook)

    # ------------------------------------------------------------------ inspection
    def project(self, path_or_id: str | int) -> dict[str, Any]:
        with self._lock:
            return self._render_project(self._project(path_or_id))

    def issues(self, project: str | int) -> list[dict[str, Any]]:
        with self._lock:
            p = self._project(project)
            return [self._render_issue(p, i) for i in sorted(p["issues"].values(), key=lambda i: i["iid"])]

    def issue(self, project: str | int, iid: int) -> dict[str, Any]:
        with self._lock:
            p = self._project(project)
            return self._render_issue(p, self._issue(p, iid))

    def notes(self, project: str | int, iid: int, *, include_system: bool = False) -> list[dict[str, Any]]:
        """Notes of an issue, oldest first; system notes only with ``include_system``."""
        with self._lock:
            p = self._project(project)
            issue = self._issue(p, iid)
            return [self._render_note(p, issue, n) for n in issue["notes"] if include_system or not n["system"]]

    def labels(self, project: str | int) -> list[dict[str, Any]]:
        with self._lock:
            p = self._project(project)
            return [self._render_label(p, lab) for lab in p["labels"]]

    def boards(self, project: str | int) -> list[dict[str, Any]]:
        with self._lock:
            p = self._project(project)
            return [self._render_board(p, b) for b in p["boards"]]

    def hooks(self, project: str | int) -> list[dict[str, Any]]:
        with self._lock:
            p = self._project(project)
            return [self._render_hook(p, h) for h in p["hooks"]]

    # ------------------------------------------------------------------ human actions -> webhook payloads
    def edit_issue_as_user(
        self,
        project: str | int,
        iid: int,
        *,
        labels: list[str] | None = None,
        assignee_usernames: list[str] | None = None,
        state: str | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """A person changes the issue on the board (full new label set / assignee set / "opened"|"closed").

        Applies the change (creating unknown labels) and returns the Issue Hook payload GitLab would send,
        shaped like ``webhooks/issue_event.json``, with ``changes`` for what moved.
        """
        with self._lock:
            p = self._project(project)
            issue = self._issue(p, iid)
            actor = self._human(by)
            state_event = None
            if state is not None:
                wanted = {"close": "closed", "reopen": "opened"}.get(state, state)
                if wanted not in ("opened", "closed"):
                    raise ValueError(f"state must be opened or closed, not {state!r}")
                if wanted != issue["state"]:
                    state_event = "close" if wanted == "closed" else "reopen"
            if labels is not None:
                for name in labels:
                    self._ensure_label(p, name)
            assignee_ids = (
                None if assignee_usernames is None else [self._user_by_username(u)["id"] for u in assignee_usernames]
            )
            changes = self._mutate(p, issue, actor, labels=labels, assignee_ids=assignee_ids, state_event=state_event)
            action = {"close": "close", "reopen": "reopen"}.get(state_event or "", "update")
            return self._issue_hook(p, issue, actor, action, changes)

    def note_hook_payload(self, project: str | int, iid: int, note_body: str, author_username: str) -> dict[str, Any]:
        """A person comments on the issue: stores the note (quick actions NOT interpreted) and returns the
        Note Hook payload GitLab would send, shaped like ``webhooks/note_event_issue.json``."""
        with self._lock:
            p = self._project(project)
            issue = self._issue(p, iid)
            author = self._user_by_username(author_username)
            note = self._new_note(issue, note_body, author["id"], system=False)
            return self._note_hook(p, issue, author, note)

    # ------------------------------------------------------------------ lookups (caller holds the lock)
    def _project(self, ref: str | int) -> dict[str, Any]:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            p = self._projects.get(int(ref))
            if p:
                return p
        else:
            want = str(ref).strip("/").lower()
            for p in self._projects.values():
                if p["path_with_namespace"].lower() == want:
                    return p
        raise _HTTPError(404, {"message": "404 Project Not Found"})

    def _issue(self, p: dict[str, Any], iid: int | str) -> dict[str, Any]:
        try:
            issue = p["issues"].get(int(iid))
        except ValueError:
            issue = None
        if issue is None:
            raise _HTTPError(404, {"message": "404 Not found"})
        return issue

    def _user_by_username(self, username: str) -> dict[str, Any]:
        for u in self._users.values():
            if u["username"].lower() == username.lstrip("@").lower():
                return u
        raise KeyError(f"no fake user {username!r}")

    def _human(self, username: str | None) -> dict[str, Any]:
        if username:
            return self._user_by_username(username)
        for u in self._users.values():
            if not u["bot"]:
                return u
        uid = self.add_user("board.user", name="Board User")["id"]
        return self._users[uid]

    def _find_label(self, p: dict[str, Any], name: str) -> dict[str, Any] | None:
        for lab in p["labels"]:
            if lab["name"] == name:
                return lab
        return None

    # ------------------------------------------------------------------ model changes
    def _new_label(self, p: dict[str, Any], name: str, color: str, description: str | None) -> dict[str, Any]:
        label = {
            "id": self._next_id("label"),
            "name": name,
            "color": color,
            "description": description,
            "priority": None,
            "is_project_label": True,
        }
        p["labels"].append(label)
        return label

    def _ensure_label(self, p: dict[str, Any], name: str) -> dict[str, Any]:
        return self._find_label(p, name) or self._new_label(p, name, DEFAULT_LABEL_COLOR, None)

    def _new_issue(self, p: dict[str, Any], *, title: str, description: str, author_id: int) -> dict[str, Any]:
        now = self._tick()
        issue = {
            "id": self._next_id("issue") + 1000,
            "iid": p["next_iid"],
            "project_id": p["id"],
            "title": title,
            "description": description,
            "state": "opened",
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "closed_by_id": None,
            "labels": [],
            "assignee_ids": [],
            "author_id": author_id,
            "due_date": None,
            "confidential": False,
            "discussion_locked": False,
            "time_estimate": 0,
            "total_time_spent": 0,
            "awards": [],
            "moved_to_id": None,
            "duplicated_to_id": None,
            "notes": [],
        }
        p["next_iid"] += 1
        p["issues"][issue["iid"]] = issue
        self._issues_by_id[issue["id"]] = (p["id"], issue["iid"])
        return issue

    def _new_note(self, issue: dict[str, Any], body: str, author_id: int, *, system: bool) -> dict[str, Any]:
        now = self._tick()
        note = {
            "id": self._next_id("note") + 300,
            "body": body,
            "author_id": author_id,
            "created_at": now,
            "updated_at": now,
            "system": system,
            "internal": False,
        }
        issue["notes"].append(note)
        return note

    def _new_hook(self, p: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        hook = {
            "id": self._next_id("hook"),
            "url": params["url"],
            "name": params.get("name"),
            "description": params.get("description"),
            "created_at": self._tick(),
            "alert_status": "executable",
            "disabled_until": None,
            "token": params.get("token"),
        }
        for key in (
            "push_events",
            "issues_events",
            "confidential_issues_events",
            "merge_requests_events",
            "tag_push_events",
            "note_events",
            "confidential_note_events",
            "job_events",
            "pipeline_events",
            "wiki_page_events",
            "deployment_events",
            "releases_events",
            "repository_update_events",
        ):
            default = key == "push_events"  # GitLab's column defaults: push on, the rest off
            hook[key] = _bool(params[key]) if params.get(key) is not None else default
        ssl = params.get("enable_ssl_verification")
        hook["enable_ssl_verification"] = True if ssl is None else _bool(ssl)
        hook["push_events_branch_filter"] = params.get("push_events_branch_filter")
        p["hooks"].append(hook)
        return hook

    def _mutate(
        self,
        p: dict[str, Any],
        issue: dict[str, Any],
        actor: dict[str, Any],
        *,
        title: str | None = None,
        description: str | None = None,
        labels: list[str] | None = None,
        add_labels: list[str] = (),  # type: ignore[assignment]
        remove_labels: list[str] = (),  # type: ignore[assignment]
        assignee_ids: list[int] | None = None,
        state_event: str | None = None,
        due_date: Any = _UNSET,
        confidential: bool | None = None,
        discussion_locked: bool | None = None,
    ) -> dict[str, Any]:
        """Apply a change like Issues::UpdateService: system notes, updated_at, and the hook ``changes``."""
        before = copy.deepcopy({k: v for k, v in issue.items() if k != "notes"})
        if title is not None:
            issue["title"] = title
        if description is not None:
            issue["description"] = description
        new_labels = list(issue["labels"]) if labels is None else list(dict.fromkeys(labels))
        for name in add_labels:
            if name not in new_labels:
                new_labels.append(name)
        new_labels = [n for n in new_labels if n not in set(remove_labels)]
        issue["labels"] = new_labels
        if assignee_ids is not None:
            issue["assignee_ids"] = [i for i in dict.fromkeys(assignee_ids) if i in self._users]
        if due_date is not _UNSET:
            issue["due_date"] = due_date
        if confidential is not None:
            issue["confidential"] = confidential
        if discussion_locked is not None:
            issue["discussion_locked"] = discussion_locked
        if state_event == "close" and issue["state"] == "opened":
            issue["state"] = "closed"
        elif state_event == "reopen" and issue["state"] == "closed":
            issue["state"] = "opened"

        changed = {k for k, v in before.items() if issue[k] != v}
        if not changed:
            return {}
        now = self._tick()
        if "state" in changed:
            issue["closed_at"] = now if issue["state"] == "closed" else None
            issue["closed_by_id"] = actor["id"] if issue["state"] == "closed" else None
        issue["updated_at"] = now

        lab_id = {lab["name"]: lab["id"] for lab in p["labels"]}
        added = [n for n in issue["labels"] if n not in before["labels"]]
        removed = [n for n in before["labels"] if n not in issue["labels"]]
        system: list[str] = []
        if added or removed:
            parts = []
            if added:
                parts.append("added " + " ".join(f"~{lab_id.get(n, 0)}" for n in added))
            if removed:
                parts.append("removed " + " ".join(f"~{lab_id.get(n, 0)}" for n in removed))
            system.append(" and ".join(parts) + (" labels" if len(added) + len(removed) > 1 else " label"))
        if "assignee_ids" in changed:
            names = lambda ids: ", ".join(f"@{self._users[i]['username']}" for i in ids)  # noqa: E731
            new_ids = [i for i in issue["assignee_ids"] if i not in before["assignee_ids"]]
            gone = [i for i in before["assignee_ids"] if i not in issue["assignee_ids"]]
            bits = ([f"assigned to {names(new_ids)}"] if new_ids else []) + (
                [f"unassigned {names(gone)}"] if gone else []
            )
            system.append(" and ".join(bits))
        if "title" in changed:
            system.append(f"changed title from **{before['title']}** to **{issue['title']}**")
        if "description" in changed:
            system.append("changed the description")
        if "due_date" in changed:
            system.append(f"changed due date to {issue['due_date']}" if issue["due_date"] else "removed due date")
        if "confidential" in changed:
            system.append("made the issue confidential" if issue["confidential"] else "made the issue visible")
        if "discussion_locked" in changed:
            system.append("locked the discussion" if issue["discussion_locked"] else "unlocked the discussion")
        if "state" in changed:
            system.append("closed" if issue["state"] == "closed" else "reopened")
        for text in system:
            self._new_note(issue, text, actor["id"], system=True)

        changes: dict[str, Any] = {}
        if "title" in changed:
            changes["title"] = {"previous": before["title"], "current": issue["title"]}
        if "description" in changed:
            changes["description"] = {"previous": before["description"], "current": issue["description"]}
        if "labels" in changed:
            changes["labels"] = {
                "previous": [self._hook_label(p, n) for n in before["labels"]],
                "current": [self._hook_label(p, n) for n in issue["labels"]],
            }
        if "assignee_ids" in changed:
            changes["assignees"] = {
                "previous": [self._hook_user(self._users[i]) for i in before["assignee_ids"] if i in self._users],
                "current": [self._hook_user(self._users[i]) for i in issue["assignee_ids"]],
            }
        if "due_date" in changed:
            changes["due_date"] = {"previous": before["due_date"], "current": issue["due_date"]}
        if "confidential" in changed:
            changes["confidential"] = {"previous": before["confidential"], "current": issue["confidential"]}
        if "discussion_locked" in changed:
            changes["discussion_locked"] = {
                "previous": before["discussion_locked"],
                "current": issue["discussion_locked"],
            }
        if "state" in changed:
            changes["state_id"] = {
                "previous": 1 if before["state"] == "opened" else 2,
                "current": 1 if issue["state"] == "opened" else 2,
            }
            changes["closed_at"] = {
                "previous": _fmt_hook(before["closed_at"]),
                "current": _fmt_hook(issue["closed_at"]),
            }
        changes["updated_at"] = {
            "previous": _fmt_hook(before["updated_at"]),
            "current": _fmt_hook(issue["updated_at"]),
        }
        changes["updated_by_id"] = {"previous": None, "current": actor["id"]}
        return changes

    # ------------------------------------------------------------------ quick actions
    def _interpret(
        self,
        p: dict[str, Any],
        issue: dict[str, Any],
        commands: list[tuple[str, str]],
        source: str,
        actor: dict[str, Any],
    ) -> dict[str, Any]:
        """Execute quick actions on ``issue``; returns GitLab-like ``commands_changes``."""
        result: dict[str, Any] = {}
        for name, arg in commands:
            self.executed_quick_actions.append(
                ExecutedQuickAction(p["path_with_namespace"], issue["iid"], name, arg, source)
            )
            usernames = [u.lstrip("@") for u in arg.split() if u.startswith("@") or u == "me"]
            user_ids = []
            for u in usernames:
                with contextlib.suppress(KeyError):
                    user_ids.append(actor["id"] if u == "me" else self._user_by_username(u)["id"])
            existing = [n for n in _label_refs(arg) if self._find_label(p, n)]
            if name == "close":
                self._mutate(p, issue, actor, state_event="close")
                result["state_event"] = "close"
            elif name == "reopen":
                self._mutate(p, issue, actor, state_event="reopen")
                result["state_event"] = "reopen"
            elif name == "title" and arg:
                self._mutate(p, issue, actor, title=arg.strip('"'))
                result["title"] = arg
            elif name == "assign":
                self._mutate(p, issue, actor, assignee_ids=issue["assignee_ids"] + user_ids)
                result["assignee_ids"] = issue["assignee_ids"]
            elif name == "reassign":
                self._mutate(p, issue, actor, assignee_ids=user_ids)
                result["assignee_ids"] = user_ids
            elif name == "unassign":
                keep = [i for i in issue["assignee_ids"] if i not in user_ids] if user_ids else []
                self._mutate(p, issue, actor, assignee_ids=keep)
                result["assignee_ids"] = keep
            elif name in ("label", "labels"):
                self._mutate(p, issue, actor, add_labels=existing)
                result["add_label_ids"] = [self._find_label(p, n)["id"] for n in existing]  # type: ignore[index]
            elif name == "relabel":
                self._mutate(p, issue, actor, labels=existing)
                result["label_ids"] = [self._find_label(p, n)["id"] for n in existing]  # type: ignore[index]
            elif name in ("unlabel", "remove_label"):
                refs = _label_refs(arg)
                self._mutate(p, issue, actor, remove_labels=refs if refs else list(issue["labels"]))
                result["remove_label_ids"] = refs
            elif name == "board_move":
                self._mutate(p, issue, actor, add_labels=existing[:1])
            elif name == "due":
                due = self._parse_due(arg)
                if due:
                    self._mutate(p, issue, actor, due_date=due)
                    result["due_date"] = due
            elif name == "remove_due_date":
                self._mutate(p, issue, actor, due_date=None)
                result["due_date"] = None
            elif name == "confidential":
                self._mutate(p, issue, actor, confidential=True)
                result["confidential"] = True
            elif name in ("lock", "unlock"):
                self._mutate(p, issue, actor, discussion_locked=name == "lock")
                result["discussion_locked"] = name == "lock"
            elif name in ("spend", "spent", "spend_time"):
                seconds = _duration_seconds(arg)
                if seconds:
                    issue["total_time_spent"] = max(0, issue["total_time_spent"] + seconds)
                    issue["updated_at"] = self._tick()
                    result["spend_time"] = {"duration": seconds}
            elif name in ("estimate", "estimate_time"):
                seconds = _duration_seconds(arg)
                if seconds is not None:
                    issue["time_estimate"] = max(0, seconds)
                    issue["updated_at"] = self._tick()
                    result["time_estimate"] = seconds
            elif name in ("remove_estimate", "remove_time_estimate"):
                issue["time_estimate"] = 0
            elif name == "remove_time_spent":
                issue["total_time_spent"] = 0
            elif name in ("award", "react"):
                emoji = arg.strip(":")
                if emoji:
                    issue["awards"].append({"name": emoji, "user_id": actor["id"]})
                    result["emoji_award"] = emoji
            elif name == "copy_metadata":
                m = re.search(r"#(\d+)", arg)
                src = p["issues"].get(int(m.group(1))) if m else None
                if src:
                    self._mutate(p, issue, actor, add_labels=list(src["labels"]))
                    result["add_label_ids"] = [self._find_label(p, n)["id"] for n in src["labels"]]  # type: ignore[index]
            elif name in ("move", "clone"):
                target_path = arg.split()[0] if arg else ""
                try:
                    target = self._project(target_path)
                except _HTTPError:
                    target = None
                if target:
                    new = self._new_issue(
                        target,
                        title=issue["title"],
                        description=issue["description"],
                        author_id=issue["author_id"],
                    )
                    for n in issue["labels"]:
                        self._ensure_label(target, n)
                    new["labels"] = list(issue["labels"])
                    new["assignee_ids"] = list(issue["assignee_ids"])
                    new["due_date"] = issue["due_date"]
                    if name == "move":
                        issue["moved_to_id"] = new["id"]
                        self._mutate(p, issue, actor, state_event="close")
                    result[f"target_project_for_{name}"] = target["path_with_namespace"]
            elif name == "duplicate":
                m = re.search(r"#(\d+)", arg)
                dup = p["issues"].get(int(m.group(1))) if m else None
                if dup:
                    issue["duplicated_to_id"] = dup["id"]
                    self._mutate(p, issue, actor, state_event="close")
            # every other known command is interpreted and stripped with no modelled effect
        return result

    def _parse_due(self, arg: str) -> str | None:
        arg = arg.strip().strip('"').lower()
        today = self.now().date()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", arg):
            try:
                return date.fromisoformat(arg).isoformat()
            except ValueError:
                return None
        if arg == "today":
            return today.isoformat()
        if arg == "tomorrow":
            return (today + timedelta(days=1)).isoformat()
        m = re.fullmatch(r"in (\d+) (day|days|week|weeks)", arg)
        if m:
            n = int(m.group(1)) * (7 if m.group(2).startswith("week") else 1)
            return (today + timedelta(days=n)).isoformat()
        return None

    # ------------------------------------------------------------------ rendering
    def _user_basic(self, u: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": u["id"],
            "username": u["username"],
            "name": u["name"],
            "state": u["state"],
            "locked": u["state"] == "blocked",
            "avatar_url": None,
            "web_url": f"{self._base()}/{u['username']}",
        }

    def _render_user(self, u: dict[str, Any], *, detail: bool, me: bool = False) -> dict[str, Any]:
        out = self._user_basic(u)
        if detail or self.admin or me:
            out.update(
                {
                    "created_at": _fmt(u["created_at"]),
                    "bio": "",
                    "bot": u["bot"],
                    "location": None,
                    "public_email": u["public_email"],
                    "organization": "",
                    "job_title": "",
                }
            )
        if self.admin or me:
            out["email"] = u["email"]
        if me:
            out["is_admin"] = self.admin
        return out

    def _hook_user(self, u: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": u["id"],
            "name": u["name"],
            "username": u["username"],
            "avatar_url": None,
            "email": u["public_email"] or "[REDACTED]",
        }

    def _render_project(self, p: dict[str, Any]) -> dict[str, Any]:
        path = p["path_with_namespace"]
        ns, _, name = path.rpartition("/")
        web = f"{self._base()}/{path}"
        open_count = sum(1 for i in p["issues"].values() if i["state"] == "opened")
        return {
            "id": p["id"],
            "description": None,
            "name": name,
            "name_with_namespace": " / ".join(path.split("/")),
            "path": name,
            "path_with_namespace": path,
            "created_at": _fmt(p["created_at"]),
            "default_branch": "main",
            "visibility": "private",
            "web_url": web,
            "http_url_to_repo": f"{web}.git",
            "namespace": {
                "id": 9,
                "name": ns.rsplit("/", 1)[-1],
                "path": ns.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": ns,
            },
            "issues_enabled": True,
            "open_issues_count": open_count,
            "archived": False,
            "_links": {
                "self": f"{self._base()}/api/v4/projects/{p['id']}",
                "issues": f"{self._base()}/api/v4/projects/{p['id']}/issues",
                "labels": f"{self._base()}/api/v4/projects/{p['id']}/labels",
            },
        }

    def _render_issue(self, p: dict[str, Any], i: dict[str, Any]) -> dict[str, Any]:
        assignees = [self._user_basic(self._users[a]) for a in i["assignee_ids"] if a in self._users]
        path = p["path_with_namespace"]
        api = f"{self._base()}/api/v4/projects/{p['id']}/issues/{i['iid']}"
        closed_by = self._users.get(i["closed_by_id"]) if i["closed_by_id"] else None
        return {
            "id": i["id"],
            "iid": i["iid"],
            "project_id": p["id"],
            "title": i["title"],
            "description": i["description"],
            "state": i["state"],
            "created_at": _fmt(i["created_at"]),
            "updated_at": _fmt(i["updated_at"]),
            "closed_at": _fmt(i["closed_at"]),
            "closed_by": self._user_basic(closed_by) if closed_by else None,
            "labels": sorted(i["labels"], key=str.lower),
            "milestone": None,
            "assignees": assignees,
            "assignee": assignees[0] if assignees else None,
            "author": self._user_basic(self._users[i["author_id"]]),
            "type": "ISSUE",
            "user_notes_count": sum(1 for n in i["notes"] if not n["system"]),
            "merge_requests_count": 0,
            "upvotes": sum(1 for a in i["awards"] if a["name"] == "thumbsup"),
            "downvotes": sum(1 for a in i["awards"] if a["name"] == "thumbsdown"),
            "due_date": i["due_date"],
            "confidential": i["confidential"],
            "discussion_locked": i["discussion_locked"],
            "issue_type": "issue",
            "severity": "UNKNOWN",
            "web_url": f"{self._base()}/{path}/-/issues/{i['iid']}",
            "references": {"short": f"#{i['iid']}", "relative": f"#{i['iid']}", "full": f"{path}#{i['iid']}"},
            "time_stats": {
                "time_estimate": i["time_estimate"],
                "total_time_spent": i["total_time_spent"],
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "moved_to_id": i["moved_to_id"],
            "duplicated_to_id": i["duplicated_to_id"],
            "subscribed": True,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "_links": {
                "self": api,
                "notes": f"{api}/notes",
                "award_emoji": f"{api}/award_emoji",
                "project": f"{self._base()}/api/v4/projects/{p['id']}",
                "closed_as_duplicate_of": None,
            },
        }

    def _render_note(self, p: dict[str, Any], issue: dict[str, Any], n: dict[str, Any]) -> dict[str, Any]:
        author = self._users[n["author_id"]]
        return {
            "id": n["id"],
            "type": None,
            "body": n["body"],
            "author": self._user_basic(author),
            "created_at": _fmt(n["created_at"]),
            "updated_at": _fmt(n["updated_at"]),
            "system": n["system"],
            "noteable_id": issue["id"],
            "noteable_type": "Issue",
            "project_id": p["id"],
            "noteable_iid": issue["iid"],
            "resolvable": False,
            "confidential": n["internal"],
            "internal": n["internal"],
            "imported": False,
            "imported_from": "none",
        }

    def _label_counts(self, p: dict[str, Any], name: str) -> tuple[int, int]:
        issues = [i for i in p["issues"].values() if name in i["labels"]]
        return (
            sum(1 for i in issues if i["state"] == "opened"),
            sum(1 for i in issues if i["state"] == "closed"),
        )

    def _render_label(self, p: dict[str, Any], lab: dict[str, Any]) -> dict[str, Any]:
        opened, closed = self._label_counts(p, lab["name"])
        return {
            "id": lab["id"],
            "name": lab["name"],
            "color": lab["color"],
            "text_color": _text_color(lab["color"]),
            "description": lab["description"],
            "description_html": lab["description"],
            "open_issues_count": opened,
            "closed_issues_count": closed,
            "open_merge_requests_count": 0,
            "subscribed": False,
            "priority": lab["priority"],
            "is_project_label": lab["is_project_label"],
        }

    def _hook_label(self, p: dict[str, Any], name: str) -> dict[str, Any]:
        lab = self._find_label(p, name) or {
            "id": 0,
            "name": name,
            "color": DEFAULT_LABEL_COLOR,
            "description": None,
            "is_project_label": True,
        }
        return {
            "id": lab["id"],
            "title": lab["name"],
            "color": lab["color"],
            "project_id": p["id"] if lab["is_project_label"] else None,
            "created_at": _fmt(p["created_at"]),
            "updated_at": _fmt(p["created_at"]),
            "template": False,
            "description": lab["description"],
            "type": "ProjectLabel" if lab["is_project_label"] else "GroupLabel",
            "group_id": None if lab["is_project_label"] else 9,
        }

    def _render_list(self, p: dict[str, Any], lst: dict[str, Any]) -> dict[str, Any]:
        lab = next((x for x in p["labels"] if x["id"] == lst["label_id"]), None)
        return {
            "id": lst["id"],
            "label": None
            if lab is None
            else {
                "id": lab["id"],
                "name": lab["name"],
                "color": lab["color"],
                "description": lab["description"],
                "text_color": _text_color(lab["color"]),
            },
            "position": lst["position"],
            "max_issue_count": 0,
            "max_issue_weight": 0,
            "limit_metric": None,
        }

    def _render_board(self, p: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        proj = self._render_project(p)
        return {
            "id": b["id"],
            "name": b["name"],
            "hide_backlog_list": False,
            "hide_closed_list": False,
            "project": {
                k: proj[k]
                for k in (
                    "id",
                    "name",
                    "name_with_namespace",
                    "path",
                    "path_with_namespace",
                    "http_url_to_repo",
                    "web_url",
                )
            },
            "lists": [self._render_list(p, lst) for lst in b["lists"]],
            "group": None,
            "milestone": None,
            "assignee": None,
            "labels": [],
            "weight": None,
        }

    def _render_hook(self, p: dict[str, Any], h: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in h.items() if k != "token"}
        out["project_id"] = p["id"]
        out["created_at"] = _fmt(h["created_at"])
        out["disabled_until"] = _fmt(h["disabled_until"])
        out["url_variables"] = []
        out["custom_headers"] = []
        return out

    def _hook_project(self, p: dict[str, Any]) -> dict[str, Any]:
        proj = self._render_project(p)
        web = proj["web_url"]
        return {
            "id": p["id"],
            "name": proj["name"],
            "description": None,
            "web_url": web,
            "avatar_url": None,
            "git_ssh_url": f"git@127.0.0.1:{p['path_with_namespace']}.git",
            "git_http_url": f"{web}.git",
            "namespace": proj["namespace"]["name"],
            "visibility_level": 0,
            "path_with_namespace": p["path_with_namespace"],
            "default_branch": "main",
            "ci_config_path": None,
            "homepage": web,
            "url": f"{web}.git",
            "ssh_url": f"git@127.0.0.1:{p['path_with_namespace']}.git",
            "http_url": f"{web}.git",
        }

    def _issue_hook(
        self,
        p: dict[str, Any],
        issue: dict[str, Any],
        actor: dict[str, Any],
        action: str,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        labels = [self._hook_label(p, n) for n in issue["labels"]]
        assignees = [self._hook_user(self._users[i]) for i in issue["assignee_ids"]]
        payload: dict[str, Any] = {
            "object_kind": "issue",
            "event_type": "confidential_issue" if issue["confidential"] else "issue",
            "user": self._hook_user(actor),
            "project": self._hook_project(p),
            "object_attributes": {
                "id": issue["id"],
                "title": issue["title"],
                "assignee_ids": list(issue["assignee_ids"]),
                "assignee_id": issue["assignee_ids"][0] if issue["assignee_ids"] else None,
                "author_id": issue["author_id"],
                "project_id": p["id"],
                "created_at": _fmt(issue["created_at"]),
                "updated_at": _fmt(issue["updated_at"]),
                "updated_by_id": actor["id"],
                "last_edited_at": None,
                "last_edited_by_id": None,
                "relative_position": 0,
                "description": issue["description"],
                "milestone_id": None,
                "state_id": 1 if issue["state"] == "opened" else 2,
                "confidential": issue["confidential"],
                "discussion_locked": issue["discussion_locked"],
                "due_date": issue["due_date"],
                "moved_to_id": issue["moved_to_id"],
                "duplicated_to_id": issue["duplicated_to_id"],
                "time_estimate": issue["time_estimate"],
                "total_time_spent": issue["total_time_spent"],
                "time_change": 0,
                "human_total_time_spent": None,
                "human_time_estimate": None,
                "human_time_change": None,
                "weight": None,
                "health_status": None,
                "type": "Issue",
                "iid": issue["iid"],
                "url": f"{self._base()}/{p['path_with_namespace']}/-/issues/{issue['iid']}",
                "state": issue["state"],
                "action": action,
                "severity": "unknown",
                "closed_at": _fmt(issue["closed_at"]),
                "labels": labels,
            },
            "repository": {
                "name": p["path_with_namespace"].rsplit("/", 1)[-1],
                "url": f"git@127.0.0.1:{p['path_with_namespace']}.git",
                "description": None,
                "homepage": f"{self._base()}/{p['path_with_namespace']}",
            },
            "assignees": assignees,
            "labels": labels,
            "changes": changes,
        }
        if assignees:
            payload["assignee"] = assignees[0]
        return payload

    def _note_hook(
        self, p: dict[str, Any], issue: dict[str, Any], author: dict[str, Any], note: dict[str, Any]
    ) -> dict[str, Any]:
        url = f"{self._base()}/{p['path_with_namespace']}/-/issues/{issue['iid']}#note_{note['id']}"
        return {
            "object_kind": "note",
            "event_type": "confidential_note" if issue["confidential"] else "note",
            "user": self._hook_user(author),
            "project_id": p["id"],
            "project": self._hook_project(p),
            "repository": {
                "name": p["path_with_namespace"].rsplit("/", 1)[-1],
                "url": f"git@127.0.0.1:{p['path_with_namespace']}.git",
                "description": "",
                "homepage": f"{self._base()}/{p['path_with_namespace']}",
            },
            "object_attributes": {
                "id": note["id"],
                "note": note["body"],
                "noteable_type": "Issue",
                "author_id": author["id"],
                "created_at": _fmt_hook(note["created_at"]),
                "updated_at": _fmt_hook(note["updated_at"]),
                "project_id": p["id"],
                "attachment": None,
                "line_code": None,
                "commit_id": "",
                "noteable_id": issue["id"],
                "system": note["system"],
                "st_diff": None,
                "internal": note["internal"],
                "action": "create",
                "url": url,
            },
            "issue": {
                "id": issue["id"],
                "title": issue["title"],
                "assignee_ids": list(issue["assignee_ids"]),
                "assignee_id": issue["assignee_ids"][0] if issue["assignee_ids"] else None,
                "author_id": issue["author_id"],
                "project_id": p["id"],
                "created_at": _fmt_hook(issue["created_at"]),
                "updated_at": _fmt_hook(issue["updated_at"]),
                "position": 0,
                "branch_name": None,
                "description": issue["description"],
                "milestone_id": None,
                "state": issue["state"],
                "iid": issue["iid"],
                "due_date": issue["due_date"],
                "labels": [self._hook_label(p, n) for n in issue["labels"]],
            },
        }

    # ------------------------------------------------------------------ HTTP dispatch
    def _dispatch(self, call: Call, bad_body: bool) -> tuple[_Reply, bool]:
        with self._lock:
            self.calls.append(call)
            if self._down:
                return _Reply(503, _DOWN_PAGE, content_type="text/html; charset=utf-8"), False
            for rule in self._fail_rules:
                if rule.matches(call):
                    rule.remaining -= 1
                    return self._failure(rule), False
            if not self._authenticated(call):
                return _Reply(401, {"message": "401 Unauthorized"}), False
            if bad_body:
                return _Reply(400, {"error": "The provided content-type or body is invalid"}), False
            try:
                reply = self._route(call)
            except _HTTPError as e:
                reply = _Reply(e.status, e.body)
            except Exception:  # a bug in the fake: answer like GitLab's 500 and keep the traceback
                self.server_errors.append(traceback.format_exc())
                reply = _Reply(500, {"message": "500 Internal Server Error"})
            drop = False
            for rule in self._drop_rules:
                if rule.matches(call):
                    rule.remaining -= 1
                    drop = True
                    break
            return reply, drop

    def _failure(self, rule: _Rule) -> _Reply:
        status = rule.status
        headers: dict[str, str] = {}
        if status == 429:
            wait = rule.retry_after if rule.retry_after is not None else 60
            reset = int(time.time()) + wait
            headers = {
                "Retry-After": str(wait),
                "RateLimit-Name": "throttle_authenticated_api",
                "RateLimit-Limit": "2000",
                "RateLimit-Observed": "2001",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "RateLimit-ResetTime": format_datetime(datetime.fromtimestamp(reset, UTC), usegmt=True),
            }
            return _Reply(429, "Retry later\n", headers, content_type="text/plain")
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        return _Reply(status, {"message": f"{status} {reason}"}, headers)

    def _authenticated(self, call: Call) -> bool:
        headers = {k.lower(): v for k, v in call.headers.items()}
        given = headers.get("private-token")
        if given is None and headers.get("authorization", "").startswith("Bearer "):
            given = headers["authorization"][len("Bearer ") :]
        if given is None:
            given = (call.query.get("private_token") or [None])[-1]
        return given == self.token

    def _params(self, call: Call) -> dict[str, Any]:
        """Grape-style params: the query string merged with the body; ``key[]`` query/form keys are arrays."""
        params = _flatten_form(call.query)
        if isinstance(call.body, dict):
            params.update(call.body)
        return params

    def _route(self, call: Call) -> _Reply:
        if not call.path.startswith("/api/v4/"):
            raise _HTTPError(404, {"error": "404 Not Found"})
        seg = [unquote(s) for s in call.path[len("/api/v4/") :].strip("/").split("/")]
        req = _Req(call.method, call.path, call.query, self._params(call))
        m = call.method
        n = len(seg)
        if seg == ["user"] and m == "GET":
            return _Reply(200, self._render_user(self._users[self._bot_id], detail=True, me=True))
        if seg[0] == "users":
            if n == 1 and m == "GET":
                return self._list_users(req)
            if n == 2 and m == "GET":
                u = self._users.get(int(seg[1])) if seg[1].isdigit() else None
                if not u:
                    raise _HTTPError(404, {"message": "404 User Not Found"})
                return _Reply(200, self._render_user(u, detail=True))
        if seg[0] == "projects" and n >= 2:
            p = self._project(seg[1])
            rest, k = seg[2:], n - 2
            if k == 0:
                return self._only(m, "GET") or _Reply(200, self._render_project(p))
            if rest[0] == "issues":
                if k == 1:
                    return (
                        self._list_issues(req, p) if m == "GET" else self._only(m, "POST") or self._create_issue(req, p)
                    )
                issue = self._issue(p, rest[1])
                if k == 2:
                    if m == "GET":
                        return _Reply(200, self._render_issue(p, issue))
                    return self._only(m, "PUT") or self._update_issue(req, p, issue)
                if rest[2] == "notes":
                    if k == 3:
                        return (
                            self._list_notes(req, p, issue)
                            if m == "GET"
                            else (self._only(m, "POST") or self._create_note(req, p, issue))
                        )
                    if k == 4 and m == "GET":
                        note = next((x for x in issue["notes"] if str(x["id"]) == rest[3]), None)
                        if not note:
                            raise _HTTPError(404, {"message": "404 Note Not Found"})
                        return _Reply(200, self._render_note(p, issue, note))
            if rest[0] == "labels":
                if k == 1:
                    return (
                        self._list_labels(req, p) if m == "GET" else self._only(m, "POST") or self._create_label(req, p)
                    )
                if k == 2 and m == "GET":
                    key = rest[1]
                    lab = next((x for x in p["labels"] if x["name"] == key or str(x["id"]) == key), None)
                    if not lab:
                        raise _HTTPError(404, {"message": "404 Label Not Found"})
                    return _Reply(200, self._render_label(p, lab))
            if rest[0] == "boards":
                if k == 1:
                    if m == "GET":
                        return self._page(req, [self._render_board(p, b) for b in p["boards"]])
                    return self._only(m, "POST") or self._create_board(req, p)
                board = next((b for b in p["boards"] if str(b["id"]) == rest[1]), None)
                if not board:
                    raise _HTTPError(404, {"message": "404 Board Not Found"})
                if k == 2 and m == "GET":
                    return _Reply(200, self._render_board(p, board))
                if k == 3 and rest[2] == "lists":
                    if m == "GET":
                        return self._page(req, [self._render_list(p, lst) for lst in board["lists"]])
                    return self._only(m, "POST") or self._create_list(req, p, board)
            if rest[0] == "hooks":
                if k == 1:
                    if m == "GET":
                        return self._page(req, [self._render_hook(p, h) for h in p["hooks"]])
                    if m == "POST":
                        if not req.params.get("url"):
                            raise _HTTPError(400, {"error": "url is missing"})
                        return _Reply(201, self._render_hook(p, self._new_hook(p, req.params)))
                if k == 2 and m == "GET":
                    hook = next((h for h in p["hooks"] if str(h["id"]) == rest[1]), None)
                    if not hook:
                        raise _HTTPError(404, {"message": "404 Not found"})
                    return _Reply(200, self._render_hook(p, hook))
        raise _HTTPError(404, {"error": "404 Not Found"})

    @staticmethod
    def _only(method: str, allowed: str) -> _Reply | None:
        if method != allowed:
            raise _HTTPError(405, {"error": "405 Not Allowed"})
        return None

    def _page(self, req: _Req, items: list[Any]) -> _Reply:
        def number(key: str, default: int) -> int:
            raw = req.params.get(key)
            if raw in (None, ""):
                return default
            try:
                return int(raw)
            except (TypeError, ValueError):
                raise _HTTPError(400, {"error": f"{key} is invalid"}) from None

        page = max(number("page", 1), 1)
        per_page = number("per_page", 20)
        per_page = 20 if per_page < 1 else min(per_page, 100)
        total = len(items)
        pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(to: int) -> str:
            pairs = [
                (k, v) for k, vs in req.query.items() if k not in ("page", "per_page", "private_token") for v in vs
            ]
            pairs += [("page", str(to)), ("per_page", str(per_page))]
            return f"{self._base()}{req.path}?{urlencode(pairs)}"

        links = []
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(pages)}>; rel="last"')
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "Link": ", ".join(links),
        }
        return _Reply(200, chunk, headers)

    # ------------------------------------------------------------------ endpoint handlers
    def _list_users(self, req: _Req) -> _Reply:
        users = list(self._users.values())
        if req.params.get("username"):
            want = str(req.params["username"]).lower()
            users = [u for u in users if u["username"].lower() == want]
        if req.params.get("search"):
            q = str(req.params["search"]).strip().lower()

            def hit(u: dict[str, Any]) -> bool:
                if q in u["username"].lower() or q in u["name"].lower():
                    return True
                if u["public_email"] and u["public_email"].lower() == q:
                    return True
                return bool(self.admin and u["email"].lower() == q)

            users = [u for u in users if hit(u)]
        if _bool(req.params.get("active", False)):
            users = [u for u in users if u["state"] == "active"]
        if _bool(req.params.get("blocked", False)):
            users = [u for u in users if u["state"] == "blocked"]
        if _bool(req.params.get("humans", False)):
            users = [u for u in users if not u["bot"]]
        users.sort(key=lambda u: -u["id"])  # GitLab lists users newest first (id desc)
        return self._page(req, [self._render_user(u, detail=False) for u in users])

    def _assignees_from(self, params: dict[str, Any]) -> list[int] | None:
        if "assignee_ids" in params:
            return [i for i in _int_list(params["assignee_ids"]) if i != 0]
        if "assignee_id" in params:
            return [i for i in _int_list(params["assignee_id"]) if i != 0]
        return None

    def _due_from(self, params: dict[str, Any]) -> Any:
        if "due_date" not in params:
            return _UNSET
        raw = params["due_date"]
        if raw in (None, ""):
            return None
        if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise _HTTPError(400, {"error": "due_date is invalid"})
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            raise _HTTPError(400, {"error": "due_date is invalid"}) from None

    def _check_text(self, params: dict[str, Any]) -> None:
        if "title" in params and (params["title"] is None or not str(params["title"]).strip()):
            raise _HTTPError(400, {"message": {"title": ["can't be blank"]}})
        if "title" in params and len(str(params["title"])) > 255:
            raise _HTTPError(400, {"message": {"title": ["is too long (maximum is 255 characters)"]}})
        if len(str(params.get("description") or "")) > MAX_DESCRIPTION:
            raise _HTTPError(
                400, {"message": {"description": [f"is too long (maximum is {MAX_DESCRIPTION} characters)"]}}
            )
        for key in ("labels", "add_labels"):
            for name in _labels_param(params.get(key)):
                if len(name) > 255:
                    raise _HTTPError(400, {"message": {"labels": ["is invalid"]}})

    def _create_issue(self, req: _Req, p: dict[str, Any]) -> _Reply:
        params = req.params
        if "title" not in params:
            raise _HTTPError(400, {"error": "title is missing"})
        self._check_text(params)
        due = self._due_from(params)
        assignees = self._assignees_from(params) or []
        text, commands = _extract_quick_actions(str(params.get("description") or ""))
        labels = _labels_param(params.get("labels"))
        for name in labels:
            self._ensure_label(p, name)
        issue = self._new_issue(p, title=str(params["title"]).strip(), description=text, author_id=self.bot["id"])
        issue["labels"] = labels
        issue["assignee_ids"] = [i for i in assignees if i in self._users]
        issue["due_date"] = None if due is _UNSET else due
        if "confidential" in params:
            issue["confidential"] = _bool(params["confidential"])
        if commands:
            self._interpret(p, issue, commands, "description", self._users[self._bot_id])
        return _Reply(201, self._render_issue(p, issue))

    def _update_issue(self, req: _Req, p: dict[str, Any], issue: dict[str, Any]) -> _Reply:
        params = req.params
        accepted = {
            "assignee_id",
            "assignee_ids",
            "confidential",
            "created_at",
            "description",
            "discussion_locked",
            "due_date",
            "issue_type",
            "labels",
            "milestone_id",
            "state_event",
            "title",
            "add_labels",
            "remove_labels",
            "updated_at",
            "weight",
            "epic_id",
        }
        if not accepted & set(params):
            raise _HTTPError(
                400,
                {
                    "error": "assignee_id, assignee_ids, confidential, created_at, description, "
                    "discussion_locked, due_date, labels, milestone_id, state_event, title "
                    "are missing, at least one parameter must be provided"
                },
            )
        self._check_text(params)
        state_event = params.get("state_event")
        if state_event is not None and state_event not in ("close", "reopen"):
            raise _HTTPError(400, {"error": "state_event does not have a valid value"})
        due = self._due_from(params)
        commands: list[tuple[str, str]] = []
        description = None
        if "description" in params:
            description, commands = _extract_quick_actions(str(params["description"] or ""))
        labels = _labels_param(params["labels"]) if "labels" in params else None
        add = _labels_param(params.get("add_labels"))
        remove = _labels_param(params.get("remove_labels"))
        for name in [*(labels or []), *add]:
            self._ensure_label(p, name)
        self._mutate(
            p,
            issue,
            self._users[self._bot_id],
            title=str(params["title"]).strip() if "title" in params else None,
            description=description,
            labels=labels,
            add_labels=add,
            remove_labels=remove,
            assignee_ids=self._assignees_from(params),
            state_event=state_event,
            due_date=due,
            confidential=_bool(params["confidential"]) if "confidential" in params else None,
            discussion_locked=_bool(params["discussion_locked"]) if "discussion_locked" in params else None,
        )
        if commands:
            self._interpret(p, issue, commands, "description", self._users[self._bot_id])
        return _Reply(200, self._render_issue(p, issue))

    def _list_issues(self, req: _Req, p: dict[str, Any]) -> _Reply:
        params = req.params
        issues = list(p["issues"].values())
        state = params.get("state") or "all"
        if state in ("opened", "closed"):
            issues = [i for i in issues if i["state"] == state]
        if params.get("labels") not in (None, ""):
            raw = str(params["labels"]) if not isinstance(params["labels"], list) else ",".join(params["labels"])
            if raw.lower() == "none":
                issues = [i for i in issues if not i["labels"]]
            elif raw.lower() == "any":
                issues = [i for i in issues if i["labels"]]
            else:
                want = _labels_param(raw)
                issues = [i for i in issues if all(w in i["labels"] for w in want)]
        if "iids" in params:
            iids = set(_int_list(params["iids"]))
            issues = [i for i in issues if i["iid"] in iids]
        if params.get("search"):
            columns = [c.strip() for c in str(params.get("in") or "title,description").split(",")]
            q = str(params["search"])
            issues = [
                i for i in issues if any(_fuzzy_match(i.get(c), q) for c in columns if c in ("title", "description"))
            ]
        for key, field_name, after in (
            ("updated_after", "updated_at", True),
            ("updated_before", "updated_at", False),
            ("created_after", "created_at", True),
            ("created_before", "created_at", False),
        ):
            if params.get(key):
                try:
                    bound = _parse_dt(str(params[key]))
                except ValueError:
                    raise _HTTPError(400, {"error": f"{key} is invalid"}) from None
                issues = [i for i in issues if (i[field_name] >= bound if after else i[field_name] <= bound)]
        if params.get("assignee_username"):
            want_u = str(params["assignee_username"]).lower()
            issues = [i for i in issues if any(self._users[a]["username"].lower() == want_u for a in i["assignee_ids"])]
        if params.get("assignee_id") not in (None, ""):
            raw_a = str(params["assignee_id"])
            if raw_a.lower() == "none":
                issues = [i for i in issues if not i["assignee_ids"]]
            elif raw_a.lower() == "any":
                issues = [i for i in issues if i["assignee_ids"]]
            else:
                issues = [i for i in issues if int(raw_a) in i["assignee_ids"]]
        order_by = params.get("order_by") or "created_at"
        if order_by not in (
            "created_at",
            "updated_at",
            "due_date",
            "title",
            "priority",
            "relative_position",
            "label_priority",
            "milestone_due",
            "popularity",
            "weight",
        ):
            raise _HTTPError(400, {"error": "order_by does not have a valid value"})
        sort = params.get("sort") or "desc"
        if sort not in ("asc", "desc"):
            raise _HTTPError(400, {"error": "sort does not have a valid value"})
        key_field = order_by if order_by in ("created_at", "updated_at", "due_date", "title") else "created_at"

        def sort_key(i: dict[str, Any]) -> tuple[Any, ...]:
            v = i[key_field]
            return (v is None, v or "", i["id"])

        issues.sort(key=sort_key, reverse=sort == "desc")
        return self._page(req, [self._render_issue(p, i) for i in issues])

    def _list_notes(self, req: _Req, p: dict[str, Any], issue: dict[str, Any]) -> _Reply:
        notes = list(issue["notes"])
        flt = req.params.get("activity_filter") or "all_notes"
        if flt == "only_comments":
            notes = [n for n in notes if not n["system"]]
        elif flt == "only_activity":
            notes = [n for n in notes if n["system"]]
        order_by = req.params.get("order_by") or "created_at"
        notes.sort(
            key=lambda n: (
                n[order_by if order_by in ("created_at", "updated_at") else "created_at"],
                n["id"],
            ),
            reverse=(req.params.get("sort") or "desc") == "desc",
        )
        return self._page(req, [self._render_note(p, issue, n) for n in notes])

    def _create_note(self, req: _Req, p: dict[str, Any], issue: dict[str, Any]) -> _Reply:
        if "body" not in req.params:
            raise _HTTPError(400, {"error": "body is missing"})
        body = str(req.params["body"] or "")
        if not body.strip():
            raise _HTTPError(400, {"error": "body is empty"})
        if len(body) > MAX_NOTE:
            raise _HTTPError(400, {"message": {"note": [f"is too long (maximum is {MAX_NOTE} characters)"]}})
        text, commands = _extract_quick_actions(body)
        changes = self._interpret(p, issue, commands, "note", self._users[self._bot_id]) if commands else {}
        if commands and not text.strip():
            return _Reply(202, {"commands_changes": changes, "summary": [f"/{c} {a}".strip() for c, a in commands]})
        note = self._new_note(issue, text, self.bot["id"], system=False)
        return _Reply(201, self._render_note(p, issue, note))

    def _list_labels(self, req: _Req, p: dict[str, Any]) -> _Reply:
        labels = sorted(p["labels"], key=lambda lab: lab["name"].lower())
        if req.params.get("search"):
            q = str(req.params["search"]).lower()
            labels = [lab for lab in labels if q in lab["name"].lower()]
        if not _bool(req.params.get("include_ancestor_groups", True)):
            labels = [lab for lab in labels if lab["is_project_label"]]
        return self._page(req, [self._render_label(p, lab) for lab in labels])

    def _create_label(self, req: _Req, p: dict[str, Any]) -> _Reply:
        params = req.params
        if not params.get("name"):
            raise _HTTPError(400, {"error": "name is missing"})
        if not params.get("color"):
            raise _HTTPError(400, {"error": "color is missing"})
        name = str(params["name"]).strip()
        color = str(params["color"]).strip()
        if not name or "," in name or len(name) > 255:
            raise _HTTPError(400, {"message": {"title": ["is invalid"]}})
        if not (re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", color) or color.lower() in _CSS_COLORS):
            raise _HTTPError(400, {"message": {"color": ["must be a valid color code"]}})
        if self._find_label(p, name):
            raise _HTTPError(409, {"message": "Label already exists"})
        label = self._new_label(p, name, color, params.get("description"))
        if params.get("priority") is not None:
            label["priority"] = int(params["priority"])
        return _Reply(201, self._render_label(p, label))

    def _create_board(self, req: _Req, p: dict[str, Any]) -> _Reply:
        name = req.params.get("name")
        if not name:
            raise _HTTPError(400, {"error": "name is missing"})
        board = {"id": self._next_id("board"), "name": str(name), "lists": []}
        p["boards"].append(board)
        return _Reply(201, self._render_board(p, board))

    def _create_list(self, req: _Req, p: dict[str, Any], board: dict[str, Any]) -> _Reply:
        raw = req.params.get("label_id")
        if raw in (None, ""):
            raise _HTTPError(
                400,
                {
                    "error": "label_id, milestone_id, assignee_id, iteration_id are missing, "
                    "exactly one parameter must be provided"
                },
            )
        try:
            label_id = int(raw)
        except (TypeError, ValueError):
            raise _HTTPError(400, {"error": "label_id is invalid"}) from None
        if not any(lab["id"] == label_id for lab in p["labels"]):
            raise _HTTPError(400, {"message": {"error": "Label not found"}})
        if any(lst["label_id"] == label_id for lst in board["lists"]):
            raise _HTTPError(400, {"message": {"error": "Label has already been taken"}})
        lst = {"id": self._next_id("list"), "label_id": label_id, "position": len(board["lists"])}
        board["lists"].append(lst)
        return _Reply(201, self._render_list(p, lst))


_DOWN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>GitLab is not responding (503)</title></head>"
    "<body><h1>503</h1><h2>GitLab is not responding.</h2></body></html>\n"
)


# ------------------------------------------------------------------ rate limits (off unless enforced)
# GitLab.com's documented limits (https://docs.gitlab.com/user/gitlab_com/rate_limits/): authenticated
# API traffic 2,000 requests a minute per user, issue creation 200 a minute, note creation on issues 60 a
# minute. GitLab counts in fixed periods and answers a throttled request 429 "Retry later" with
# Retry-After = the seconds until the period resets, plus RateLimit-* headers; the request has no effect.


@dataclass
class GitLabLimitEvent:
    """One request the limiter counted: which limits it fell under, when, and whether it was refused."""

    method: str
    path: str
    limits: tuple[str, ...]
    at: float
    limited: bool
    retry_after: int = 0


_ISSUE_CREATE = re.compile(r"^/api/v4/projects/[^/]+/issues/?$")
_NOTE_CREATE = re.compile(r"^/api/v4/projects/[^/]+/issues/\d+/notes/?$")


class GitLabRateLimits:
    """Per-period request limits; ``window_seconds`` < 60 compresses a minute for short tests."""

    def __init__(self, *, api_per_minute: int = 2000, issues_per_minute: int = 200, notes_per_minute: int = 60,
                 window_seconds: float = 60.0) -> None:
        self.per_window = {"throttle_authenticated_api": api_per_minute,
                           "issue_creation": issues_per_minute, "note_creation": notes_per_minute}
        self.window = window_seconds
        self.events: list[GitLabLimitEvent] = []
        self._counts: dict[tuple[str, int], int] = {}
        self._start = time.monotonic()

    def names(self, call: Call) -> tuple[str, ...]:
        out = ["throttle_authenticated_api"]
        if call.method == "POST" and _ISSUE_CREATE.match(call.path):
            out.append("issue_creation")
        if call.method == "POST" and _NOTE_CREATE.match(call.path):
            out.append("note_creation")
        return tuple(out)

    def check(self, call: Call) -> _Reply | None:
        now = time.monotonic()
        period = int((now - self._start) // self.window)
        names = self.names(call)
        over = [n for n in names if self._counts.get((n, period), 0) >= self.per_window[n]]
        if over:
            reset_in = self._start + (period + 1) * self.window - now
            wait = max(1, int(reset_in) + (reset_in > int(reset_in)))
            self.events.append(GitLabLimitEvent(call.method, call.path, names, now, True, wait))
            reset = int(time.time()) + wait
            return _Reply(429, "Retry later\n", {
                "Retry-After": str(wait), "RateLimit-Name": over[0], "RateLimit-Limit": str(self.per_window[over[0]]),
                "RateLimit-Observed": str(self._counts[(over[0], period)] + 1), "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "RateLimit-ResetTime": format_datetime(datetime.fromtimestamp(reset, UTC), usegmt=True),
            }, content_type="text/plain")
        for n in names:
            self._counts[(n, period)] = self._counts.get((n, period), 0) + 1
        self.events.append(GitLabLimitEvent(call.method, call.path, names, now, False))
        return None


def _enforce_rate_limits(self: FakeGitLab, limits: GitLabRateLimits | None = None, **kw: Any) -> GitLabRateLimits:
    """Start refusing requests over the limits (see GitLabRateLimits); returns the limiter."""
    with self._lock:
        self._rate_limits = limits or GitLabRateLimits(**kw)
        return self._rate_limits


def _stop_rate_limits(self: FakeGitLab) -> None:
    with self._lock:
        self._rate_limits = None


_dispatch_unlimited = FakeGitLab._dispatch


def _dispatch_with_limits(self: FakeGitLab, call: Call, bad_body: bool) -> tuple[_Reply, bool]:
    with self._lock:
        limits: GitLabRateLimits | None = getattr(self, "_rate_limits", None)
        if limits is not None and not self._down and self._authenticated(call):
            refused = limits.check(call)
            if refused is not None:
                self.calls.append(call)
                return refused, False
        return _dispatch_unlimited(self, call, bad_body)


FakeGitLab._dispatch = _dispatch_with_limits  # type: ignore[method-assign]
FakeGitLab.enforce_rate_limits = _enforce_rate_limits  # type: ignore[attr-defined]
FakeGitLab.stop_rate_limits = _stop_rate_limits  # type: ignore[attr-defined]
