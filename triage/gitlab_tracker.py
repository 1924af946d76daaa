"""GitLab, as the app needs it: issues on the SA triage boards, notes, user lookup.

This is the only module that imports ``gitlab`` (python-gitlab); the board setup and webhook checks of
``triage setup``/``triage check`` live in ``triage.gitlab_setup``, which calls GitLab through a tracker (and
so through its error translation). Every call either returns plain data (``IssueRef``, ``IssueState``,
``GitLabUser``) or raises one of the app's delivery errors:

* ``RetryLater`` — connection refused/reset, timeout, 5xx, 429 (``retry_after`` from ``Retry-After``);
* ``Rejected`` — 400/401/403/404/409/422 and other refusals: retrying the same call won't help.

The client never sleeps or retries by itself: the outbox owns retries and backoff. python-gitlab's defaults
would otherwise sleep through up to 10 rate-limited answers (``obey_rate_limit=True, max_retries=10`` are
per-request defaults of ``Gitlab.http_request``; ``Gitlab()`` has no constructor option for them), so a
small subclass forces them off for every request. Each public method makes a known, small number of HTTP
calls: ``create_issue`` exactly one POST, ``update_issue`` exactly one PUT.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import itertools
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import gitlab
import gitlab.exceptions
import requests
import requests.adapters

from triage.core.errors import Rejected, RetryLater

__all__ = ["GitLabTracker", "GitLabUser", "IssueRef", "IssueState"]

MAX_TITLE = 255  # GitLab rejects longer issue titles with 400 "is too long"
_MAX_LABEL = 255
_MAX_USER_DETAILS = 10  # GET /users/:id look-ups per email search (GitLab.com: 300 per 10 min)


@dataclass(frozen=True)
class IssueRef:
    project: str
    iid: int
    id: int
    web_url: str


@dataclass(frozen=True)
class IssueState:
    iid: int
    state: str  # "opened" | "closed"
    labels: tuple[str, ...]
    assignee_usernames: tuple[str, ...]
    assignee_ids: tuple[int, ...]
    updated_at: datetime
    due_date: date | None
    web_url: str
    description: str


@dataclass(frozen=True)
class GitLabUser:
    id: int
    username: str
    name: str
    emails: frozenset[str] = frozenset()  # the e-mails GitLab shows us (public, or all for an admin token)


class _NoRetryGitlab(gitlab.Gitlab):
    """python-gitlab client that never sleeps or retries on its own.

    ``Gitlab.http_request`` defaults to ``obey_rate_limit=True, max_retries=10``: on a 429 it sleeps for
    Retry-After (or an exponential backoff) up to ten times, and with ``retry_transient_errors`` it does the
    same for 5xx and dropped connections. Those are per-request arguments (``Gitlab()`` does not accept
    them), so they are forced here for every request, including the next-page requests of list iterators.
    """

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        kwargs["max_retries"] = 0
        return super().http_request(*args, **kwargs)


class GitLabTracker:
    def __init__(self, url: str, token: str, *, timeout: float = 10.0, per_page: int = 100):
        self._url = url.rstrip("/")
        # python-gitlab's exceptions carry the status and body but not the response headers, so the
        # Retry-After of a 429/503 would be lost. A response hook on our own requests.Session records the
        # status and Retry-After of the last answer on this thread; _translate_gitlab reads it when the error's
        # status matches. (Thread-local, so concurrent callers don't see each other's answers.)
        self._last = threading.local()
        self._held: dict[str, float] = {}  # rate limit -> monotonic time its Retry-After ends
        session = requests.Session()
        # No transport-level retries either: a POST that may have reached GitLab must not be re-sent blindly.
        adapter = requests.adapters.HTTPAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.hooks["response"].append(self._remember_response)
        self._gl = _NoRetryGitlab(
            self._url,
            private_token=token,
            timeout=timeout,
            per_page=max(1, min(per_page, 100)),
            retry_transient_errors=False,
            user_agent="triage (python-gitlab)",
            session=session,
        )
        self._per_page = max(1, min(per_page, 100))
        self._bot_id: int | None = None

    def __repr__(self) -> str:  # never show the token
        return f"GitLabTracker(url={self._url!r})"

    # ------------------------------------------------------------------ issues
    def create_issue(
        self,
        project: str,
        *,
        title: str,
        description: str,
        labels: list[str],
        due_date: date,
        assignee_ids: Iterable[int] = (),
    ) -> IssueRef:
        """Create the issue with exactly one POST. GitLab creates labels it doesn't know yet."""
        data: dict[str, Any] = {
            "title": _clip_title(title),
            "description": description,
            "labels": ",".join(_checked_labels(labels)),
            "due_date": due_date.isoformat(),
        }
        ids = [int(i) for i in assignee_ids]
        if ids:
            data["assignee_ids"] = ids
        with self._errors(f"create issue in {project}"):
            issue = self._project(project).issues.create(data)
            attrs = issue.attributes
        return IssueRef(project=project, iid=int(attrs["iid"]), id=int(attrs["id"]), web_url=str(attrs["web_url"]))

    def find_issue_by_marker(
        self, project: str, marker: str, *, created_after: datetime | None = None
    ) -> IssueRef | None:
        """The oldest issue whose description contains ``marker`` exactly, or None.

        Used after an ambiguous create (timeout, dropped connection) so a retry doesn't make a second issue.
        GitLab's ``search`` is fuzzy (word-wise, and full-text on some versions), so every hit is confirmed
        against the exact marker. Searches with the marker's words (without the ``<!--``/``-->`` HTML-comment
        delimiters, which a full-text index drops). When ``created_after`` is given and the search finds
        nothing, issues created since then are scanned as well, in case the search index missed it.
        """
        terms = _search_terms(marker)
        with self._errors(f"search issues in {project}"):
            issues = self._project(project).issues
            found = self._first_with_marker(
                issues.list(
                    iterator=True,
                    search=terms,
                    state="all",
                    order_by="created_at",
                    sort="asc",
                    # Every issue the app files shares the marker's words; the window keeps this a short list.
                    **{"in": "description"},
                    **({"created_after": _iso(created_after)} if created_after is not None else {}),
                ),
                project,
                marker,
            )
            if found is None and created_after is not None:
                found = self._first_with_marker(
                    issues.list(
                        iterator=True,
                        state="all",
                        order_by="created_at",
                        sort="asc",
                        created_after=_iso(created_after),
                    ),
                    project,
                    marker,
                )
        return found

    def get_issue(self, project: str, iid: int) -> IssueState:
        with self._errors(f"get issue {project}#{iid}"):
            attrs = self._project(project).issues.get(iid).attributes
        return _issue_state(attrs)

    def update_issue(
        self,
        project: str,
        iid: int,
        *,
        add_labels: Iterable[str] = (),
        remove_labels: Iterable[str] = (),
        assignee_ids: list[int] | None = None,
        state_event: str | None = None,
        due_date: date | None = None,
    ) -> IssueState:
        """One PUT. ``assignee_ids=[]`` unassigns everybody (sent as ``[0]``, which GitLab documents);
        ``None`` leaves assignees alone. ``state_event`` is "close" or "reopen"."""
        data: dict[str, Any] = {}
        add = _checked_labels(add_labels)
        remove = _checked_labels(remove_labels)
        if add:
            data["add_labels"] = ",".join(add)
        if remove:
            data["remove_labels"] = ",".join(remove)
        if assignee_ids is not None:
            data["assignee_ids"] = [int(i) for i in assignee_ids] or [0]
        if state_event is not None:
            if state_event not in ("close", "reopen"):
                raise ValueError(f"state_event must be 'close' or 'reopen', not {state_event!r}")
            data["state_event"] = state_event
        if due_date is not None:
            data["due_date"] = due_date.isoformat()
        if not data:
            raise ValueError("update_issue needs at least one change")
        with self._errors(f"update issue {project}#{iid}"):
            attrs = self._project(project).issues.update(iid, data)
        return _issue_state(attrs)

    def add_note(self, project: str, iid: int, body: str) -> int:
        """Comment on the issue; returns the note id."""
        if not body.strip():
            raise ValueError("note body is empty")
        with self._errors(f"comment on {project}#{iid}"):
            note = self._project(project).issues.get(iid, lazy=True).notes.create({"body": body})
            attrs = note.attributes
        if "id" not in attrs:
            # GitLab answers 202 without a note when the body was nothing but quick actions (it ran them).
            raise Rejected(f"GitLab comment on {project}#{iid}: the body was read as quick actions only; no note")
        return int(attrs["id"])

    def issues_updated_after(self, project: str, updated_after: datetime, *, limit: int) -> list[IssueState]:
        """Issues (open and closed) updated at or after ``updated_after``, oldest first, at most ``limit``.

        GitLab's ``updated_after`` is inclusive, so the boundary issue comes back again next time: callers
        resume from the last ``updated_at`` they saw and ignore what they already applied.
        """
        if limit <= 0:
            return []
        with self._errors(f"list issues in {project}"):
            items = self._project(project).issues.list(
                iterator=True,
                state="all",
                order_by="updated_at",
                sort="asc",
                updated_after=_iso(updated_after),
                per_page=min(limit, self._per_page),
            )
            return [_issue_state(i.attributes) for i in itertools.islice(items, limit)]

    # ------------------------------------------------------------------ users
    def users_by_email(self, email: str) -> list[GitLabUser]:
        """GitLab users whose (public) email is ``email``.

        ``GET /users?search=`` matches name and username fuzzily and the public email exactly (private emails
        only for admin tokens), and a non-admin answer has no email field. Results that show an email are kept
        only on an exact, case-insensitive match; results that don't are checked through ``GET /users/:id``
        (which shows ``public_email``) and kept when it matches, or when no email is visible at all.
        """
        email = email.strip()
        if not email:
            return []
        want = email.lower()
        with self._errors("search users"):
            results = [u.attributes for u in self._gl.users.list(search=email, get_all=True)]
            seen: list[tuple[dict[str, Any], set[str]]] = []
            for attrs in results:
                shown = _emails(attrs)
                if not shown and len(results) <= _MAX_USER_DETAILS:
                    shown = _emails(self._gl.users.get(attrs["id"]).attributes)
                seen.append((attrs, shown))
        exact = [_user(attrs) for attrs, shown in seen if want in shown]
        if exact:
            return exact
        # GitLab matched these on something we can't see (no email visible): leave the choice to the caller.
        return [_user(attrs) for attrs, shown in seen if not shown]

    def user_by_username(self, username: str) -> GitLabUser | None:
        username = username.strip().lstrip("@")
        if not username:
            return None
        with self._errors("look up user"):
            found = [u.attributes for u in self._gl.users.list(username=username, get_all=True)]
            for attrs in found:
                if str(attrs.get("username", "")).lower() == username.lower():
                    # The list shows no e-mail to a non-admin token; GET /users/:id shows public_email.
                    shown = _emails(attrs) or _emails(self._gl.users.get(attrs["id"]).attributes)
                    return dataclasses.replace(_user(attrs), emails=frozenset(shown))
        return None

    def bot_user_id(self) -> int:
        """The id of the token's own user (``GET /user``), asked once and remembered: the app's own issues
        and notes are the ones this user wrote."""
        if self._bot_id is None:
            with self._errors("check token"):
                data = self._gl.http_get("/user")
            if not isinstance(data, dict) or not isinstance(data.get("id"), int):
                raise _rejected(f"GitLab: GET {self._url}/api/v4/user did not answer a user; check GITLAB_URL", None)
            self._bot_id = data["id"]
        return self._bot_id

    def whoami(self) -> str:
        """Username of the token's user (``GET /user``)."""
        with self._errors("check token"):
            data = self._gl.http_get("/user")
        if not isinstance(data, dict) or "username" not in data:
            # e.g. a 200 HTML page: GITLAB_URL points at something that isn't GitLab's API
            raise _rejected(
                f"GitLab check token: GET {self._url}/api/v4/user did not answer a user; check GITLAB_URL", None
            )
        return str(data["username"])

    def project_exists(self, project: str) -> bool:
        try:
            with self._errors(f"get project {project}"):
                self._gl.projects.get(project)
        except Rejected as e:
            if getattr(e, "status", None) == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ plumbing
    def _project(self, project: str | int) -> Any:
        # lazy: no GET /projects/:id, just an object that builds /projects/<url-encoded path>/... URLs
        return self._gl.projects.get(project, lazy=True)

    def _first_with_marker(self, items: Iterator[Any], project: str, marker: str) -> IssueRef | None:
        bot = self.bot_user_id()
        for item in items:
            attrs = item.attributes
            # Anyone can copy a marker into an issue of their own; only the app's user writes real ones.
            if (attrs.get("author") or {}).get("id") == bot and marker in (attrs.get("description") or ""):
                return IssueRef(
                    project=project, iid=int(attrs["iid"]), id=int(attrs["id"]), web_url=str(attrs["web_url"])
                )
        return None

    def _remember_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.status = response.status_code
        self._last.retry_after = _retry_after(response.headers)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        # GitLab limits issue creation and note creation per minute on their own, besides all API calls.
        # Once one answered 429, calls under it wait out its Retry-After here instead of each outbox entry
        # spending a request to be told the same.
        limit = ("issue_creation" if action.startswith("create issue") else
                 "note_creation" if action.startswith("comment on") else "api")
        left = max(self._held.get(limit, 0.0), self._held.get("api", 0.0)) - time.monotonic()
        if left > 0:
            raise RetryLater(f"GitLab {action}: rate limited, holding back", retry_after=left, applied=False)
        self._last.status = None
        self._last.retry_after = None
        try:
            yield
        except gitlab.exceptions.GitlabError as exc:
            error = self._translate_gitlab(exc, action)
            if isinstance(error, RetryLater) and error.applied is False and error.retry_after:
                self._held[limit] = time.monotonic() + error.retry_after
            raise error from exc
        except requests.exceptions.RequestException as exc:
            raise _translate_transport(exc, action) from exc

    def _translate_gitlab(self, exc: gitlab.exceptions.GitlabError, action: str) -> Exception:
        code = exc.response_code
        detail = _message(exc.error_message)
        if code is None:
            if isinstance(exc, gitlab.exceptions.RedirectError):
                return _rejected(f"GitLab {action}: redirected ({detail}); check GITLAB_URL", None)
            return RetryLater(f"GitLab {action}: unreadable answer ({detail})")
        message = f"GitLab {action}: {code} {detail}".rstrip()
        transient = code in (408, 429) or code >= 500 or (code == 409 and "resource lock" in detail.lower())
        if transient:
            retry_after = self._last.retry_after if getattr(self._last, "status", None) == code else None
            # A 429 is refused before GitLab acts on it (Rack::Attack throttling).
            return RetryLater(message, retry_after=retry_after, applied=False if code == 429 else None)
        return _rejected(message, code)


