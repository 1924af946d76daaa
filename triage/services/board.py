"""The board, coming back: GitLab Issue and Note Hooks, and drift repair when hooks are lost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from triage import repo
from triage.core.gitlab_text import find_marker
from triage.core.labels import EXPEDITE, STATUS_LABEL, status_dm
from triage.core.lifecycle import CLOSED_STATUSES
from triage.core.slack_text import escape, quote_lines
from triage.db import session_scope
from triage.models import EventKind, OutboxEntry, Request, SyncState, WebhookDelivery
from triage.services.base import NOTE_MARKER, RECONCILE_INTERVAL, ServiceBase, _mention
from triage.services.ports import Tracker


@dataclass(frozen=True)
class BoardState:
    """What the GitLab issue says now: its labels, open or closed, and who is assigned."""

    labels: tuple[str, ...]
    closed: bool
    assignee_ids: tuple[int, ...] = ()
    assignee_usernames: tuple[str, ...] = ()



class BoardMixin(ServiceBase):
    """Apply what happened on a GitLab board to the request, its card and its thread."""

    def apply_gitlab_hook(self, *, event: str, payload: Mapping[str, Any], delivery_key: str | None,
                          now: datetime | None = None) -> str:
        """Apply an Issue Hook or Note Hook to the request it belongs to; returns what happened, briefly.

        Redeliveries (same X-Gitlab-Event-UUID / Idempotency-Key) change nothing, and the app's own changes
        coming back compare equal to what is stored, so they post nothing twice.
        """

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

        request = repo.get_request_by_issue(session=s, project=project, iid=iid) if iid is not None else None
        if request is None:
            ref = find_marker(description)
            if ref and ref.isdigit():
                request = repo.get_request(session=s, request_id=int(ref))
        return request

    def apply_board_state(self, project: str, iid: int | None, description: str | None, state: BoardState, *,
                          actor: str | None, now: datetime) -> str:

        label_status = {v: k for k, v in STATUS_LABEL.items()}
        with session_scope(self.engine) as s:
            request = self._find_by_issue(s, project, iid, description)
            if request is None:
                return "ignored: not an issue this app created"
            request_id, was_expedited, closed = request.id, request.expedite, request.status in CLOSED_STATUSES
            # Our own label change still queued: the board has not seen it, so its labels are stale.
            ours_pending = self._gitlab_pending(s, request_id)
        expedited = None
        if (EXPEDITE in state.labels) != was_expedited and not (closed or state.closed or ours_pending):
            # The Expedite label added or removed on the board re-targets the SLA (deadline, due date, thread).
            expedited = self.set_expedite(request_id, actor, EXPEDITE in state.labels, source="gitlab", now=now)
        result = self._apply_board_lists(project, iid, description, state, actor=actor, now=now,
                                         label_status=label_status)
        if result == "no change" and expedited is not None and expedited.changed:
            return "applied: " + ("expedited" if EXPEDITE in state.labels else "no longer expedited")
        return result

    def _apply_board_lists(self, project: str, iid: int | None, description: str | None, state: BoardState, *,
                           actor: str | None, now: datetime, label_status: dict[str, str]) -> str:
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
            elif request.status in CLOSED_STATUSES:
                status = "claimed" if owner else "open"  # reopened
            if owner is None and status not in CLOSED_STATUSES:
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
                    repo.add_event(session=s, request_id=request.id, kind=EventKind.SLA_STOP, source="system", at=now,
                                   late=now > request.deadline)
                elif owner is None and request.allocated_at is not None and status == "open":
                    values["allocated_at"] = None  # back in the queue: the clock runs on, as on unclaim
                    repo.add_event(session=s, request_id=request.id, kind=EventKind.SLA_START, source="system", at=now)
                    restart = True
            if status != request.status:
                parts.append(f"moved it to *{status}*")
                if status in CLOSED_STATUSES:
                    values["closed_at"] = now
                elif request.status in CLOSED_STATUSES:
                    values["closed_at"] = None
            previous_status = request.status
            s.execute(sa.update(Request).where(Request.id == request.id).values(**values))
            s.refresh(request)
            kind = (EventKind.CLOSED if status == "done" and request.status != "done" else
                    EventKind.REOPENED if values.get("closed_at", 1) is None else EventKind.STATUS)
            dms = []
            if status == "demo_ready" != previous_status and (text := status_dm(status, request.reference,
                                                                escape(request.customer_name))):
                dms.append({"user": request.requester, "text": text})
            self._record(s, request, kind=kind, actor=actor, source="gitlab", now=now, status=status,
                         owner=owner, thread=f"{escape(who)} " + " and ".join(parts) + ".", dms=dms)
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
            self._record(s, request, kind=EventKind.GITLAB_COMMENT, actor=author, source="gitlab", now=now,
                         thread=f"*{escape(author)}* commented{link}:\n"
                                + quote_lines(text))
        self._wake()
        return "applied: comment"


    def reconcile(self, *, tracker: Tracker, now: datetime | None = None, limit: int = 50,
                  interval: timedelta = RECONCILE_INTERVAL) -> int:
        """Drift repair: read what changed on each board since last time (bounded) and apply it.

        Webhooks get lost, and GitLab disables a hook after repeated failures; this pass makes the
        requests catch up with the boards anyway. Requests with GitLab changes of ours still queued are
        skipped: the board hasn't seen them yet, so it would look like someone undid them.
        """

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


