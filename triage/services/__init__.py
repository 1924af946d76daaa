"""Use cases. Imports core, repo and models; talks to GitLab and Slack only through the ports in
`triage.services.ports`, which the worker fills with real adapters (gitlab_tracker, slack.notifier).

    Services = intake (here) + WorkMixin (work.py) + BoardMixin (board.py) + DeliveryMixin (delivery.py)
               + CrmMixin (crm.py: Salesforce) + OutcomesMixin (outcomes.py: technical outcomes, win rate)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from triage import outbox, repo
from triage.config import Config, Settings
from triage.core import sla_policy
from triage.core.errors import Rejected
from triage.core.fields import RequestFields
from triage.core.slack_text import escape
from triage.db import read_scope, session_scope
from triage.models import EventKind, Request, reference_of
from triage.services import sla_sweep
from triage.services.base import NOTE_MARKER, Change
from triage.services.board import BoardMixin, BoardState
from triage.services.crm import CrmMixin
from triage.services.delivery import DeliveryMixin, DeliveryReport
from triage.services.outcomes import OutcomesMixin
from triage.services.ports import Notifier, SlackUser, Tracker
from triage.services.work import WorkMixin

LAST_QUEUE_TTL = 600.0  # seconds a remembered default queue is trusted

__all__ = ["NOTE_MARKER", "BoardState", "Change", "DeliveryReport", "Duplicate", "Notifier", "Services",
           "SlackUser", "SubmitResult", "Tracker"]


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
    queue: str = ""
    submission_key: str | None = None  # the modal it was submitted from


class Services(WorkMixin, BoardMixin, DeliveryMixin, CrmMixin, OutcomesMixin):
    """The app's use cases, shared by the Slack listeners, the web routes and the worker."""

    def __init__(self, settings: Settings, engine: Engine, *, wake: Callable[[], None] | None = None):
        self.settings = settings
        self.engine = engine
        self._wake = wake or (lambda: None)
        self._last_queue: dict[str, tuple[str | None, float]] = {}

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
        """The queue this AE used last (the modal's default). Remembered for a few minutes, since every
        shortcut asks and the answer changes only when they submit (another web process may not know
        for that long: it is only a default)."""
        cached = self._last_queue.get(requester)
        if cached and time.monotonic() - cached[1] < LAST_QUEUE_TTL:
            key = cached[0]
        else:
            with read_scope(self.engine) as s:
                key = repo.last_queue_of(session=s, requester=requester)
            self._last_queue[requester] = (key, time.monotonic())
        return key if key and self.config.queue(key) else None

    def duplicate_of(self, *, opportunity_id: str | None, queue: str | None = None) -> Duplicate | None:
        """An open request for the same opportunity, in any queue: one opportunity has one SA, whichever
        board the AE picked (`queue` is accepted for callers that name theirs; it no longer narrows)."""
        del queue
        if not opportunity_id:
            return None
        with read_scope(self.engine) as s:
            row = repo.open_request_for_opportunity(session=s, opportunity_id=opportunity_id)
        if row is None:
            return None
        request_id, url, status, queue_key, key = row
        known = self.config.queue(queue_key)
        return Duplicate(request_id, reference_of(request_id), url, status, known.name if known else queue_key,
                         key)

    def submit_unless_duplicate(self, *, submission_key: str, requester: str,
                                cleaned: Mapping[str, Any] | RequestFields, duplicate_ok: int | None = None,
                                salesforce_verified: bool | None = None,
                                now: datetime | None = None) -> SubmitResult | Duplicate:
        """Store the request unless an open one exists for the same opportunity that the AE has not yet
        been shown (`duplicate_ok` is the one they were shown and chose to file beside).
        One call, so the ack path makes one hop to a thread, not two."""
        details = _typed(cleaned)
        dup = self.duplicate_of(opportunity_id=details.opportunity)
        if dup is not None and dup.submission_key == submission_key[:64]:
            # The same modal again (Slack's retry of a delivery that was stored but not answered): it is
            # not a duplicate of itself.
            return SubmitResult(dup.request_id, dup.reference, created=False)
        if dup is not None and dup.request_id != duplicate_ok:
            return dup
        return self.submit(submission_key=submission_key, requester=requester, cleaned=details, now=now,
                           salesforce_verified=salesforce_verified)

    def _opportunity_sa(self, s, details: RequestFields) -> tuple[str, str] | None:
        """(SA, reference) of an SA who already worked this opportunity: a follow-up's parent request
        first, else the latest request on the same opportunity in any queue."""
        parent = (details.parent_request or "").strip().upper().removeprefix("SAR-")
        if details.request_type == "follow_up" and parent.isdigit():
            earlier = repo.get_request(session=s, request_id=int(parent))
            if earlier is not None and earlier.owner:
                return earlier.owner, earlier.reference
        if details.opportunity:
            row = repo.sa_of_opportunity(session=s, opportunity_id=details.opportunity)
            if row is not None:
                return row[0], reference_of(row[1])
        return None

    def submit(self, *, submission_key: str, requester: str, cleaned: Mapping[str, Any] | RequestFields,
               now: datetime | None = None, salesforce_verified: bool | None = None) -> SubmitResult:
        """Store the request and its first outbox entry in one transaction; nothing external here."""
        now = now or self.now()
        details = _typed(cleaned)
        queue = self.config.queue(details.queue)
        policy = self.config.policy(details.queue)
        if queue is None or policy is None:  # validated before, but config may have changed between open and submit
            raise Rejected(f"unknown queue {details.queue!r}")
        deadline = policy.deadline(details.request_type, details.expedite, now, event_date=details.event_date)
        request = Request(
            submission_key=submission_key[:64], created_at=now, updated_at=now, requester=requester,
            requester_name=details.requester_name or "",
            request_type=details.request_type, queue=queue.key, customer_name=details.customer_name,
            opportunity_id=details.opportunity, expedite=details.expedite,
            fields=details.stored(), deadline=deadline, gitlab_project=queue.gitlab_project,
            slack_channel=queue.slack_channel, salesforce_verified=salesforce_verified,
        )
        request.next_check_at = sla_sweep.schedule(request, self.config, now)
        short = policy.short_notice(details.request_type, details.event_date, now)
        try:
            with session_scope(self.engine) as s:
                # Core INSERTs, not the ORM's unit of work: this runs before the modal is acknowledged.
                request.id = repo.insert_request(session=s, request=request, events=[
                    {"kind": EventKind.SUBMITTED, "source": "slack", "actor": requester, "at": now,
                     "detail": {"deadline": deadline.isoformat()}},
                    {"kind": EventKind.SLA_START, "source": "system", "actor": None, "at": now, "detail": {}},
                ])
                sa_before = self._opportunity_sa(s, details)
                if sa_before is not None:
                    # "Enterprise SAs will be dedicated throughout the lifetime of the opportunity."
                    repo.add_event(session=s, request_id=request.id, kind=OPPORTUNITY_SA_EVENT, source="system",
                                   at=now, sa=sa_before[0], earlier=sa_before[1])
                    outbox.enqueue(s, kind=outbox.Kind.DM, request_id=request.id, now=now,
                                   key=("opportunity_sa", request.id),
                                   payload={"user": sa_before[0], "text": _opportunity_sa_dm(request, sa_before[1],
                                                                                             queue.slack_channel)})
                if short:
                    repo.add_event(session=s, request_id=request.id, kind=SHORT_NOTICE_EVENT, source="system",
                                   at=now, event_date=details.event_date.isoformat())
                    if self.config.slack.leaders_channel:
                        outbox.enqueue(s, kind=outbox.Kind.POST, request_id=request.id, now=now,
                                       key=("short_notice", request.id), lane=outbox.Lane.LEADERS,
                                       payload={"channel": self.config.slack.leaders_channel,
                                                "text": _short_notice_text(request, queue.name, policy,
                                                                           self.config.slack.leaders)})
                outbox.enqueue(s, kind=outbox.Kind.CREATE_ISSUE, request_id=request.id, now=now,
                               key=("create_issue", request.id))
                self._salesforce_after_submit(s, request, now)
                self._refresh_homes(s, request, key=("new", request.id), now=now)
        except IntegrityError:
            # The same modal again (Slack retry, double click): hand back what the first one stored.
            with session_scope(self.engine) as s:
                existing = repo.get_request_by_submission(session=s, submission_key=submission_key[:64])
            if existing is None:
                raise
            return SubmitResult(existing.id, existing.reference, created=False)
        self._last_queue[requester] = (queue.key, time.monotonic())
        self._wake()
        return SubmitResult(request.id, request.reference, created=True)


