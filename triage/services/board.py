"""The board, coming back: GitLab Issue and Note Hooks, and drift repair when hooks are lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage import repo
from triage.core.gitlab_hooks import GitLabHook, NoteHook
from triage.core.labels import EXPEDITE, STATUS_LABEL, status_dm
from triage.core.lifecycle import CLOSED_STATUSES
from triage.core.slack_text import escape, quote_lines, slack_link
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

    def apply_gitlab_hook(self, *, event: str, hook: GitLabHook, delivery_key: str | None,
                          bot_user_id: int | None = None, now: datetime | None = None) -> str:
        """Apply a validated Issue Hook or Note Hook to the request it belongs to; returns what happened.

        A hook speaks only for its own issue: its project must be a configured queue's project and
        (project, iid) the issue this app filed for the request. The marker in a description is never
        read here: anyone who can create an issue can copy it. A redelivery (same Idempotency-Key, which
        GitLab keeps across retries and "Resend request") changes nothing; the key is recorded in the
        same transaction as the change, so a delivery that failed is applied when it comes again.
        """
        now = now or self.now()
        project = self._queue_project(hook.project.path_with_namespace)
        if project is None:
            return "ignored: not a configured queue's project"
        if isinstance(hook, NoteHook):
            return self._apply_note(project, hook, delivery_key, bot_user_id, now)
        attrs = hook.object_attributes
        snapshot = BoardState(
            labels=tuple(lbl.title for lbl in hook.labels),
            closed=attrs.state == "closed",
            assignee_ids=tuple(attrs.assignee_ids),
            assignee_usernames=tuple(a.username for a in hook.assignees if a.username),
        )
        actor = hook.user.username if hook.user and hook.user.username else None
        return self.apply_board_state(project, attrs.iid, snapshot, issue_id=attrs.id, actor=actor, now=now,
                                      delivery_key=delivery_key)

    def _queue_project(self, path: str) -> str | None:
        """The configured spelling of a queue's GitLab project, or None when no queue uses it."""
        return next((q.gitlab_project for q in self.config.queues
                     if q.gitlab_project.lower() == path.lower()), None)

    def _find_by_issue(self, s, project: str, iid: int, issue_id: int | None = None) -> Request | None:
        """The request whose own issue is project#iid (and, when known, GitLab's global issue id)."""
        request = repo.get_request_by_issue(session=s, project=project, iid=iid)
        if request is not None and issue_id is not None and request.gitlab_issue_id not in (None, issue_id):
            return None  # same number, another issue (the project was recreated or renamed over)
        return request

    def _first_delivery(self, s, delivery_key: str | None, now: datetime) -> bool:
        """Record the delivery in this transaction; False when it was already applied."""
        if not delivery_key:
            return True
        dialect = s.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # ON CONFLICT DO NOTHING waits for a concurrent transaction holding the same key: if that one
        # commits, this is a duplicate; if it rolls back (it failed), this delivery applies.
        stmt = (insert(WebhookDelivery).values(key=delivery_key, received_at=now)
                .on_conflict_do_nothing(index_elements=["key"]).returning(WebhookDelivery.key))
        return s.execute(stmt).first() is not None

    def apply_board_state(self, project: str, iid: int, state: BoardState, *, actor: str | None, now: datetime,
                          issue_id: int | None = None, delivery_key: str | None = None) -> str:

        label_status = {v: k for k, v in STATUS_LABEL.items()}
        with session_scope(self.engine) as s:
            if delivery_key and s.get(WebhookDelivery, delivery_key) is not None:
                return "duplicate delivery: already applied"
            request = self._find_by_issue(s, project, iid, issue_id)
            if request is None:
                return "ignored: not an issue this app created"
            request_id, was_expedited, closed = request.id, request.expedite, request.status in CLOSED_STATUSES
            # Our own label change still queued: the board has not seen it, so its labels are stale.
            ours_pending = self._gitlab_pending(s, request_id)
        expedited = None
        if (EXPEDITE in state.labels) != was_expedited and not (closed or state.closed or ours_pending):
            # The Expedite label added or removed on the board re-targets the SLA (deadline, due date, thread).
            # Idempotent by itself (the same value again is a no-op), so a delivery that fails after this
            # step and comes again does not expedite twice.
            expedited = self.set_expedite(request_id, actor, EXPEDITE in state.labels, source="gitlab", now=now)
        result = self._apply_board_lists(project, iid, issue_id, state, actor=actor, now=now,
                                         label_status=label_status, delivery_key=delivery_key)
        if result == "no change" and expedited is not None and expedited.changed:
            return "applied: " + ("expedited" if EXPEDITE in state.labels else "no longer expedited")
        return result

    def _apply_board_lists(self, project: str, iid: int, issue_id: int | None, state: BoardState, *,
                           actor: str | None, now: datetime, label_status: dict[str, str],
                           delivery_key: str | None) -> str:
        with session_scope(self.engine) as s:
            # The delivery key commits with the change it made: a delivery that failed is applied when it
            # comes again, one that landed is a duplicate.
            if not self._first_delivery(s, delivery_key, now):
                return "duplicate delivery: already applied"
            request = self._find_by_issue(s, project, iid, issue_id)
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
            kind = (EventKind.CLOSED if status == "done" and previous_status != "done" else
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

    def _apply_note(self, project: str, hook: NoteHook, delivery_key: str | None, bot_user_id: int | None,
                    now: datetime) -> str:
        attrs = hook.object_attributes
        if attrs.noteable_type != "Issue" or attrs.system or hook.issue is None:
            return "ignored: not a comment on an issue"
        # The app's own notes are those its GitLab user wrote *and* marked: anyone can type the marker.
        if NOTE_MARKER in attrs.note and bot_user_id is not None and hook.user.id == bot_user_id:
            return "ignored: the app's own note"
        with session_scope(self.engine) as s:
            if not self._first_delivery(s, delivery_key, now):
                return "duplicate delivery: already applied"
            request = self._find_by_issue(s, project, hook.issue.iid, hook.issue.id)
            if request is None:
                return "ignored: not an issue this app created"
            author = hook.user.username or "someone"
            body = attrs.note
            text = body if len(body) <= 2500 else body[:2500] + "…"
            # The link is built from the issue URL GitLab gave the app and the note's numeric id, never
            # from the payload's own `url`, which is only as trustworthy as whoever sent it.
            url = f"{request.gitlab_url}#note_{attrs.id}" if request.gitlab_url else None
            link = f" ({slack_link(url, 'on GitLab')})" if url and slack_link(url, "on GitLab") else ""
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
                    request = self._find_by_issue(s, project, issue.iid)
                    if request is None or self._gitlab_pending(s, request.id):
                        continue
                result = self.apply_board_state(
                    project, issue.iid,
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


