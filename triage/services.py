"""Use cases. Imports core, repo and models; talks to GitLab and Slack only through the ports below,
which the worker fills with real adapters (gitlab_tracker, slack.notifier)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from triage import outbox, repo
from triage import sweep as sla_sweep
from triage.config import Config, Queue, Settings
from triage.core import sla
from triage.core.errors import DeliveryError, Rejected, RetryLater
from triage.core.gitlab_text import marker
from triage.core.issue_template import render_issue
from triage.core.labels import labels_for_new_request
from triage.db import session_scope
from triage.models import OutboxEntry, Request, RequestEvent

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- ports (filled by the worker)


class IssueRefLike(Protocol):
    project: str
    iid: int
    id: int
    web_url: str


class Tracker(Protocol):
    def create_issue(self, project: str, *, title: str, description: str, labels: list[str],
                     due_date: date) -> IssueRefLike: ...
    def find_issue_by_marker(self, project: str, marker: str, *,
                             created_after: datetime | None = None) -> IssueRefLike | None: ...
    def update_issue(self, project: str, iid: int, *, add_labels: Sequence[str] = (),
                     remove_labels: Sequence[str] = (), assignee_ids: list[int] | None = None,
                     state_event: str | None = None, due_date: date | None = None) -> Any: ...
    def add_note(self, project: str, iid: int, body: str) -> int: ...
    def users_by_email(self, email: str) -> list[Any]: ...
    def user_by_username(self, username: str) -> Any | None: ...
    def issues_updated_after(self, project: str, updated_after: datetime, *, limit: int) -> list[Any]: ...


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str = ""
    tz: str = "UTC"
    email: str | None = None


class Notifier(Protocol):
    def user_info(self, user: str) -> SlackUser: ...
    def post_card(self, request: Request, events: Sequence[RequestEvent]) -> str: ...
    def find_card(self, request: Request) -> str | None: ...
    def dm_landed(self, request: Request) -> None: ...
    def dm_queued(self, request: Request, service: str) -> None: ...
    def update_card(self, request: Request, events: Sequence[RequestEvent]) -> None: ...
    def thread_reply(self, channel: str, thread_ts: str, text: str) -> None: ...
    def post(self, channel: str, text: str, *, breach_request_id: int | None = None) -> None: ...
    def dm_text(self, user: str, text: str) -> None: ...
    def dm_needs_info(self, request: Request, question: str, asked_by: str | None) -> None: ...
    def ask_gitlab_username(self, request: Request, user: str, why: str) -> None: ...


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class SubmitResult:
    request_id: int
    reference: str
    created: bool


@dataclass(frozen=True)
class Duplicate:
    request_id: int
    reference: str
    url: str | None
    status: str


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    claimed: int = 0
    errors: list[str] = field(default_factory=list)


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, datetime | date):
            out[k] = v.isoformat()
        elif isinstance(v, tuple | list):
            out[k] = list(v)
        else:
            out[k] = v
    return out


# ==================================================================== working requests (claim, status, ...)

NOTE_MARKER = "<!-- triage-note -->"  # on the app's own GitLab notes, so their Note Hooks post nothing
RECONCILE_INTERVAL = timedelta(minutes=5)  # how often drift repair reads each board


@dataclass(frozen=True)
class BoardState:
    """What the GitLab issue says now: its labels, open or closed, and who is assigned."""

    labels: tuple[str, ...]
    closed: bool
    assignee_ids: tuple[int, ...] = ()
    assignee_usernames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """What a use case did, for the listener to tell the person who clicked."""

    request: Request
    changed: bool
    message: str = ""


def _mention(user: str | None) -> str:
    return f"<@{user}>" if user else "nobody"


def _slack_escape(text: str) -> str:
    # The Slack-side escaping lives in blocks.text; services must not import blocks, so the three
    # characters Slack documents (&, <, >) are escaped here for the short texts services compose.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WorkMixin:
    """Claim, assign, status, needs info, decline, and GitLab board changes coming back."""

    engine: Engine
    config: Config
    _wake: Callable[[], None]
    now: Callable[[], datetime]
    is_leader: Callable[[str], bool]

    # -- helpers

    def get(self, request_id: int) -> Request | None:
        with session_scope(self.engine) as s:
            return repo.get_request(session=s, request_id=request_id)

    def _require(self, s, request_id: int) -> Request:
        from triage.core.errors import InvalidTransition

        r = repo.get_request(session=s, request_id=request_id)
        if r is None:
            raise InvalidTransition(f"There is no request {request_id}.")
        return r

    def _record(self, s, request: Request, *, kind: str, actor: str | None, source: str, now: datetime,
                thread: str | None = None, gitlab: dict[str, Any] | None = None,
                note: str | None = None, dms: Sequence[dict[str, Any]] = (), **detail: Any) -> RequestEvent:
        """The audit event plus every side effect it implies, in the same transaction."""
        event = repo.add_event(session=s, request_id=request.id, kind=kind, source=source, actor=actor, at=now,
                               **detail)
        s.flush()
        key = f"{request.id}:{event.id}"
        if gitlab is not None and source != "gitlab":
            outbox.enqueue(s, kind="gitlab_update", lane=f"gitlab:{request.id}", dedupe_key=f"gl:{key}",
                           request_id=request.id, payload=gitlab, now=now)
        if note and source != "gitlab":
            outbox.enqueue(s, kind="gitlab_note", lane=f"gitlab:{request.id}", dedupe_key=f"note:{key}",
                           request_id=request.id, payload={"body": note}, now=now)
        outbox.enqueue(s, kind="card_update", lane=f"slack:{request.id}", dedupe_key=f"card:{key}",
                       request_id=request.id, now=now)
        if thread:
            outbox.enqueue(s, kind="thread_reply", lane=f"slack:{request.id}", dedupe_key=f"thread:{key}",
                           request_id=request.id, payload={"text": thread}, now=now)
        for i, dm in enumerate(dms):
            outbox.enqueue(s, kind="dm", lane=f"slack:{request.id}", dedupe_key=f"dm:{key}:{i}",
                           request_id=request.id, payload=dm, now=now)
        return event

    # -- claim and assign

    def claim(self, request_id: int, actor: str, *, now: datetime | None = None) -> Change:
        """Take an open request. Atomic: of two SAs clicking at once exactly one wins."""
        from triage.core import lifecycle

        now = now or self.now()
        with session_scope(self.engine) as s:
            won = s.execute(
                sa.update(Request)
                .where(Request.id == request_id, Request.status == "open", Request.owner.is_(None))
                .values(status="claimed", owner=actor, allocated_at=now, updated_at=now, next_check_at=None)
            ).rowcount == 1
            request = self._require(s, request_id)
            if not won:
                lifecycle.check_claim(request.status, request.owner, actor)  # raises AlreadyClaimed
                return Change(request, False, "You already have this request.")
            s.refresh(request)
            self._allocated(s, request, actor=actor, by=actor, now=now, source="slack")
        self._wake()
        return Change(request, True, f"You have {request.reference}.")

    def assign(self, request_id: int, actor: str, assignee: str, *, now: datetime | None = None) -> Change:
        """A leader gives a request (events above all) to an SA; it counts as the SA's claim."""
        from triage.core import lifecycle

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            lifecycle.check_assign(request.status, is_leader=self.is_leader(actor))
            if request.owner == assignee:
                return Change(request, False, f"{request.reference} is already {_mention(assignee)}'s.")
            first = request.allocated_at is None
            s.execute(sa.update(Request).where(Request.id == request_id).values(
                owner=assignee, status="claimed" if request.status == "open" else request.status,
                allocated_at=request.allocated_at or now, updated_at=now, next_check_at=None))
            s.refresh(request)
            self._allocated(s, request, actor=assignee, by=actor, now=now, source="slack", first=first)
        self._wake()
        return Change(request, True, f"Assigned {request.reference} to {_mention(assignee)}.")

    def _allocated(self, s, request: Request, *, actor: str, by: str, now: datetime, source: str,
                   first: bool = True) -> None:
        kind = "claimed" if actor == by else "assigned"
        text = (f"{_mention(actor)} took this request." if kind == "claimed"
                else f"{_mention(by)} assigned this request to {_mention(actor)}.")
        late = now > request.deadline
        if first:
            repo.add_event(session=s, request_id=request.id, kind="sla_stop", source="system", at=now,
                           late=late)
        self._record(
            s, request, kind=kind, actor=by, source=source, now=now, thread=text, to=actor,
            gitlab={"add_labels": ["SA Triaged"], "remove_labels": [], "assignee": actor},
            dms=[{"user": request.requester, "text": f"{_mention(actor)} has your request "
                  f"*{request.reference}* ({_slack_escape(request.customer_name)})."}],
        )

    def unclaim(self, request_id: int, actor: str, *, now: datetime | None = None) -> Change:
        from triage.core.errors import NotAllowed

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if request.owner is None:
                return Change(request, False, "Nobody has this request.")
            if actor != request.owner and not self.is_leader(actor):
                raise NotAllowed("Only the SA who has this request, or a leader, can return it to the queue.")
            from triage.core.labels import BOARD_LISTS

            s.execute(sa.update(Request).where(Request.id == request_id).values(
                owner=None, status="open", allocated_at=None, updated_at=now))
            s.refresh(request)
            # Back in the queue, it needs an SA again: the clock runs on from where it stopped.
            repo.add_event(session=s, request_id=request.id, kind="sla_start", source="system", at=now)
            self._record(s, request, kind="unclaimed", actor=actor, source="slack", now=now,
                         thread=f"{_mention(actor)} returned this request to the queue.",
                         gitlab={"add_labels": [], "remove_labels": list(BOARD_LISTS), "assignee": None})
        self._reschedule(request_id, now)
        self._wake()
        return Change(request, True, f"{request.reference} is back in the queue.")

    # -- status

    def set_status(self, request_id: int, actor: str, new_status: str, *, now: datetime | None = None) -> Change:
        from triage.core import lifecycle
        from triage.core.labels import status_label_change

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            lifecycle.check_status_change(request.status, new_status, actor=actor, owner=request.owner,
                                          is_leader=self.is_leader(actor))
            if request.status == new_status:
                return Change(request, False, f"{request.reference} is already {new_status}.")
            old = request.status
            add, remove = status_label_change(old, new_status)
            values: dict[str, Any] = {"status": new_status, "updated_at": now}
            gitlab: dict[str, Any] = {"add_labels": add, "remove_labels": remove}
            if new_status == "done":
                values["closed_at"] = now
                gitlab["state_event"] = "close"
            s.execute(sa.update(Request).where(Request.id == request_id).values(**values))
            s.refresh(request)
            self._record(s, request, kind="status", actor=actor, source="slack", now=now, status=new_status,
                         previous=old, thread=f"{_mention(actor)} set the status to *{new_status}*.",
                         gitlab=gitlab,
                         dms=[{"user": request.requester, "text": f"Your request *{request.reference}* is "
                               "done." }] if new_status == "done" else ())
        self._wake()
        return Change(request, True, f"{request.reference} is now {new_status}.")

    # -- needs info, answer, decline

    def needs_info(self, request_id: int, actor: str, question: str, *, now: datetime | None = None) -> Change:
        from triage.core.errors import InvalidTransition
        from triage.core.labels import BOARD_LISTS

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if request.status in ("done", "declined"):
                raise InvalidTransition(f"{request.reference} is already {request.status}.")
            previous = request.status
            s.execute(sa.update(Request).where(Request.id == request_id).values(status="waiting", updated_at=now))
            s.refresh(request)
            if previous != "waiting":
                repo.add_event(session=s, request_id=request.id, kind="sla_pause", source="system", at=now)
            self._record(
                s, request, kind="needs_info", actor=actor, source="slack", now=now, previous=previous,
                question=question,
                thread=f"{_mention(actor)} needs more information from {_mention(request.requester)}:\n"
                       + "\n".join("> " + line for line in _slack_escape(question).splitlines()),
                gitlab={"add_labels": ["SA Waiting"], "remove_labels": [x for x in BOARD_LISTS if x != "SA Waiting"]},
                note=f"**Needs more information** (asked in Slack):\n\n{_quote_md(question)}",
                dms=[{"user": request.requester, "kind": "needs_info", "question": question, "asked_by": actor}],
            )
        self._wake()
        return Change(request, True, "Asked; the request waits on the AE (the SLA clock is paused).")

    def answer(self, request_id: int, actor: str, answer: str, *, now: datetime | None = None) -> Change:
        from triage.core.errors import InvalidTransition, NotAllowed
        from triage.core.labels import status_label_change

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if actor != request.requester and not self.is_leader(actor):
                raise NotAllowed("Only the requester can answer this question.")
            if request.status != "waiting":
                raise InvalidTransition(f"{request.reference} is not waiting for an answer.")
            asked = s.exec(sa.select(RequestEvent).where(RequestEvent.request_id == request.id,
                                                         RequestEvent.kind == "needs_info")
                           .order_by(RequestEvent.id.desc()).limit(1)).scalars().first()
            back_to = (asked.detail.get("previous") if asked else None) or ("claimed" if request.owner else "open")
            if back_to == "waiting":
                back_to = "claimed" if request.owner else "open"
            add, remove = status_label_change("waiting", back_to)
            s.execute(sa.update(Request).where(Request.id == request_id).values(status=back_to, updated_at=now))
            s.refresh(request)
            repo.add_event(session=s, request_id=request.id, kind="sla_resume", source="system", at=now)
            self._record(
                s, request, kind="answered", actor=actor, source="slack", now=now,
                thread=f"{_mention(actor)} answered:\n"
                       + "\n".join("> " + line for line in _slack_escape(answer).splitlines()),
                gitlab={"add_labels": add, "remove_labels": remove},
                note=f"**Answer from the requester** (in Slack):\n\n{_quote_md(answer)}",
            )
        self._reschedule(request_id, now)
        self._wake()
        return Change(request, True, "Thanks: your answer is in the thread and on the issue.")

    def _reschedule(self, request_id: int, now: datetime) -> None:
        """Recompute the deadline from the clock's history (pauses move it by exactly the paused working
        time) and let the GitLab due date follow."""
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if request.allocated_at is not None:
                return
            queue = self.config.queue(request.queue)
            if queue is None:
                return
            pauses = self.pauses_of(s, request.id)
            deadline = self.deadline_for(queue=queue, request_type=request.request_type,
                                         expedite=request.expedite, start=request.created_at, pauses=pauses,
                                         now=now)
            if deadline != request.deadline:
                s.execute(sa.update(Request).where(Request.id == request_id).values(deadline=deadline))
                outbox.enqueue(s, kind="gitlab_update", lane=f"gitlab:{request_id}",
                               dedupe_key=f"due:{request_id}:{deadline.isoformat()}", request_id=request_id,
                               payload={"due_date": self._due_date(request.model_copy(update={"deadline": deadline}),
                                                                   queue).isoformat()}, now=now)
            sla_sweep.reschedule(s, request_id, self.config, now)

    def pauses_of(self, s, request_id: int) -> list[sla.Pause]:
        """The request's SLA pauses, folded from its recorded clock events (a span between a stop and a
        restart, e.g. claimed then returned to the queue, counts as a pause)."""
        request = self._require(s, request_id)
        return list(sla_sweep.clock_of(request, repo.events_of(session=s, request_id=request_id)).pauses)

    def needs_breach_reason(self, request_id: int, *, now: datetime | None = None) -> bool:
        """Whether the request missed its SLA and nobody has said why yet (then the SA or leader is asked)."""
        request = self.get(request_id)
        return bool(request and request.breach_reason is None
                    and sla_sweep.is_breached(request, now or self.now()))

    def record_breach_reason(self, request_id: int, actor: str, reason: str, note: str | None, *,
                             now: datetime | None = None) -> sla_sweep.BreachReasonResult:
        result = sla_sweep.record_breach_reason(self.engine, request_id, actor, reason, note, now or self.now(),
                                                config=self.config)
        self._wake()
        return result

    def decline(self, request_id: int, actor: str, reason: str, *, now: datetime | None = None) -> Change:
        from triage.core.errors import InvalidTransition

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if request.status in ("done", "declined"):
                raise InvalidTransition(f"{request.reference} is already {request.status}.")
            s.execute(sa.update(Request).where(Request.id == request_id).values(
                status="declined", closed_at=now, updated_at=now, next_check_at=None))
            s.refresh(request)
            self._record(
                s, request, kind="declined", actor=actor, source="slack", now=now, reason=reason,
                thread=f"{_mention(actor)} declined this request:\n"
                       + "\n".join("> " + line for line in _slack_escape(reason).splitlines()),
                gitlab={"add_labels": [], "remove_labels": [], "state_event": "close"},
                note=f"**Declined** in Slack:\n\n{_quote_md(reason)}",
                dms=[{"user": request.requester, "text": f"{_mention(actor)} declined your request "
                      f"*{request.reference}*:\n> {_slack_escape(reason)}"}],
            )
        self._wake()
        return Change(request, True, f"{request.reference} is declined; the AE has been told why.")


    # -- the board, coming back (webhooks and drift repair)

    def apply_gitlab_hook(self, *, event: str, payload: Mapping[str, Any], delivery_key: str | None,
                          now: datetime | None = None) -> str:
        """Apply an Issue Hook or Note Hook to the request it belongs to; returns what happened, briefly.

        Redeliveries (same X-Gitlab-Event-UUID / Idempotency-Key) change nothing, and the app's own changes
        coming back compare equal to what is stored, so they post nothing twice.
        """
        from triage.models import WebhookDelivery

        now = now or self.now()
        kind = payload.get("object_kind")
        if kind not in ("issue", "note"):
            return f"ignored: {kind or event or 'unknown'} events are not used"
        if delivery_key:
            try:
                with session_scope(self.engine) as s:
                    s.add(WebhookDelivery(key=delivery_key[:128], received_at=now))
            except IntegrityError:
                return "duplicate delivery: already applied"
        project = (payload.get("project") or {}).get("path_with_namespace") or ""
        if kind == "note":
            return self._apply_note(project, payload, now)
        attrs = payload.get("object_attributes") or {}
        snapshot = BoardState(
            labels=tuple(lbl.get("title", "") for lbl in payload.get("labels") or ()),
            closed=attrs.get("state") == "closed",
            assignee_ids=tuple(attrs.get("assignee_ids") or ()),
            assignee_usernames=tuple(a.get("username", "") for a in payload.get("assignees") or ()),
        )
        actor = (payload.get("user") or {}).get("username")
        return self.apply_board_state(project, attrs.get("iid"), attrs.get("description"), snapshot,
                                      actor=actor, now=now)

    def _find_by_issue(self, s, project: str, iid: int | None, description: str | None) -> Request | None:
        from triage.core.gitlab_text import find_marker

        request = repo.get_request_by_issue(session=s, project=project, iid=iid) if iid is not None else None
        if request is None:
            ref = find_marker(description)
            if ref and ref.isdigit():
                request = repo.get_request(session=s, request_id=int(ref))
        return request

    def apply_board_state(self, project: str, iid: int | None, description: str | None, state: BoardState, *,
                          actor: str | None, now: datetime) -> str:
        from triage.core.labels import STATUS_LABEL

        label_status = {v: k for k, v in STATUS_LABEL.items()}
        with session_scope(self.engine) as s:
            request = self._find_by_issue(s, project, iid, description)
            if request is None:
                return "ignored: not an issue this app created"
            owner = request.owner
            if state.assignee_ids or state.assignee_usernames:
                mapped = None
                for gid in state.assignee_ids:
                    mapped = repo.slack_user_for_gitlab(session=s, gitlab_user_id=gid)
                    if mapped:
                        break
                for name in () if mapped else state.assignee_usernames:
                    mapped = repo.slack_user_for_gitlab(session=s, gitlab_username=name)
                    if mapped:
                        break
                owner = mapped or owner
            elif request.owner is not None and not state.closed:
                owner = None  # unassigned on the board: back to the queue
            # The status follows the board list the card is in (the most advanced list label wins).
            listed = [label_status[lbl] for lbl in state.labels if lbl in label_status]
            status = request.status
            if state.closed:
                status = request.status if request.status == "declined" else "done"
            elif listed:
                status = max(listed, key=lambda st: list(STATUS_LABEL).index(st))
            elif request.status in ("done", "declined"):
                status = "claimed" if owner else "open"  # reopened
            if owner is None and status not in ("done", "declined"):
                status = "open"
            elif owner is not None and status == "open":
                status = "claimed"
            if status == request.status and owner == request.owner:
                return "no change"
            who = f"{actor} on GitLab" if actor else "someone on GitLab"
            values: dict[str, Any] = {"status": status, "owner": owner, "updated_at": now}
            parts = []
            restart = False
            if owner != request.owner:
                parts.append(f"assigned it to {_mention(owner)}" if owner else "unassigned it")
                if owner and request.allocated_at is None:
                    values.update(allocated_at=now, next_check_at=None)
                    repo.add_event(session=s, request_id=request.id, kind="sla_stop", source="system", at=now,
                                   late=now > request.deadline)
                elif owner is None and request.allocated_at is not None and status == "open":
                    values["allocated_at"] = None  # back in the queue: the clock runs on, as on unclaim
                    repo.add_event(session=s, request_id=request.id, kind="sla_start", source="system", at=now)
                    restart = True
            if status != request.status:
                parts.append(f"moved it to *{status}*")
                if status in ("done", "declined"):
                    values["closed_at"] = now
                elif request.status in ("done", "declined"):
                    values["closed_at"] = None
            s.execute(sa.update(Request).where(Request.id == request.id).values(**values))
            s.refresh(request)
            kind = ("closed" if status == "done" and request.status != "done" else
                    "reopened" if values.get("closed_at", 1) is None else "status")
            self._record(s, request, kind=kind, actor=actor, source="gitlab", now=now, status=status,
                         owner=owner, thread=f"{_slack_escape(who)} " + " and ".join(parts) + ".")
        if restart:
            self._reschedule(request.id, now)
        self._wake()
        return f"applied: {status}"

    def _apply_note(self, project: str, payload: Mapping[str, Any], now: datetime) -> str:
        attrs = payload.get("object_attributes") or {}
        issue = payload.get("issue") or {}
        body = attrs.get("note") or ""
        if attrs.get("noteable_type") != "Issue" or attrs.get("system"):
            return "ignored: not a comment on an issue"
        if NOTE_MARKER in body:
            return "ignored: the app's own note"
        with session_scope(self.engine) as s:
            request = self._find_by_issue(s, project, issue.get("iid"), issue.get("description"))
            if request is None:
                return "ignored: not an issue this app created"
            author = (payload.get("user") or {}).get("username") or "someone"
            text = body if len(body) <= 2500 else body[:2500] + "…"
            url = attrs.get("url")
            link = f" (<{url}|on GitLab>)" if url and "|" not in url and ">" not in url else ""
            self._record(s, request, kind="gitlab_comment", actor=author, source="gitlab", now=now,
                         thread=f"*{_slack_escape(author)}* commented{link}:\n"
                                + "\n".join("> " + line for line in _slack_escape(text).splitlines()))
        self._wake()
        return "applied: comment"


    def reconcile(self, *, tracker: Tracker, now: datetime | None = None, limit: int = 50,
                  interval: timedelta = RECONCILE_INTERVAL) -> int:
        """Drift repair: read what changed on each board since last time (bounded) and apply it.

        Webhooks get lost, and GitLab disables a hook after repeated failures; this pass makes the
        requests catch up with the boards anyway. Requests with GitLab changes of ours still queued are
        skipped: the board hasn't seen them yet, so it would look like someone undid them.
        """
        from triage.models import SyncState

        now = now or self.now()
        applied = 0
        for queue in self.config.queues:
            project = queue.gitlab_project
            with session_scope(self.engine) as s:
                state = s.get(SyncState, project)
                if state is not None and now - state.checked_at < interval:
                    continue
                if state is None:
                    oldest = s.exec(sa.select(sa.func.min(Request.created_at))
                                    .where(Request.gitlab_project == project)).scalar()
                    if oldest is None:
                        continue  # nothing filed there yet
                    cursor = oldest - timedelta(minutes=1)
                else:
                    cursor = state.updated_after
            issues = tracker.issues_updated_after(project, cursor, limit=limit)
            newest = cursor
            for issue in issues:
                newest = max(newest, issue.updated_at)
                with session_scope(self.engine) as s:
                    request = self._find_by_issue(s, project, issue.iid, issue.description)
                    if request is None or self._gitlab_pending(s, request.id):
                        continue
                result = self.apply_board_state(
                    project, issue.iid, issue.description,
                    BoardState(labels=tuple(issue.labels), closed=issue.state == "closed",
                               assignee_ids=tuple(issue.assignee_ids),
                               assignee_usernames=tuple(issue.assignee_usernames)),
                    actor=None, now=now)
                applied += result.startswith("applied")
            with session_scope(self.engine) as s:
                state = s.get(SyncState, project) or SyncState(project=project, updated_after=newest,
                                                               checked_at=now)
                # A full batch means more is waiting: come back on the next pass, not after the interval.
                state.updated_after, state.checked_at = newest, (now - interval if len(issues) >= limit else now)
                s.add(state)
        return applied

    def _gitlab_pending(self, s, request_id: int) -> bool:
        return s.exec(sa.select(OutboxEntry.id).where(OutboxEntry.lane == f"gitlab:{request_id}",
                                                      OutboxEntry.done_at.is_(None)).limit(1)).first() is not None


