"""Use cases. Imports core, repo and models; talks to GitLab and Slack only through the ports in
`triage.services.ports`, which the worker fills with real adapters (gitlab_tracker, slack.notifier).

    Services = intake (here) + WorkMixin (work.py) + BoardMixin (board.py) + DeliveryMixin (delivery.py)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from triage import outbox, repo
from triage import sweep as sla_sweep
from triage.config import Config, Queue, Settings
from triage.core import sla
from triage.core.errors import Rejected
from triage.db import read_scope, session_scope
from triage.models import Request, reference_of
from triage.services.base import NOTE_MARKER, Change
from triage.services.board import BoardMixin, BoardState
from triage.services.delivery import DeliveryMixin, DeliveryReport
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
    submission_key: str | None = None  # the modal it was submitted from


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


class Services(WorkMixin, BoardMixin, DeliveryMixin):
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

    def duplicate_of(self, *, opportunity_id: str | None, queue: str) -> Duplicate | None:
        if not opportunity_id:
            return None
        with read_scope(self.engine) as s:
            row = repo.open_request_for_opportunity(session=s, opportunity_id=opportunity_id, queue=queue)
        if row is None:
            return None
        request_id, url, status, key = row
        return Duplicate(request_id, reference_of(request_id), url, status, key)

    def submit_unless_duplicate(self, *, submission_key: str, requester: str, cleaned: Mapping[str, Any],
                                duplicate_ok: int | None = None,
                                now: datetime | None = None) -> SubmitResult | Duplicate:
        """Store the request unless an open one exists for the same opportunity and queue that the AE
        has not yet been shown (`duplicate_ok` is the one they were shown and chose to file beside).
        One call, so the ack path makes one hop to a thread, not two."""
        dup = self.duplicate_of(opportunity_id=cleaned.get("opportunity"), queue=cleaned["queue"])
        if dup is not None and dup.submission_key == submission_key[:64]:
            # The same modal again (Slack's retry of a delivery that was stored but not answered): it is
            # not a duplicate of itself.
            return SubmitResult(dup.request_id, dup.reference, created=False)
        if dup is not None and dup.request_id != duplicate_ok:
            return dup
        return self.submit(submission_key=submission_key, requester=requester, cleaned=cleaned, now=now)

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
        self._last_queue[requester] = (queue.key, time.monotonic())
        self._wake()
        return SubmitResult(request.id, request.reference, created=True)
