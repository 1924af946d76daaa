"""Outbox delivery: each side effect on GitLab or Slack, performed once, retried with backoff."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from triage import outbox, repo
from triage.config import Queue
from triage.core.errors import DeliveryError, NotAllowed, RetryLater
from triage.core.gitlab_text import marker
from triage.core.issue_template import render_issue
from triage.core.labels import labels_for_new_request
from triage.core.lifecycle import CLOSED_STATUSES
from triage.db import session_scope
from triage.models import EventKind, OutboxEntry, Request, UserLink
from triage.services import summary
from triage.services.base import NOTE_MARKER, ServiceBase
from triage.services.ports import Notifier, Tracker

log = logging.getLogger(__name__)

# Side effects delivered side by side. GitLab.com allows 2,000 API calls a minute per user and Slack's
# chat.postMessage about one a second per channel; 8 at a time stays well inside both.
DELIVERY_THREADS = 8
LEASE_USABLE = 0.5  # an entry starts only within this part of its lease (the rest covers its calls)


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    claimed: int = 0
    errors: list[str] = field(default_factory=list)
    # (kind, request id, "delivered" | "retry" | "failed") per entry, for the worker's log lines and metrics
    outcomes: list[tuple[str, int | None, str]] = field(default_factory=list)


class DeliveryMixin(ServiceBase):
    """The worker's half: perform what the outbox holds."""

    def deliver_due(self, *, tracker: Tracker | None, notifier: Notifier | None, now: datetime | None = None,
                    limit: int = 50, threads: int = DELIVERY_THREADS) -> DeliveryReport:
        """Perform due outbox entries once each; failures wait with backoff, nothing is dropped.

        A batch holds at most one entry per lane (one request, one service), so its entries are
        independent and run side by side: a slow GitLab delays a burst by one round trip, not by one
        round trip per request.
        """
        now = now or self.now()
        report = DeliveryReport()
        kinds = [k for k, h in HANDLERS.items() if (tracker or not h.gitlab) and (notifier or not h.slack)]
        lease = timedelta(seconds=self.settings.outbox_lease_seconds)
        entries = outbox.claim_due(self.engine, now=now, limit=limit, kinds=kinds, lease=lease)
        report.claimed = len(entries)
        # The batch's leases run from the claim, but its entries start one after another on `threads`
        # threads: one that only gets its turn when most of its lease is gone may already have been taken
        # by another worker (seen at scale: two cards for one request), so it is left to that worker.
        claimed_at, usable = time.monotonic(), LEASE_USABLE * lease.total_seconds()

        def one(entry: OutboxEntry) -> str | None:
            if time.monotonic() - claimed_at > usable:
                log.info("outbox %s %s: lease nearly over before its turn; left for the next claim",
                         entry.id, entry.kind)
                return ""
            return self._deliver_one(entry, tracker=tracker, notifier=notifier, now=now)

        with outbox.keep_leased(self.engine, entries, claimed_at=now, lease=lease):
            if len(entries) > 1 and threads > 1:
                with ThreadPoolExecutor(max_workers=min(threads, len(entries)),
                                        thread_name_prefix="triage-delivery") as pool:
                    outcomes = list(pool.map(one, entries))
            else:
                outcomes = [one(e) for e in entries]
        for entry, outcome in zip(entries, outcomes, strict=True):
            if outcome is None:
                report.delivered += 1
            else:
                report.retried += 1
                if outcome:
                    report.errors.append(outcome)
            report.outcomes.append((entry.kind, entry.request_id,
                                    "delivered" if outcome is None else "failed" if outcome else "retry"))
        return report

    def _deliver_one(self, entry: OutboxEntry, *, tracker: Tracker | None, notifier: Notifier | None,
                     now: datetime) -> str | None:
        """Deliver one entry: None when done, "" when it waits for a retry, else the error to report."""
        handler = HANDLERS[outbox.Kind(entry.kind)]
        try:
            self._wait_out_hold(entry, now)
            handler.run(self, entry, tracker=tracker, notifier=notifier, now=now)
        except RetryLater as e:
            when = outbox.retry(self.engine, entry, now=now, error=str(e), retry_after=e.retry_after,
                                no_effect=e.applied is False)
            if e.retry_after is not None:  # the service asked us to wait: everything for it waits
                outbox.hold_service(self.engine, lane=entry.lane, until=when)
            log.warning("outbox %s %s for request %s: %s; retrying at %s", entry.id, entry.kind,
                        entry.request_id, e, when.isoformat())
            self._on_delay(entry, e, now)
            return ""
        except DeliveryError as e:
            # Refused for good as sent (wrong project, missing scope...): keep it, retry slowly, so an
            # admin's fix lets it land; `triage check` and /healthz show the error.
            outbox.retry(self.engine, entry, now=now, error=f"refused: {e}", retry_after=outbox.BACKOFF_CAP)
            log.error("outbox %s %s for request %s refused: %s", entry.id, entry.kind, entry.request_id, e)
            return str(e)
        except Exception as e:
            error_id = uuid.uuid4().hex[:8]
            log.exception("outbox %s %s failed unexpectedly (error id %s)", entry.id, entry.kind, error_id)
            outbox.retry(self.engine, entry, now=now, error=f"unexpected error {error_id}: {e!r}")
            return f"{error_id}: {e!r}"
        return None

    def _wait_out_hold(self, entry: OutboxEntry, now: datetime) -> None:
        """RetryLater, without a call, while the entry's service is on hold: another worker process (or
        another batch of this one) was told to wait after this batch was claimed. Its Retry-After counts
        for every caller with the same token; without this check the entries already claimed went on
        calling through it (the 2,000-request burst under Slack's limits: 4,989 429s in 13,154 calls, and
        2,742 in 10,893 with it)."""
        until = outbox.held_until(self.engine, lane=entry.lane, now=now)
        if until is not None:
            raise RetryLater(f"holding back: {outbox.service_of(entry.lane)} asked us to wait",
                             (until - now).total_seconds(), applied=False)

    def _on_delay(self, entry: OutboxEntry, error: RetryLater, now: datetime) -> None:
        """The first time filing a request is held up, tell the AE it is safe and queued."""
        if entry.kind == outbox.Kind.CREATE_ISSUE and entry.attempts == 1 and entry.request_id:
            with session_scope(self.engine) as s:
                outbox.enqueue(s, kind=outbox.Kind.NOTIFY_QUEUED, key=("notify_queued", entry.request_id),
                               request_id=entry.request_id,
                               payload={"service": "GitLab"}, now=now)

    def _complete(self, entry: OutboxEntry, now: datetime, then: Callable[[Any], None] | None = None) -> None:
        with session_scope(self.engine) as s:
            if then:
                then(s)
            outbox.complete(s, entry.id, now=now)

    def _do_create_issue(self, entry: OutboxEntry, *, tracker: Tracker, now: datetime, **_: Any) -> None:
        """File the issue. GitLab only: the AE's name came with the submission (no Slack call here)."""
        request = self._load(entry)
        queue = self.config.queue(request.queue)
        policy = self.config.policy(request.queue)
        details = request.details
        notes = []
        if policy is not None and policy.short_notice(request.request_type, details.event_date, request.created_at):
            notes.append("**Short notice:** the event is sooner than the time the SA team has to secure an SA; "
                         "leaders have been told.")
        sa_before = self._earlier_sa(request.id)
        if sa_before:
            notes.append(f"**Same SA for the opportunity:** {sa_before[1]} was worked by an SA, who has been "
                         "asked first.")
        title, description = render_issue(
            request_id=request.id, reference=request.reference, request_type=request.request_type,
            cleaned=details.model_dump(), requester_name=request.requester_name or request.requester,
            requester_tz=request.requester_tz, queue_name=queue.name if queue else request.queue,
            queue_tz=queue.timezone if queue else "UTC", deadline=request.deadline,
            parent_url=self._parent_url(request),
            opportunity_url=self.config.salesforce.opportunity_url(request.opportunity_id),
            sla_text=policy.describe(request.request_type, request.expedite, request.created_at,
                                     request.deadline, event_date=details.event_date) if policy else None,
            notes=notes,
        )
        ref = None
        if entry.attempts > 1:
            # An earlier attempt may have created the issue and died before recording it.
            ref = tracker.find_issue_by_marker(request.gitlab_project, marker(request.id),
                                               created_after=request.created_at - timedelta(minutes=5))
        if ref is None:
            labels = labels_for_new_request(request.request_type, details.asks, request.expedite)
            ref = tracker.create_issue(request.gitlab_project, title=title, description=description,
                                       labels=labels, due_date=self._due_date(request, queue))

        def record(s):
            s.execute(sa.update(Request).where(Request.id == request.id).values(
                gitlab_iid=ref.iid, gitlab_issue_id=ref.id, gitlab_url=ref.web_url, updated_at=now))
            repo.add_event(session=s, request_id=request.id, kind=EventKind.ISSUE_CREATED, source="gitlab", at=now,
                           url=ref.web_url)
            outbox.enqueue(s, kind=outbox.Kind.POST_CARD, key=("post_card", request.id), lane=outbox.Lane.CARD,
                           request_id=request.id, now=now)

        self._complete(entry, now, record)

    def _due_date(self, request: Request, queue: Queue | None) -> date:
        tz = queue.tz if queue else UTC
        return request.deadline.astimezone(tz).date()

    def _earlier_sa(self, request_id: int, s=None) -> tuple[str, str] | None:
        """(SA, earlier reference) when this request's opportunity already had an SA."""
        if s is None:
            with session_scope(self.engine) as s:
                return self._earlier_sa(request_id, s)
        for e in repo.events_of(session=s, request_id=request_id):
            if e.kind == EventKind.OPPORTUNITY_SA:
                return e.detail.get("sa"), e.detail.get("earlier")
        return None

    def _parent_url(self, request: Request) -> str | None:
        parent = request.details.parent_request
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
            repo.add_event(session=s, request_id=request.id, kind=EventKind.CARD_POSTED, source="slack", at=now)
            outbox.enqueue(s, kind=outbox.Kind.NOTIFY_LANDED, key=("notify_landed", request.id),
                           request_id=request.id, now=now)
            earlier = self._earlier_sa(request.id, s)
            if earlier and earlier[0]:
                # The same SA for the life of the opportunity: say so where the SAs look.
                outbox.enqueue(s, kind=outbox.Kind.THREAD_REPLY, key=("opportunity_sa_thread", request.id),
                               request_id=request.id, now=now,
                               payload={"text": f"<@{earlier[0]}> worked this opportunity on {earlier[1]} and "
                                                "has been asked first, so it keeps the same SA."})

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

        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user)
        if link and link.gitlab_user_id:
            return link.gitlab_user_id
        if link and link.gitlab_username:
            user = tracker.user_by_username(link.gitlab_username)
            if user:
                # The SA's Slack e-mail was looked up by the step before this one (same lane).
                email = link.email
                if self._vouched(link) or (email and email.strip().lower() in user.emails):
                    self._save_link(slack_user, user.id, user.username, email, now)
                    return user.id
                self._unconfirmed_link(slack_user, request, user.username, email, now)
                return None
        email = link.email if link else None  # looked up in Slack by the step before this one
        matches = tracker.users_by_email(email) if email else []
        if len(matches) == 1:
            self._save_link(slack_user, matches[0].id, matches[0].username, email, now)
            return matches[0].id
        with session_scope(self.engine) as s:
            if link is None:
                s.add(UserLink(slack_user=slack_user, email=email, updated_at=now))
            why = "no email in Slack" if not email else (
                "no GitLab user with that email" if not matches else "several GitLab users match that email")
            outbox.enqueue(s, kind=outbox.Kind.ASK_GITLAB_USERNAME, key=("ask_gitlab", slack_user),
                           request_id=request.id,
                           payload={"user": slack_user, "why": why}, now=now)
        return None

    def _vouched(self, link: UserLink) -> bool:
        """A username a leader gave for someone else is trusted as given."""
        return bool(link.linked_by and link.linked_by != link.slack_user and self.is_leader(link.linked_by))

    def _unconfirmed_link(self, slack_user: str, request: Request, username: str, email: str | None,
                          now: datetime) -> None:
        """The typed GitLab user doesn't show the SA's Slack e-mail: nobody's word is an identity, so the
        username is forgotten, nothing is assigned to that user, and the SA is told what to do."""
        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user)
            if link is not None:
                link.gitlab_username, link.gitlab_user_id, link.linked_by, link.updated_at = None, None, None, now
                s.add(link)
            why = (f"GitLab user @{username} doesn't show {email or 'your Slack e-mail'} as its public e-mail, "
                   "so I can't confirm it is you. Set that e-mail as your public e-mail on GitLab and link "
                   "again, or ask a leader to link you")
            outbox.enqueue(s, kind=outbox.Kind.ASK_GITLAB_USERNAME,
                           key=("ask_gitlab", slack_user, username.lower(), "unconfirmed"),
                           request_id=request.id, payload={"user": slack_user, "why": why}, now=now)

    def _save_link(self, slack_user: str, gitlab_id: int, username: str, email: str | None, now: datetime) -> None:

        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user) or UserLink(slack_user=slack_user)
            link.gitlab_user_id, link.gitlab_username, link.email, link.updated_at = gitlab_id, username, email, now
            s.add(link)

    def link_gitlab_username(self, slack_user: str, username: str, *, by: str | None = None,
                             now: datetime | None = None, once: str | None = None) -> int:
        """The GitLab username of `slack_user`, given by them (`by` unset) or by a leader: remember it and
        assign their open requests on GitLab. A username someone gave for themself is used only once the
        worker has confirmed that GitLab user shows their Slack e-mail; only leaders may link others."""

        now = now or self.now()
        by = by or slack_user
        if by != slack_user and not self.is_leader(by):
            raise NotAllowed("Only leaders can link someone else's GitLab account.")
        username = username.strip().lstrip("@")
        with session_scope(self.engine) as s:
            if not self._first_submission(s, once, "link_gitlab_username", now):
                return 0
            link = repo.get_user_link(session=s, slack_user=slack_user) or UserLink(slack_user=slack_user)
            link.gitlab_username, link.gitlab_user_id, link.updated_at = username, None, now
            link.linked_by = by
            s.add(link)
            mine = s.exec(sa.select(Request).where(Request.owner == slack_user,
                                                   Request.status.not_in(CLOSED_STATUSES))).scalars().all()
            for r in mine:
                outbox.enqueue(s, kind=outbox.Kind.GITLAB_UPDATE,
                               key=("relink", r.id, slack_user, now.isoformat()), request_id=r.id,
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

    def _do_lookup_sa_email(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        """Remember the SA's Slack email, for the GitLab update queued right after this in the same lane."""
        user = entry.payload["user"]
        email = notifier.user_info(user).email
        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=user) or UserLink(slack_user=user)
            if email and not link.email:
                link.email, link.updated_at = email, now
                s.add(link)
            outbox.complete(s, entry.id, now=now)

    def _do_publish_home(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        """The person's Home as it is now (what changed since the entry was queued included)."""
        user = entry.payload["user"]
        content = summary.home_content(self.engine, self.config, user, sa_queues=entry.payload.get("sa_queues", ()),
                                       now=now)
        notifier.publish_home(user, content, now)
        self._complete(entry, now)

    def _do_ask_gitlab_username(self, entry: OutboxEntry, *, notifier: Notifier, now: datetime, **_: Any) -> None:
        notifier.ask_gitlab_username(self._load(entry), entry.payload["user"], entry.payload.get("why", ""))
        self._complete(entry, now)


@dataclass(frozen=True)
class Handler:
    """How one kind of outbox entry is delivered, and which services it needs. An unconfigured service
    leaves its entries waiting."""

    run: Callable[..., None]
    gitlab: bool = False
    slack: bool = False


K = outbox.Kind
HANDLERS: dict[outbox.Kind, Handler] = {
    K.CREATE_ISSUE: Handler(DeliveryMixin._do_create_issue, gitlab=True),
    K.POST_CARD: Handler(DeliveryMixin._do_post_card, slack=True),
    K.NOTIFY_LANDED: Handler(DeliveryMixin._do_notify_landed, slack=True),
    K.NOTIFY_QUEUED: Handler(DeliveryMixin._do_notify_queued, slack=True),
    K.GITLAB_UPDATE: Handler(DeliveryMixin._do_gitlab_update, gitlab=True),
    K.GITLAB_NOTE: Handler(DeliveryMixin._do_gitlab_note, gitlab=True),
    K.CARD_UPDATE: Handler(DeliveryMixin._do_card_update, slack=True),
    K.THREAD_REPLY: Handler(DeliveryMixin._do_thread_reply, slack=True),
    K.POST: Handler(DeliveryMixin._do_post, slack=True),
    K.DM: Handler(DeliveryMixin._do_dm, slack=True),
    K.ASK_GITLAB_USERNAME: Handler(DeliveryMixin._do_ask_gitlab_username, slack=True),
    K.LOOKUP_SA_EMAIL: Handler(DeliveryMixin._do_lookup_sa_email, slack=True),
    K.PUBLISH_HOME: Handler(DeliveryMixin._do_publish_home, slack=True),
}
# Every kind has exactly one way out: a handler here, or Salesforce's delivery (triage.services.crm).
assert set(HANDLERS) | outbox.SALESFORCE_KINDS == set(outbox.Kind) and not set(HANDLERS) & outbox.SALESFORCE_KINDS