def _quote_md(text: str) -> str:
    from triage.core.gitlab_text import neutralize

    return "\n".join("> " + line for line in neutralize(text).splitlines())


class Services(WorkMixin):
    """The app's use cases, shared by the Slack listeners, the web routes and the worker."""

    def __init__(self, settings: Settings, engine: Engine, *, wake: Callable[[], None] | None = None):
        self.settings = settings
        self.engine = engine
        self._wake = wake or (lambda: None)

    @property
    def config(self) -> Config:
        return self.settings.config

    def set_wake(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def now(self) -> datetime:
        return datetime.now(UTC)

    def is_leader(self, user: str) -> bool:
        return user in self.config.slack.leaders

    # ------------------------------------------------------------ intake

    def last_queue(self, requester: str) -> str | None:
        with session_scope(self.engine) as s:
            key = repo.last_queue_of(session=s, requester=requester)
        return key if key and self.config.queue(key) else None

    def duplicate_of(self, *, opportunity_id: str | None, queue: str) -> Duplicate | None:
        if not opportunity_id:
            return None
        with session_scope(self.engine) as s:
            r = repo.open_request_for_opportunity(session=s, opportunity_id=opportunity_id, queue=queue)
            return Duplicate(r.id, r.reference, r.gitlab_url, r.status) if r else None

    def deadline_for(self, *, queue: Queue, request_type: str, expedite: bool, start: datetime,
                     pauses: Sequence[sla.Pause] = (), now: datetime | None = None) -> datetime:
        cal = sla_sweep.calendar_of(self.config, queue)
        target = sla_sweep.target_of(self.config, queue, request_type, expedite)
        return sla.deadline(start, target.as_timedelta(cal.day_length), cal, pauses, now=now)

    def submit(self, *, submission_key: str, requester: str, cleaned: Mapping[str, Any],
               now: datetime | None = None) -> SubmitResult:
        """Store the request and its first outbox entry in one transaction; nothing external here."""
        now = now or self.now()
        queue = self.config.queue(cleaned["queue"])
        if queue is None:  # validated before, but config may have changed between open and submit
            raise Rejected(f"unknown queue {cleaned['queue']!r}")
        deadline = self.deadline_for(queue=queue, request_type=cleaned["request_type"],
                                     expedite=bool(cleaned.get("expedite")), start=now)
        request = Request(
            submission_key=submission_key[:64], created_at=now, updated_at=now, requester=requester,
            request_type=cleaned["request_type"], queue=queue.key, customer_name=cleaned["customer_name"],
            opportunity_id=cleaned.get("opportunity"), expedite=bool(cleaned.get("expedite")),
            fields=_jsonable(cleaned), deadline=deadline, gitlab_project=queue.gitlab_project,
            slack_channel=queue.slack_channel,
        )
        request.next_check_at = sla_sweep.schedule(request, self.config, now)
        try:
            with session_scope(self.engine) as s:
                s.add(request)
                s.flush()
                repo.add_event(session=s, request_id=request.id, kind="submitted", source="slack",
                               actor=requester, at=now, deadline=deadline.isoformat())
                repo.add_event(session=s, request_id=request.id, kind="sla_start", source="system", at=now)
                outbox.enqueue(s, kind="create_issue", lane=f"gitlab:{request.id}",
                               dedupe_key=f"create_issue:{request.id}", request_id=request.id, now=now)
        except IntegrityError:
            # The same modal again (Slack retry, double click): hand back what the first one stored.
            with session_scope(self.engine) as s:
                existing = repo.get_request_by_submission(session=s, submission_key=submission_key[:64])
            if existing is None:
                raise
            return SubmitResult(existing.id, existing.reference, created=False)
        self._wake()
        return SubmitResult(request.id, request.reference, created=True)

    # ------------------------------------------------------------ delivery (worker)

    def deliver_due(self, *, tracker: Tracker | None, notifier: Notifier | None, now: datetime | None = None,
                    limit: int = 50) -> DeliveryReport:
        """Perform due outbox entries once each; failures wait with backoff, nothing is dropped."""
        now = now or self.now()
        report = DeliveryReport()
        kinds = [k for k, (needs_gitlab, needs_slack) in _HANDLERS_NEED.items()
                 if (tracker or not needs_gitlab) and (notifier or not needs_slack)]
        for entry in outbox.claim_due(self.engine, now=now, limit=limit, kinds=kinds):
            report.claimed += 1
            handler = getattr(self, f"_do_{entry.kind}")
            try:
                handler(entry, tracker=tracker, notifier=notifier, now=now)
            except RetryLater as e:
                when = outbox.retry(self.engine, entry, now=now, error=str(e), retry_after=e.retry_after)
                log.warning("outbox %s %s for request %s: %s; retrying at %s", entry.id, entry.kind,
                            entry.request_id, e, when.isoformat())
                self._on_delay(entry, e, now)
                report.retried += 1
            except DeliveryError as e:
                # Refused for good as sent (wrong project, missing scope...): keep it, retry slowly, so an
                # admin's fix lets it land; `triage check` and /healthz show the error.
                outbox.retry(self.engine, entry, now=now, error=f"refused: {e}",
                             retry_after=outbox.BACKOFF_CAP)
                log.error("outbox %s %s for request %s refused: %s", entry.id, entry.kind, entry.request_id, e)
                report.errors.append(str(e))
                report.retried += 1
            except Exception as e:
                error_id = uuid.uuid4().hex[:8]
                log.exception("outbox %s %s failed unexpectedly (error id %s)", entry.id, entry.kind, error_id)
                outbox.retry(self.engine, entry, now=now, error=f"unexpected error {error_id}: {e!r}")
                report.errors.append(f"{error_id}: {e!r}")
                report.retried += 1
            else:
                report.delivered += 1
        return report

    def _on_delay(self, entry: OutboxEntry, error: RetryLater, now: datetime) -> None:
        """The first time filing a request is held up, tell the AE it is safe and queued."""
        if entry.kind == "create_issue" and entry.attempts == 1 and entry.request_id:
            with session_scope(self.engine) as s:
                outbox.enqueue(s, kind="notify_queued", lane=f"slack:{entry.request_id}",
                               dedupe_key=f"notify_queued:{entry.request_id}", request_id=entry.request_id,
                               payload={"service": "GitLab"}, now=now)

    def _load(self, entry: OutboxEntry) -> Request:
        with session_scope(self.engine) as s:
            request = repo.get_request(session=s, request_id=entry.request_id)
        if request is None:
            raise Rejected(f"request {entry.request_id} no longer exists")
        return request

    def _complete(self, entry: OutboxEntry, now: datetime, then: Callable[[Any], None] | None = None) -> None:
        with session_scope(self.engine) as s:
            if then:
                then(s)
            outbox.complete(s, entry.id, now=now)

    def _do_create_issue(self, entry: OutboxEntry, *, tracker: Tracker, notifier: Notifier | None,
                         now: datetime) -> None:
        request = self._load(entry)
        queue = self.config.queue(request.queue)
        if not request.requester_name and notifier is not None:
            try:
                who = notifier.user_info(request.requester)
                request.requester_name, request.requester_tz = who.name or request.requester, who.tz or "UTC"
            except DeliveryError as e:  # the issue matters more than the name; use the id
                log.info("users.info for %s failed (%s); filing with the Slack id", request.requester, e)
        title, description = render_issue(
            request_id=request.id, reference=request.reference, request_type=request.request_type,
            cleaned=request.fields, requester_name=request.requester_name or request.requester,
            requester_tz=request.requester_tz, queue_name=queue.name if queue else request.queue,
            queue_tz=queue.timezone if queue else "UTC", deadline=request.deadline,
            parent_url=self._parent_url(request),
        )
        ref = None
        if entry.attempts > 1:
            # An earlier attempt may have created the issue and died before recording it.
            ref = tracker.find_issue_by_marker(request.gitlab_project, marker(request.id),
                                               created_after=request.created_at - timedelta(minutes=5))
        if ref is None:
            labels = labels_for_new_request(request.request_type, request.fields.get("asks", []),
                                            request.expedite)
            ref = tracker.create_issue(request.gitlab_project, title=title, description=description,
                                       labels=labels, due_date=self._due_date(request, queue))

        def record(s):
            s.execute(sa.update(Request).where(Request.id == request.id).values(
                gitlab_iid=ref.iid, gitlab_issue_id=ref.id, gitlab_url=ref.web_url, updated_at=now,
                requester_name=request.requester_name, requester_tz=request.requester_tz))
            repo.add_event(session=s, request_id=request.id, kind="issue_created", source="gitlab", at=now,
                           url=ref.web_url)
            outbox.enqueue(s, kind="post_card", lane=f"slack:{request.id}",
                           dedupe_key=f"post_card:{request.id}", request_id=request.id, now=now)

        self._complete(entry, now, record)

    def _due_date(self, request: Request, queue: Queue | None) -> date:
        tz = queue.tz if queue else UTC
        return request.deadline.astimezone(tz).date()

    def _parent_url(self, request: Request) -> str | None:
        parent = request.fields.get("parent_request")
        if not parent:
            return None
        ref = str(parent).strip().upper().removeprefix("SAR-")
        if ref.isdigit():
            with session_scope(self.engine) as s:
                p = repo.get_request(session=s, request_id=int(ref))
                return p.gitlab_url if p else None
        return None

    def _do_post_card(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        request = self._load(entry)
        ts = notifier.find_card(request) if entry.attempts > 1 else None
        if ts is None:
            with session_scope(self.engine) as s:
                events = repo.events_of(session=s, request_id=request.id)
            ts = notifier.post_card(request, events)

        def record(s):
            s.execute(sa.update(Request).where(Request.id == request.id).values(slack_ts=ts, updated_at=now))
            repo.add_event(session=s, request_id=request.id, kind="card_posted", source="slack", at=now)
            outbox.enqueue(s, kind="notify_landed", lane=f"slack:{request.id}",
                           dedupe_key=f"notify_landed:{request.id}", request_id=request.id, now=now)

        self._complete(entry, now, record)

    def _do_notify_landed(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        notifier.dm_landed(self._load(entry))
        self._complete(entry, now)

    def _do_notify_queued(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        request = self._load(entry)
        if request.gitlab_iid is None:  # already landed by now: the "landed" DM says it all
            notifier.dm_queued(request, entry.payload.get("service", "GitLab"))
        self._complete(entry, now)


    # -- side effects of working a request

    def _issue_of(self, request: Request) -> int:
        if request.gitlab_iid is None:
            raise RetryLater(f"{request.reference} has no GitLab issue yet")
        return request.gitlab_iid

    def _gitlab_user(self, slack_user: str, request: Request, *, tracker: Tracker, notifier: Notifier | None,
                     now: datetime) -> int | None:
        """The SA's GitLab user id: remembered, or found by their Slack email; else ask them once."""
        from triage.models import UserLink

        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user)
        if link and link.gitlab_user_id:
            return link.gitlab_user_id
        if link and link.gitlab_username:
            user = tracker.user_by_username(link.gitlab_username)
            if user:
                self._save_link(slack_user, user.id, user.username, link.email, now)
                return user.id
        email = link.email if link else None
        if email is None and notifier is not None:
            email = notifier.user_info(slack_user).email
        matches = tracker.users_by_email(email) if email else []
        if len(matches) == 1:
            self._save_link(slack_user, matches[0].id, matches[0].username, email, now)
            return matches[0].id
        with session_scope(self.engine) as s:
            if link is None:
                s.add(UserLink(slack_user=slack_user, email=email, updated_at=now))
            why = "no email in Slack" if not email else (
                "no GitLab user with that email" if not matches else "several GitLab users match that email")
            outbox.enqueue(s, kind="ask_gitlab_username", lane=f"slack:{request.id}",
                           dedupe_key=f"ask_gitlab:{slack_user}", request_id=request.id,
                           payload={"user": slack_user, "why": why}, now=now)
        return None

    def _save_link(self, slack_user: str, gitlab_id: int, username: str, email: str | None, now: datetime) -> None:
        from triage.models import UserLink

        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user) or UserLink(slack_user=slack_user)
            link.gitlab_user_id, link.gitlab_username, link.email, link.updated_at = gitlab_id, username, email, now
            s.add(link)

    def link_gitlab_username(self, slack_user: str, username: str, *, now: datetime | None = None) -> int:
        """The SA told us their GitLab username: remember it and assign their open requests on GitLab."""
        from triage.models import UserLink

        now = now or self.now()
        username = username.strip().lstrip("@")
        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user) or UserLink(slack_user=slack_user)
            link.gitlab_username, link.gitlab_user_id, link.updated_at = username, None, now
            s.add(link)
            mine = s.exec(sa.select(Request).where(Request.owner == slack_user,
                                                   Request.status.not_in(("done", "declined")))).scalars().all()
            for r in mine:
                outbox.enqueue(s, kind="gitlab_update", lane=f"gitlab:{r.id}",
                               dedupe_key=f"relink:{r.id}:{slack_user}:{now.isoformat()}", request_id=r.id,
                               payload={"assignee": slack_user}, now=now)
        self._wake()
        return len(mine)

    def _do_gitlab_update(self, entry: OutboxEntry, *, tracker: Tracker, notifier: Notifier | None,
                          now: datetime) -> None:
        request = self._load(entry)
        iid = self._issue_of(request)
        p = entry.payload
        assignee_ids: list[int] | None = None
        if "assignee" in p:
            if p["assignee"] is None:
                assignee_ids = []
            else:
                uid = self._gitlab_user(p["assignee"], request, tracker=tracker, notifier=notifier, now=now)
                assignee_ids = [uid] if uid is not None else None
        due = date.fromisoformat(p["due_date"]) if p.get("due_date") else None
        tracker.update_issue(request.gitlab_project, iid, add_labels=p.get("add_labels", ()),
                             remove_labels=p.get("remove_labels", ()), assignee_ids=assignee_ids,
                             state_event=p.get("state_event"), due_date=due)
        self._complete(entry, now)

    def _do_gitlab_note(self, entry: OutboxEntry, *, tracker: Tracker, now: datetime, **_: Any) -> None:
        request = self._load(entry)
        tracker.add_note(request.gitlab_project, self._issue_of(request), entry.payload["body"] + "\n\n" + NOTE_MARKER)
        self._complete(entry, now)

    def _card_ts(self, request: Request) -> str:
        if request.slack_ts is None:
            raise RetryLater(f"{request.reference} has no card yet")
        return request.slack_ts

    def _do_card_update(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        request = self._load(entry)
        self._card_ts(request)
        with session_scope(self.engine) as s:
            events = repo.events_of(session=s, request_id=request.id)
        notifier.update_card(request, events)
        self._complete(entry, now)

    def _do_thread_reply(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        request = self._load(entry)
        if entry.payload.get("unless_allocated") and request.allocated_at is not None:
            self._complete(entry, now)  # an SLA nudge queued just before the claim: no longer true
            return
        notifier.thread_reply(request.slack_channel, self._card_ts(request), entry.payload["text"])
        self._complete(entry, now)

    def _do_post(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        ask = entry.request_id if entry.payload.get("ask_breach_reason") else None
        notifier.post(entry.payload["channel"], entry.payload["text"], breach_request_id=ask)
        self._complete(entry, now)

    def _do_dm(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        p = entry.payload
        if p.get("kind") == "needs_info":
            notifier.dm_needs_info(self._load(entry), p["question"], p.get("asked_by"))
        else:
            notifier.dm_text(p["user"], p["text"])
        self._complete(entry, now)

    def _do_ask_gitlab_username(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        notifier.ask_gitlab_username(self._load(entry), entry.payload["user"], entry.payload.get("why", ""))
        self._complete(entry, now)


# kind -> (needs GitLab, needs Slack). An unconfigured service leaves its entries waiting.
_HANDLERS_NEED: dict[str, tuple[bool, bool]] = {
    "create_issue": (True, False),
    "post_card": (False, True),
    "notify_landed": (False, True),
    "notify_queued": (False, True),
    "gitlab_update": (True, False),
    "gitlab_note": (True, False),
    "card_update": (False, True),
    "thread_reply": (False, True),
    "post": (False, True),
    "dm": (False, True),
    "ask_gitlab_username": (False, True),
}

