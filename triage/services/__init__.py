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

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError

from triage import outbox, repo
from triage.config import Config, Settings
from triage.core import sla_policy
from triage.core.errors import Rejected
from triage.core.fields import RequestFields
from triage.core.slack_text import escape
from triage.db import read_scope, session_scope, write_scope
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
           "SlackUser", "Submission", "SubmitResult", "Tracker"]


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

    def _duplicate(self, row: tuple[int, str | None, str, str, str] | None) -> Duplicate | None:
        if row is None:
            return None
        request_id, url, status, queue_key, key = row
        known = self.config.queue(queue_key)
        return Duplicate(request_id, reference_of(request_id), url, status, known.name if known else queue_key,
                         key)

    def submit(self, *, submission_key: str, requester: str, cleaned: Mapping[str, Any] | RequestFields,
               now: datetime | None = None, salesforce_verified: bool | None = None) -> SubmitResult:
        """Store the request and its first outbox entry in one transaction, whatever else is open for its
        opportunity; nothing external here. (The modal's submissions go through `submit_many`.)"""
        [result] = self.submit_many([Submission(submission_key, requester, _typed(cleaned), None,
                                                salesforce_verified, check_duplicate=False)], now=now)
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, SubmitResult)
        return result

    def submit_many(self, submissions: Sequence[Submission], *, now: datetime | None = None,
                    ) -> list[SubmitResult | Duplicate | Exception]:
        """Store these submissions in one transaction, one result per submission in order: what was
        stored, the open request it duplicates, or the error that refused it (an unknown queue).

        Each request gets its row, its first audit events and the outbox entries that file it, tell the SA
        who worked the opportunity before, warn the leaders of a short-notice event and refresh the Home
        tabs that show it. Nothing external is called. This runs before the AEs' modals are acknowledged:
        submissions that arrive together are committed together (one BEGIN, one COMMIT, one statement per
        table, see `services.group_commit`), in SQLAlchemy Core on one connection, since the ORM's
        session and unit of work cost more CPU than the statements themselves."""
        now = now or self.now()
        results: list[SubmitResult | Duplicate | Exception | None] = [None] * len(submissions)
        batch: list[tuple[int, _Prepared]] = []
        later: list[int] = []  # a second submission for an opportunity already in this batch: after it
        seen: set[str] = set()
        for i, sub in enumerate(submissions):
            try:
                prepared = self._prepare(sub, now)
            except Rejected as e:
                results[i] = e
                continue
            opportunity = sub.details.opportunity
            if opportunity and opportunity in seen:
                later.append(i)
                continue
            if opportunity:
                seen.add(opportunity)
            batch.append((i, prepared))
        if batch:
            try:
                for i, result in self._store(batch, now):
                    results[i] = result
            except (IntegrityError, DataError) as e:
                if len(batch) > 1:
                    # A submission already stored (Slack's retry of one), or one the database refuses:
                    # each on its own, to tell which, so that the others still land.
                    later[:0] = [i for i, _ in batch]
                elif isinstance(e, IntegrityError):
                    i, prepared = batch[0]
                    results[i] = self._already_stored(prepared)
                else:
                    results[batch[0][0]] = e
        for i in sorted(later):
            results[i] = self.submit_many([submissions[i]], now=now)[0]
        self._wake()
        return results  # type: ignore[return-value]

    def _prepare(self, sub: Submission, now: datetime) -> _Prepared:
        """Everything about a new request that needs no database: its row, deadline and first SLA check."""
        details = sub.details
        queue = self.config.queue(details.queue)
        policy = self.config.policy(details.queue)
        if queue is None or policy is None:  # validated before, but config may have changed between open and submit
            raise Rejected(f"unknown queue {details.queue!r}")
        deadline = policy.deadline(details.request_type, details.expedite, now, event_date=details.event_date)
        request = Request.unsaved(
            submission_key=sub.submission_key[:64], created_at=now, updated_at=now, requester=sub.requester,
            requester_name=details.requester_name or "",
            request_type=details.request_type, queue=queue.key, customer_name=details.customer_name,
            opportunity_id=details.opportunity, expedite=details.expedite,
            fields=details.stored(), deadline=deadline, gitlab_project=queue.gitlab_project,
            slack_channel=queue.slack_channel, salesforce_verified=sub.salesforce_verified,
        )
        request.fill(next_check_at=sla_sweep.schedule(request, self.config, now))
        short = policy.short_notice(details.request_type, details.event_date, now)
        return _Prepared(sub, request, queue.name, policy, short)

    def _store(self, batch: Sequence[tuple[int, _Prepared]], now: datetime,
               ) -> list[tuple[int, SubmitResult | Duplicate]]:
        out: list[tuple[int, SubmitResult | Duplicate]] = []
        with write_scope(self.engine) as conn:
            open_rows, worked = repo.opportunities_so_far(
                conn, [p.request.opportunity_id for _, p in batch if p.request.opportunity_id])
            new: list[tuple[int, _Prepared]] = []
            for i, p in batch:
                dup = self._duplicate(open_rows.get(p.request.opportunity_id or "")) if p.sub.check_duplicate \
                    else None
                if dup is not None and dup.submission_key == p.request.submission_key:
                    # The same modal again (Slack's retry of a delivery that was stored but not answered):
                    # it is not a duplicate of itself.
                    out.append((i, SubmitResult(dup.request_id, dup.reference, created=False)))
                elif dup is not None and dup.request_id != p.sub.duplicate_ok:
                    out.append((i, dup))
                else:
                    new.append((i, p))
            if not new:
                return out
            sa_before = [self._opportunity_sa(conn, p.sub.details, worked) for _, p in new]
            events = [self._first_events(p, sa, now) for (_, p), sa in zip(new, sa_before, strict=True)]
            ids = repo.insert_requests(conn, [p.request for _, p in new], events)
            entries: list[dict[str, Any]] = []
            viewers = self._home_viewers(conn)
            for (i, p), request_id, sa in zip(new, ids, sa_before, strict=True):
                request = p.request
                request.fill(id=request_id)
                entries.extend(self._first_entries(p, sa, now))
                entries.extend(self._salesforce_after_submit(request, now))
                entries.extend(self._home_entries(request, viewers, key=("new", request_id), now=now))
                out.append((i, SubmitResult(request_id, request.reference, created=True)))
            outbox.enqueue_all(conn, entries)
        for _, p in new:
            self._last_queue[p.request.requester] = (p.request.queue, time.monotonic())
        return out

    def _already_stored(self, prepared: _Prepared) -> SubmitResult:
        """The same modal again (Slack retry, double click): what the first one stored."""
        with session_scope(self.engine) as s:
            existing = repo.get_request_by_submission(session=s, submission_key=prepared.request.submission_key)
        if existing is None:
            raise RuntimeError("a submission conflicted with a stored one that is not there")
        return SubmitResult(existing.id, existing.reference, created=False)

    @staticmethod
    def _first_events(p: _Prepared, sa_before: tuple[str, str] | None, now: datetime) -> list[dict[str, Any]]:
        request = p.request
        events: list[dict[str, Any]] = [
            {"kind": EventKind.SUBMITTED, "source": "slack", "actor": request.requester, "at": now,
             "detail": {"deadline": request.deadline.isoformat()}},
            {"kind": EventKind.SLA_START, "source": "system", "actor": None, "at": now, "detail": {}},
        ]
        if sa_before is not None:
            # "Enterprise SAs will be dedicated throughout the lifetime of the opportunity."
            events.append({"kind": OPPORTUNITY_SA_EVENT, "source": "system", "actor": None, "at": now,
                           "detail": {"sa": sa_before[0], "earlier": sa_before[1]}})
        if p.short:
            events.append({"kind": SHORT_NOTICE_EVENT, "source": "system", "actor": None, "at": now,
                           "detail": {"event_date": p.sub.details.event_date.isoformat()}})
        return events

    def _first_entries(self, p: _Prepared, sa_before: tuple[str, str] | None, now: datetime) -> list[dict[str, Any]]:
        request = p.request
        entries = []
        if sa_before is not None:
            entries.append(outbox.entry(kind=outbox.Kind.DM, request_id=request.id, now=now,
                                        key=("opportunity_sa", request.id),
                                        payload={"user": sa_before[0],
                                                 "text": _opportunity_sa_dm(request, sa_before[1],
                                                                            request.slack_channel)}))
        if p.short and self.config.slack.leaders_channel:
            entries.append(outbox.entry(kind=outbox.Kind.POST, request_id=request.id, now=now,
                                        key=("short_notice", request.id), lane=outbox.Lane.LEADERS,
                                        payload={"channel": self.config.slack.leaders_channel,
                                                 "text": _short_notice_text(request, p.queue_name, p.policy,
                                                                            self.config.slack.leaders)}))
        entries.append(outbox.entry(kind=outbox.Kind.CREATE_ISSUE, request_id=request.id, now=now,
                                    key=("create_issue", request.id)))
        return entries

    def _opportunity_sa(self, conn: Connection, details: RequestFields,
                        worked: Mapping[str, tuple[str, int]]) -> tuple[str, str] | None:
        """(SA, reference) of an SA who already worked this opportunity: a follow-up's parent request
        first, else the latest request on the same opportunity in any queue (`worked`, looked up once
        for the batch)."""
        parent = (details.parent_request or "").strip().upper().removeprefix("SAR-")
        if details.request_type == "follow_up" and parent.isdigit() and len(parent) <= 18:
            owner = repo.owner_of(conn, request_id=int(parent))
            if owner:
                return owner, reference_of(int(parent))
        row = worked.get(details.opportunity or "")
        return (row[0], reference_of(row[1])) if row else None


@dataclass(frozen=True)
class Submission:
    """One modal's submission, validated, for `Services.submit_many`."""

    submission_key: str  # the modal's view id: the same modal again is the same request
    requester: str
    details: RequestFields
    duplicate_ok: int | None = None  # the open request the AE was shown and chose to file beside
    salesforce_verified: bool | None = None
    check_duplicate: bool = True


@dataclass
class _Prepared:
    sub: Submission
    request: Request
    queue_name: str
    policy: sla_policy.SlaPolicy
    short: bool


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