OPPORTUNITY_SA_EVENT = EventKind.OPPORTUNITY_SA
SHORT_NOTICE_EVENT = EventKind.SHORT_NOTICE


def _typed(cleaned: Mapping[str, Any] | RequestFields) -> RequestFields:
    return cleaned if isinstance(cleaned, RequestFields) else RequestFields.model_validate(dict(cleaned))


def _opportunity_sa_dm(request: Request, earlier: str, channel: str) -> str:
    return (f"You worked {earlier} on this opportunity, so you hear first: *{request.reference}* "
            f"({escape(request.customer_name)}) is a new {request.request_type.replace('_', ' ')} request on it. "
            f"Its card will be in <#{channel}> in a moment; claim it there to keep the opportunity's SA the same.")


def _short_notice_text(request: Request, queue_name: str, policy: sla_policy.SlaPolicy,
                       leaders: Sequence[str]) -> str:
    who = " ".join(f"<@{u}>" for u in leaders)
    event_date = request.details.event_date
    clock = escape(policy.describe("event", request.expedite, request.created_at, request.deadline,
                                   event_date=event_date))
    return (f":hourglass_flowing_sand: {who + ' ' if who else ''}*Short notice: {request.reference}* "
            f"({escape(request.customer_name)}) in {escape(queue_name)} is an event on {event_date:%a %d %b}, "
            f"sooner than the {policy.target_words(policy.target('event', False))} the SA team has to secure an "
            f"SA. {clock}. "
            "Assign an SA from the card.")
