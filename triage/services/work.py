"""Working a request from Slack: claim, assign, unclaim, status, needs info, answer, decline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from triage import outbox, repo
from triage.core import lifecycle
from triage.core.errors import InvalidTransition, NotAllowed
from triage.core.gitlab_text import quote as gitlab_quote
from triage.core.labels import BOARD_LISTS, EXPEDITE, status_dm, status_label_change
from triage.core.lifecycle import CLOSED_STATUSES
from triage.core.slack_text import escape, quote_lines
from triage.db import session_scope
from triage.models import EventKind, Request, RequestEvent
from triage.services import sla_sweep, summary
from triage.services.base import Change, ServiceBase, _mention


class WorkMixin(ServiceBase):
    """Claim, assign, status, needs info, answer, decline, breach reasons."""

    # -- claim and assign

    def claim(self, request_id: int, actor: str, *, now: datetime | None = None) -> Change:
        """Take an open request. Atomic: of two SAs clicking at once exactly one wins."""

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
        kind = EventKind.CLAIMED if actor == by else EventKind.ASSIGNED
        text = (f"{_mention(actor)} took this request." if kind == EventKind.CLAIMED
                else f"{_mention(by)} assigned this request to {_mention(actor)}.")
        late = now > request.deadline
        if first:
            repo.add_event(session=s, request_id=request.id, kind=EventKind.SLA_STOP, source="system", at=now,
                           late=late)
            s.flush()
            summary.record_allocation(s, request, self.config, now=now, late=late)
        self._record(
            s, request, kind=kind, actor=by, source=source, now=now, thread=text, to=actor,
            gitlab={"add_labels": ["SA Triaged"], "remove_labels": [], "assignee": actor},
            dms=[{"user": request.requester, "text": f"{_mention(actor)} has your request "
                  f"*{request.reference}* ({escape(request.customer_name)})."}],
        )

    def unclaim(self, request_id: int, actor: str, *, now: datetime | None = None) -> Change:

        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if request.owner is None:
                return Change(request, False, "Nobody has this request.")
            if actor != request.owner and not self.is_leader(actor):
                raise NotAllowed("Only the SA who has this request, or a leader, can return it to the queue.")

            s.execute(sa.update(Request).where(Request.id == request_id).values(
                owner=None, status="open", allocated_at=None, updated_at=now))
            s.refresh(request)
            # Back in the queue, it needs an SA again: the clock runs on from where it stopped.
            repo.add_event(session=s, request_id=request.id, kind=EventKind.SLA_START, source="system", at=now)
            self._record(s, request, kind=EventKind.UNCLAIMED, actor=actor, source="slack", now=now,
                         thread=f"{_mention(actor)} returned this request to the queue.",
                         gitlab={"add_labels": [], "remove_labels": list(BOARD_LISTS), "assignee": None})
        self._reschedule(request_id, now)
        self._wake()
        return Change(request, True, f"{request.reference} is back in the queue.")

    # -- status

    def set_status(self, request_id: int, actor: str, new_status: str, *, now: datetime | None = None) -> Change:

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
            self._record(s, request, kind=EventKind.STATUS, actor=actor, source="slack", now=now, status=new_status,
                         previous=old, thread=f"{_mention(actor)} set the status to *{new_status}*.",
                         gitlab=gitlab, dms=self._status_dms(request, new_status))
        self._wake()
        return Change(request, True, f"{request.reference} is now {new_status}.")

    @staticmethod
    def _status_dms(request: Request, status: str) -> list[dict[str, Any]]:
        """`SA Demo Ready` tells the AE scheduling can start; done tells them it is done."""
        text = status_dm(status, request.reference, escape(request.customer_name))
        return [{"user": request.requester, "text": text}] if text else []

    # -- needs info, answer, decline

    def needs_info(self, request_id: int, actor: str, question: str, *, now: datetime | None = None,
                   once: str | None = None) -> Change:
        """`once`: the Slack view id of the submission; a replay of the same view changes nothing."""
        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if not self._first_submission(s, once, "needs_info", now):
                return Change(request, False)
            if request.status in CLOSED_STATUSES:
                raise InvalidTransition(f"{request.reference} is already {request.status}.")
            previous = request.status
            first_asked = sa.func.coalesce(Request.needs_info_at, sa.literal(now, Request.needs_info_at.type))
            s.execute(sa.update(Request).where(Request.id == request_id).values(
                status="waiting", updated_at=now, needs_info_at=first_asked))
            s.refresh(request)
            if previous != "waiting":
                repo.add_event(session=s, request_id=request.id, kind=EventKind.SLA_PAUSE, source="system", at=now)
            self._record(
                s, request, kind=EventKind.NEEDS_INFO, actor=actor, source="slack", now=now, previous=previous,
                question=question,
                thread=f"{_mention(actor)} needs more information from {_mention(request.requester)}:\n"
                       + quote_lines(question),
                gitlab={"add_labels": ["SA Waiting"], "remove_labels": [x for x in BOARD_LISTS if x != "SA Waiting"]},
                note=f"**Needs more information** (asked in Slack):\n\n{gitlab_quote(question)}",
                dms=[{"user": request.requester, "kind": "needs_info", "question": question, "asked_by": actor}],
            )
        self._wake()
        return Change(request, True, "Asked; the request waits on the AE (the SLA clock is paused).")

    def answer(self, request_id: int, actor: str, answer: str, *, now: datetime | None = None,
               once: str | None = None) -> Change:
        """`once`: the Slack view id of the submission; a replay of the same view changes nothing."""
        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if not self._first_submission(s, once, "answer", now):
                return Change(request, False)
            if actor != request.requester and not self.is_leader(actor):
                raise NotAllowed("Only the requester can answer this question.")
            if request.status != "waiting":
                raise InvalidTransition(f"{request.reference} is not waiting for an answer.")
            asked = s.exec(sa.select(RequestEvent).where(RequestEvent.request_id == request.id,
                                                         RequestEvent.kind == EventKind.NEEDS_INFO)
                           .order_by(RequestEvent.id.desc()).limit(1)).scalars().first()
            back_to = (asked.detail.get("previous") if asked else None) or ("claimed" if request.owner else "open")
            if back_to == "waiting":
                back_to = "claimed" if request.owner else "open"
            add, remove = status_label_change("waiting", back_to)
            s.execute(sa.update(Request).where(Request.id == request_id).values(status=back_to, updated_at=now))
            s.refresh(request)
            repo.add_event(session=s, request_id=request.id, kind=EventKind.SLA_RESUME, source="system", at=now)
            self._record(
                s, request, kind=EventKind.ANSWERED, actor=actor, source="slack", now=now,
                thread=f"{_mention(actor)} answered:\n"
                       + quote_lines(answer),
                gitlab={"add_labels": add, "remove_labels": remove},
                note=f"**Answer from the requester** (in Slack):\n\n{gitlab_quote(answer)}",
            )
        self._reschedule(request_id, now)
        self._wake()
        return Change(request, True, "Thanks: your answer is in the thread and on the issue.")

    def _reschedule(self, request_id: int, now: datetime) -> datetime | None:
        """Ask the queue's SLA policy for the deadline again (after a resume, a return to the queue, an
        Expedite change), store it, and let the GitLab due date follow. Returns the new deadline."""
        with session_scope(self.engine) as s:
            return self._retarget(s, self._require(s, request_id), now)

    def _retarget(self, s, request: Request, now: datetime) -> datetime | None:
        """`_reschedule` inside the caller's transaction; None when allocated (its SLA is settled)."""
        if request.allocated_at is not None:
            return None
        queue = self.config.queue(request.queue)
        policy = self.config.policy(request.queue)
        if queue is None or policy is None:
            return None
        clock = sla_sweep.clock_of(request, repo.events_of(session=s, request_id=request.id))
        deadline = policy.deadline(request.request_type, request.expedite, clock,
                                   event_date=request.details.event_date, now=now)
        if deadline != request.deadline:
            s.execute(sa.update(Request).where(Request.id == request.id).values(deadline=deadline))
            outbox.enqueue(s, kind=outbox.Kind.GITLAB_UPDATE, key=sla_sweep.due_key(request.id, deadline),
                           request_id=request.id,
                           payload={"due_date": self._due_date(request.model_copy(update={"deadline": deadline}),
                                                               queue).isoformat()}, now=now)
        sla_sweep.reschedule(s, request.id, self.config, now)
        return deadline

    # -- expedite

    def set_expedite(self, request_id: int, actor: str | None, on: bool, *, reason: str | None = None,
                     source: str = "slack", now: datetime | None = None) -> Change:
        """Expedite (or stop expediting) a request: the ``Expedite`` label on GitLab, or a leader or the
        claimer in Slack. The queue's policy re-targets the SLA (expediting only shortens it), the deadline
        and the GitLab due date move, and the thread says so."""
        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if source == "slack" and actor is not None and not (self.is_leader(actor) or actor == request.owner):
                raise NotAllowed("Only a leader or the SA who has this request can change whether it is expedited.")
            if request.expedite == on:
                return Change(request, False, f"{request.reference} is already "
                                              f"{'expedited' if on else 'not expedited'}.")
            if request.status in CLOSED_STATUSES:
                raise InvalidTransition(f"{request.reference} is already {request.status}.")
            fields = dict(request.fields, expedite=on)
            if on and reason:
                fields["expedite_reason"] = reason
            s.execute(sa.update(Request).where(Request.id == request_id).values(
                expedite=on, fields=fields, updated_at=now))
            s.refresh(request)
            before = request.deadline
            deadline = self._retarget(s, request, now)
            s.refresh(request)
            policy = self.config.policy(request.queue)
            who = (f"{escape(actor)} on GitLab" if actor else "someone on GitLab") if source == "gitlab" \
                else _mention(actor)
            text = f"{who} {'expedited' if on else 'stopped expediting'} this request"
            if on and reason:
                text += ":\n" + quote_lines(reason)
            if deadline is None or policy is None:
                text += ". It already has an SA, so its SLA is settled." if request.allocated_at else "."
            else:
                clock = escape(policy.describe(request.request_type, on, request.created_at, deadline,
                                               event_date=request.details.event_date))
                text += f". Its SLA is unchanged: {clock}." if deadline == before else f". New SLA: {clock}."
            label = {"add_labels": [EXPEDITE], "remove_labels": []} if on else \
                {"add_labels": [], "remove_labels": [EXPEDITE]}
            self._record(s, request, kind=EventKind.EXPEDITED if on else "unexpedited", actor=actor, source=source,
                         now=now, reason=reason, thread=text, gitlab=label,
                         note=("**Expedited** in Slack" + (f":\n\n{gitlab_quote(reason)}" if reason else ""))
                         if on else "**No longer expedited** (changed in Slack)")
        self._wake()
        return Change(request, True, f"{request.reference} is {'expedited' if on else 'no longer expedited'}.")

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

    def decline(self, request_id: int, actor: str, reason: str, *, now: datetime | None = None,
                once: str | None = None) -> Change:
        """`once`: the Slack view id of the submission; a replay of the same view changes nothing."""
        now = now or self.now()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if not self._first_submission(s, once, "decline", now):
                return Change(request, False)
            if request.status in CLOSED_STATUSES:
                raise InvalidTransition(f"{request.reference} is already {request.status}.")
            s.execute(sa.update(Request).where(Request.id == request_id).values(
                status="declined", closed_at=now, updated_at=now, next_check_at=None))
            s.refresh(request)
            self._record(
                s, request, kind=EventKind.DECLINED, actor=actor, source="slack", now=now, reason=reason,
                thread=f"{_mention(actor)} declined this request:\n"
                       + quote_lines(reason),
                gitlab={"add_labels": [], "remove_labels": [], "state_event": "close"},
                note=f"**Declined** in Slack:\n\n{gitlab_quote(reason)}",
                dms=[{"user": request.requester, "text": f"{_mention(actor)} declined your request "
                      f"*{request.reference}*:\n> {escape(reason)}"}],
            )
        self._wake()
        return Change(request, True, f"{request.reference} is declined; the AE has been told why.")