# ---------------------------------------------------------------------- helpers
def _rejected(message: str, status: int | None) -> Rejected:
    err = Rejected(message)
    err.status = status  # type: ignore[attr-defined]  # the HTTP status, for callers that branch on 404/409
    return err


def _translate_transport(exc: requests.exceptions.RequestException, action: str) -> Exception:
    kind = type(exc).__name__
    transient = (
        requests.exceptions.ConnectionError,  # refused, reset, dropped without an answer, DNS, TLS
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    )
    if isinstance(exc, transient):
        return RetryLater(f"GitLab {action}: {kind} (no answer)")
    return _rejected(f"GitLab {action}: {kind}: {exc}", None)  # bad URL/schema: configuration


def _message(raw: Any) -> str:
    """GitLab's error message: a string, or ``{"field": ["problem", ...]}`` for validation errors."""
    if isinstance(raw, dict):
        parts = []
        for key, value in raw.items():
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(text if key in ("base", "error") else f"{key} {text}")
        raw = "; ".join(parts)
    elif isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    text = " ".join(str(raw).split())
    if text.lstrip().startswith("<"):  # an HTML error page from a proxy or GitLab's 502/503 page
        m = re.search(r"<title>(.*?)</title>", text, re.I)
        text = m.group(1) if m else "HTML error page"
    return text[:300]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        with contextlib.suppress(TypeError, ValueError):
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    reset = headers.get("RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _checked_labels(labels: Iterable[str]) -> list[str]:
    """Label names as GitLab stores them; a comma would split one label into two, so it's refused."""
    out: list[str] = []
    for raw in labels:
        name = str(raw).strip()
        if not name or "," in name or len(name) > _MAX_LABEL:
            raise _rejected(f"GitLab label name {raw!r} is not allowed (empty, a comma, or over 255 chars)", None)
        if name not in out:
            out.append(name)
    return out


def _clip_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def _search_terms(marker: str) -> str:
    text = marker.replace("<!--", " ").replace("-->", " ")
    return " ".join(text.split()) or marker


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_dt(value: str) -> datetime:
    dt = datetime.fromisoformat(value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _issue_state(attrs: dict[str, Any]) -> IssueState:
    assignees = attrs.get("assignees") or ([attrs["assignee"]] if attrs.get("assignee") else [])
    due = attrs.get("due_date")
    return IssueState(
        iid=int(attrs["iid"]),
        state=str(attrs["state"]),
        labels=tuple(attrs.get("labels") or ()),
        assignee_usernames=tuple(str(a["username"]) for a in assignees),
        assignee_ids=tuple(int(a["id"]) for a in assignees),
        updated_at=_parse_dt(attrs["updated_at"]),
        due_date=date.fromisoformat(due) if due else None,
        web_url=str(attrs.get("web_url") or ""),
        description=str(attrs.get("description") or ""),
    )


def _emails(attrs: dict[str, Any]) -> set[str]:
    return {str(attrs[k]).strip().lower() for k in ("email", "public_email") if attrs.get(k)}


def _user(attrs: dict[str, Any]) -> GitLabUser:
    return GitLabUser(id=int(attrs["id"]), username=str(attrs["username"]), name=str(attrs.get("name") or ""))
