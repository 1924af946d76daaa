"""The SLA sweep: reminders in the card's thread, the breach escalation, and "own the miss".

Same dependency rule as `triage.services`: core, repo, models, outbox (and config, db); never Slack,
GitLab, FastAPI or blocks. Everything the sweep decides becomes outbox entries that the worker delivers,
so a Slack outage delays a reminder but never loses or repeats it.

How it stays cheap and exactly-once:

* Each open, unallocated request carries `next_check_at`, the instant of its next unhandled threshold
  (indexed). The sweep reads only rows whose check is due, oldest first, a bounded batch per
  transaction, locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so concurrent workers split the
  work (SQLite serialises writers with ``BEGIN IMMEDIATE``, see `triage.db`).
* Thresholds are recomputed from the request's SLA clock events (start, pauses, stop), never stored,
  so a pause moves them exactly as it moves the deadline (`triage.core.sla.threshold_times`).
* Each notification's outbox `dedupe_key` is a pure function of (request, threshold), so even two
  sweeps racing past the lock enqueue it once. The audit event (``reminder_sent``/``breach_escalated``),
  which also records what is handled, is written by the one sweep holding the row.
* The request's state is re-read under the row lock, in the transaction that enqueues: a request
  claimed a moment before its threshold gets no reminder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from triage import outbox, repo
from triage.config import Config, Queue
from triage.core import sla, sla_policy
from triage.core.errors import InvalidTransition, NotAllowed
from triage.core.gitlab_text import quote as gitlab_quote
from triage.core.lifecycle import CLOSED_STATUSES
from triage.core.slack_text import escape, quote_lines
from triage.db import session_scope
from triage.models import EventKind, Request, RequestEvent

log = logging.getLogger(__name__)

CLOCK_KINDS = {EventKind.SLA_START: "start", EventKind.SLA_PAUSE: "pause", EventKind.SLA_RESUME: "resume",
               EventKind.SLA_STOP: "stop"}
# Not "sla_*": those kinds are the clock's own events (start, pause, resume, stop), which services folds.
REMINDER_EVENT = EventKind.REMINDER_SENT
BREACH_EVENT = EventKind.BREACH_ESCALATED
BREACH_REASON_EVENT = EventKind.BREACH_REASON
_SWEEP_EVENT_KINDS = (*CLOCK_KINDS, REMINDER_EVENT, BREACH_EVENT)

# The option values of blocks.request_modal.breach_reason_modal (blocks.ids.BreachReason) and how the
# GitLab note names them; services may not import blocks, so they are repeated here (a test keeps them equal).
BREACH_REASONS: dict[str, str] = {
    "capacity": "No SA had capacity",
    "no_context": "Request lacked context",
    "late_triage": "Seen too late",
    "other": "Other",
}

_TYPE_NAMES = {"opportunity": "opportunity", "follow_up": "follow-up", "security_assessment": "security assessment",
               "event": "event"}


# ---------------------------------------------------------------- SLA of one request (pure)


def policy_of(config: Config, queue: Queue) -> sla_policy.SlaPolicy:
    """The queue's SLA policy (built once per loaded config)."""
    policy = config.policy(queue.key)
    assert policy is not None, queue.key
    return policy


def clock_of(request: Request, events: Iterable[RequestEvent] = ()) -> sla.SlaClock:
    """The request's SLA clock from its ``sla_*`` events; without any, it started at submission."""
    clock_events = [sla.SlaClockEvent(e.at, CLOCK_KINDS[e.kind]) for e in events if e.kind in CLOCK_KINDS]
    if not any(e.kind == "start" for e in clock_events):
        clock_events.insert(0, sla.SlaClockEvent(request.created_at, "start"))
    return sla.SlaClock.from_events(clock_events)


def _key(fraction: float) -> float:
    return round(float(fraction), 6)


def handled_fractions(events: Iterable[RequestEvent]) -> set[float]:
    """Thresholds already acted on (sent, or skipped because a later one superseded them)."""
    done: set[float] = set()
    for e in events:
        if e.kind == BREACH_EVENT:
            done.add(1.0)
        elif e.kind == REMINDER_EVENT:
            done.add(_key(e.detail.get("fraction", 0)))
        if e.kind in (BREACH_EVENT, REMINDER_EVENT):
            done.update(_key(f) for f in e.detail.get("skipped", ()))
    return done


@dataclass(frozen=True)
class SlaState:
    """What the sweep needs to know about one request's SLA as of `now`."""

    queue: Queue
    policy: sla_policy.SlaPolicy
    view: sla_policy.SlaView
    clock: sla.SlaClock

    @property
    def target(self) -> sla.Target:
        return self.view.target

    @property
    def thresholds(self) -> tuple[tuple[float, datetime], ...]:
        return self.view.thresholds

    @property
    def deadline(self) -> datetime | None:
        """None while paused (it keeps moving until the AE answers)."""
        return None if self.view.paused else self.view.deadline

    @property
    def paused(self) -> bool:
        return self.view.paused


def sla_state(request: Request, config: Config, events: Sequence[RequestEvent] = (),
              now: datetime | None = None) -> SlaState | None:
    """The request's thresholds and deadline, or None when no reminder can apply any more
    (allocated, closed, clock stopped, or its queue is no longer configured)."""
    if request.allocated_at is not None or request.closed_at is not None or request.status in CLOSED_STATUSES:
        return None
    queue = config.queue(request.queue)
    if queue is None:
        log.warning("%s is in queue %r, which is no longer configured: no SLA reminders",
                    request.reference, request.queue)
        return None
    clock = clock_of(request, events)
    if clock.stop is not None:
        return None
    policy = policy_of(config, queue)
    view = policy.view(request.request_type, request.expedite, clock, event_date=request.details.event_date,
                       now=now or clock.start)
    return SlaState(queue, policy, view, clock)


def schedule(request: Request, config: Config, now: datetime,
             events: Sequence[RequestEvent] = ()) -> datetime | None:
    """When the sweep should next look at this request: its earliest threshold not yet handled.

    None when allocated, closed, paused (the resume reschedules) or every threshold is handled.
    A threshold that has already passed unhandled (say, reached just before a pause) gives a time in
    the past, which the next sweep picks up at once. `events` are the request's events; leave them
    out for a new request (its clock starts at `created_at`).
    """
    state = sla_state(request, config, events, now)
    if state is None or state.paused:
        return None
    return sla_policy.SlaPolicy.next_check(state.view, handled_fractions(events))


def reschedule(session: Session, request_id: int, config: Config, now: datetime) -> datetime | None:
    """Recompute and store `next_check_at` inside the caller's transaction (after a resume, a reopen...)."""
    request = repo.get_request(session=session, request_id=request_id)
    if request is None:
        return None
    events = repo.events_of(session=session, request_id=request_id)
    when = schedule(request, config, now, events)
    session.execute(sa.update(Request).where(Request.id == request_id).values(next_check_at=when))
    return when


# ---------------------------------------------------------------- texts (Slack mrkdwn, built here)


def _mention_sas(queue: Queue) -> str:
    if queue.sa_usergroup:
        return f"<!subteam^{queue.sa_usergroup}>"
    return " ".join(f"<@{u}>" for u in queue.sa_users)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def _who_allocates(request: Request, state: SlaState, leaders: Sequence[str]) -> tuple[str, str]:
    """(mentions, what to do): events are assigned by the leaders, other requests claimed by the SAs."""
    if request.request_type == "event":
        return " ".join(f"<@{u}>" for u in leaders), "Assign an SA with *Assign an SA* on the card above."
    return _mention_sas(state.queue), "Claim it from the card above."


def _clock(request: Request, state: SlaState) -> str:
    """The clock in words, escaped for Slack."""
    return escape(state.policy.describe(request.request_type, request.expedite, request.created_at, state.deadline,
                                        event_date=request.details.event_date))


def reminder_text(request: Request, state: SlaState, fraction: float, now: datetime,
                  leaders: Sequence[str] = ()) -> str:
    waited = sla.format_duration(now - request.created_at)
    who, todo = _who_allocates(request, state, leaders)
    return (f"{who + ' ' if who else ''}*{request.reference}* ({escape(request.customer_name)}) has been waiting "
            f"{waited} for an SA: {_percent(fraction)} of its {state.target} SLA is used, "
            f"{sla.humanize_left(state.deadline, now)} ({_clock(request, state)}). {todo}")


def breach_thread_text(request: Request, state: SlaState, now: datetime, leaders_channel: str | None,
                       leaders: Sequence[str] = ()) -> str:
    waited = sla.format_duration(now - request.created_at)
    who, _ = _who_allocates(request, state, leaders)
    told = f" The leaders have been told in <#{leaders_channel}>." if leaders_channel else ""
    return (f":rotating_light: {who + ' ' if who else ''}*{request.reference}* ({escape(request.customer_name)}) "
            f"missed its {state.target} SLA: it has been waiting {waited} for an SA "
            f"({sla.humanize_left(state.deadline, now)}).{told}")


def _link(url: str | None, label: str) -> str | None:
    if not url or any(c in url for c in "|<> "):
        return None
    return f"<{url}|{label}>"


def breach_leaders_text(request: Request, state: SlaState, now: datetime) -> str:
    waited = sla.format_duration(now - request.created_at)
    due_local = state.deadline.astimezone(ZoneInfo(state.queue.timezone))
    issue = _link(request.gitlab_url, f"GitLab issue #{request.gitlab_iid}") or "GitLab issue not filed yet"
    kind = _TYPE_NAMES.get(request.request_type, request.request_type)
    expedited = " (expedited)" if request.expedite else ""
    return (f":rotating_light: *SLA missed: {request.reference}* for *{escape(request.customer_name)}* in "
            f"{escape(state.queue.name)}: a {kind} request{expedited} from <@{request.requester}> has waited "
            f"{waited} with no SA (target {state.target}, due {due_local:%a %d %b %H:%M} {due_local.tzname()}, "
            f"{sla.humanize_left(state.deadline, now)}).\nSLA clock: {_clock(request, state)}.\n"
            f"{issue} · card in <#{request.slack_channel}>")


# ---------------------------------------------------------------- the sweep


@dataclass
class SweepReport:
    checked: int = 0  # due rows read (and locked)
    reminders: int = 0  # reminder fractions enqueued
    breaches: int = 0  # breach escalations enqueued
    skipped: int = 0  # reminders superseded by a later threshold reached in the same sweep
    due_dates: int = 0  # GitLab due dates moved to follow the deadline
    batches: int = 0
    more: bool = False  # stopped at max_batches with rows still due


def due_key(request_id: int, deadline: datetime) -> tuple:
    """One GitLab due-date move per (request, deadline), whoever asks for it first."""
    return ("due", request_id, deadline.isoformat())


def _due_date(deadline: datetime, queue: Queue) -> date:
    return deadline.astimezone(ZoneInfo(queue.timezone)).date()


def _enqueue_slack(s: Session, request: Request, *, kind: outbox.Kind, key: tuple, now: datetime,
                   lane: outbox.Lane | None = None, payload: dict | None = None) -> None:
    outbox.enqueue(s, kind=kind, lane=lane, key=key, request_id=request.id, payload=payload, now=now)


def _act(s: Session, request: Request, events: Sequence[RequestEvent], config: Config, now: datetime,
         report: SweepReport, new_events: list[dict]) -> tuple[datetime | None, datetime]:
    """Handle one locked, due request: enqueue its notifications, append its audit event to `new_events`,
    and return its new (`next_check_at`, `deadline`)."""
    state = sla_state(request, config, events, now)
    if state is None or state.paused or state.deadline is None:
        # Allocated, closed or waiting on the AE: the resume (or a reopen) reschedules.
        return None, request.deadline

    # The GitLab due date follows the deadline (the config's target may have changed, a resume moved it).
    if state.deadline != request.deadline:
        moved_day = _due_date(state.deadline, state.queue) != _due_date(request.deadline, state.queue)
        if moved_day:
            outbox.enqueue(s, kind=outbox.Kind.GITLAB_UPDATE, request_id=request.id,
                           # Same key as services' resume path: whichever runs first sends it, the other is a no-op.
                           key=due_key(request.id, state.deadline),
                           payload={"due_date": _due_date(state.deadline, state.queue).isoformat()}, now=now)
            report.due_dates += 1

    handled = handled_fractions(events)
    passed = [f for f, when in state.thresholds if when <= now and _key(f) not in handled]
    if passed:
        # Only the latest threshold speaks: after a worker outage a thread gets one message, not a burst
        # of stale ones ("50% used" is noise next to "SLA missed"). The others are recorded as skipped.
        fraction, skipped = passed[-1], [_key(f) for f in passed[:-1]]
        f = f"{fraction:g}"
        breach = fraction >= 1.0
        text = (breach_thread_text(request, state, now, config.slack.leaders_channel, config.slack.leaders)
                if breach else reminder_text(request, state, fraction, now, config.slack.leaders))
        # Each entry's key is a pure function of (request, threshold), so it lands once whatever happens;
        # the audit event relies on the row lock instead: only one sweep at a time holds this request, and
        # it sees the events of every sweep that held it before.
        _enqueue_slack(s, request, kind=outbox.Kind.THREAD_REPLY, key=("sla", request.id, f), now=now,
                       payload={"text": text, "unless_allocated": not breach})
        _enqueue_slack(s, request, kind=outbox.Kind.CARD_UPDATE, key=("sla", request.id, f, "card"), now=now)
        if breach and config.slack.leaders_channel:
            # Its own lane: the escalation must not wait behind a card that Slack has not taken yet.
            _enqueue_slack(s, request, kind=outbox.Kind.POST, key=("sla", request.id, "breach", "leaders"),
                           now=now, lane=outbox.Lane.LEADERS,
                           # ask_breach_reason: the notifier may add a "Record why" button (see record_breach_reason).
                           payload={"channel": config.slack.leaders_channel, "ask_breach_reason": True,
                                    "text": breach_leaders_text(request, state, now)})
        elif breach:
            log.warning("%s breached its SLA but no [slack] leaders_channel is configured", request.reference)
        detail = {"fraction": _key(fraction), "skipped": skipped, "deadline": state.deadline.isoformat()}
        new_events.append({"request_id": request.id, "kind": BREACH_EVENT if breach else REMINDER_EVENT,
                           "source": "system", "at": now, "detail": detail})
        report.breaches += breach
        report.reminders += not breach
        report.skipped += len(skipped)
        handled.update({_key(fraction), *skipped})
    pending = [when for f, when in state.thresholds if _key(f) not in handled]
    nxt = min(pending, default=None)
    # Never hand back a time already due, or this batch's rows would come round again forever.
    return (nxt if nxt is None or nxt > now else now + timedelta(minutes=1)), state.deadline


def due_query(now: datetime, limit: int, *, dialect: str):
    """The due requests, oldest check first: a range scan of ix_request_next_check_at, stopped at `limit`."""
    query = select(Request).where(Request.next_check_at <= now).order_by(Request.next_check_at).limit(limit)
    if dialect == "postgresql":
        # Concurrent workers take disjoint batches; a row being claimed right now is skipped and its
        # claim clears next_check_at. The lock also makes the status we read here the current one.
        query = query.with_for_update(skip_locked=True)
    return query


def events_query(request_ids: Sequence[int]):
    """The clock and threshold events of a batch, in one read of ix_request_event_request_id."""
    return (select(RequestEvent)
            .where(RequestEvent.request_id.in_(request_ids), RequestEvent.kind.in_(_SWEEP_EVENT_KINDS))
            .order_by(RequestEvent.id))


def sweep_batch(engine: Engine, config: Config, *, now: datetime, limit: int = 500) -> tuple[int, SweepReport]:
    """One transaction: lock up to `limit` due requests, act on each, store their next check."""
    report = SweepReport(batches=1)
    with session_scope(engine) as s:
        requests = list(s.exec(due_query(now, limit, dialect=engine.dialect.name)).all())
        if not requests:
            return 0, report
        ids = [r.id for r in requests]
        by_request: dict[int, list[RequestEvent]] = {i: [] for i in ids}
        for e in s.exec(events_query(ids)).all():
            by_request[e.request_id].append(e)
        updates: list[dict] = []
        new_events: list[dict] = []
        for r in requests:
            try:
                nxt, deadline = _act(s, r, by_request[r.id], config, now, report, new_events)
            except (ValueError, RuntimeError) as e:
                # Bad data or config for this one request (say, an SLA target the config no longer
                # parses): log it and stop checking it rather than failing every other request's reminder.
                log.error("SLA sweep skipped %s: %s", r.reference, e)
                nxt, deadline = None, r.deadline
            updates.append({"id": r.id, "next_check_at": nxt, "deadline": deadline})
        # Two executemany statements for the whole batch, rather than a round trip per row.
        if new_events:
            s.execute(sa.insert(RequestEvent), new_events)
        s.execute(sa.update(Request), updates)
        report.checked = len(requests)
    return len(requests), report


def sweep(engine: Engine, config: Config, *, now: datetime, limit: int = 500, max_batches: int = 20) -> SweepReport:
    """Act on every request whose SLA check is due as of `now`, `limit` rows per transaction.

    Safe to run twice and concurrently. Stops after `max_batches` (report.more says rows remain), so one
    worker pass stays bounded; the next pass carries on.
    """
    if now.tzinfo is None:
        raise ValueError("sweep needs a timezone-aware `now`")
    total = SweepReport()
    for _ in range(max_batches):
        n, batch = sweep_batch(engine, config, now=now, limit=limit)
        total.batches += batch.batches if n else 0
        total.checked += batch.checked
        total.reminders += batch.reminders
        total.breaches += batch.breaches
        total.skipped += batch.skipped
        total.due_dates += batch.due_dates
        if n < limit:
            break
    else:
        total.more = True
    if total.checked:
        log.info("SLA sweep: %d checked, %d reminders, %d breaches", total.checked, total.reminders,
                 total.breaches)
    return total


# ---------------------------------------------------------------- own the miss


@dataclass(frozen=True)
class BreachReasonResult:
    request: Request
    changed: bool
    message: str


def is_breached(request: Request, now: datetime) -> bool:
    """Whether the request missed its SLA: allocated after its deadline, or still waiting past it."""
    return sla_policy.SlaPolicy.breached(request.deadline, request.allocated_at, now)


def record_breach_reason(engine: Engine, request_id: int, actor: str, reason: str, note: str | None,
                         now: datetime, *, config: Config) -> BreachReasonResult:
    """Store why a request missed its SLA: `Request.breach_reason`, an audit event, a GitLab note and
    a line in the card's thread. Leaders and the SA who holds the request may record it; recording
    again replaces the reason (the audit trail keeps both). The same reason and note again is a no-op,
    so a repeated modal submission changes nothing.
    """
    if reason not in BREACH_REASONS:
        raise InvalidTransition(f"Unknown reason {reason!r}; choose one of the listed reasons.")
    note = (note or "").strip()
    if reason == "other" and not note:
        raise InvalidTransition("Say what happened in the note when the reason is “Other”.")
    with session_scope(engine) as s:
        query = select(Request).where(Request.id == request_id)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        request = s.exec(query).first()
        if request is None:
            raise InvalidTransition(f"There is no request {request_id}.")
        if actor not in config.slack.leaders and actor != request.owner:
            raise NotAllowed("Only leaders and the SA who has this request can record why its SLA was missed.")
        if not is_breached(request, now):
            raise InvalidTransition(f"{request.reference} has not missed its SLA.")
        last = s.exec(select(RequestEvent).where(RequestEvent.request_id == request_id,
                                                 RequestEvent.kind == BREACH_REASON_EVENT)
                      .order_by(RequestEvent.id.desc()).limit(1)).first()
        if last is not None and last.detail.get("reason") == reason and (last.detail.get("note") or "") == note:
            return BreachReasonResult(request, False, f"That reason is already recorded for {request.reference}.")
        event = repo.add_event(session=s, request_id=request_id, kind=BREACH_REASON_EVENT, source="slack",
                               actor=actor, at=now, reason=reason, note=note or None,
                               previous=request.breach_reason)
        request.breach_reason, request.updated_at = reason, now
        s.add(request)
        s.flush()
        label = BREACH_REASONS[reason]
        body = f"**SLA missed: {label}** (recorded in Slack)"
        if note:
            body += "\n\n" + gitlab_quote(note)
        outbox.enqueue(s, kind=outbox.Kind.GITLAB_NOTE, request_id=request_id,
                       key=("breach_reason", request_id, event.id), payload={"body": body}, now=now)
        thread = f"<@{actor}> recorded why the SLA was missed: *{escape(label)}*"
        if note:
            thread += "\n" + quote_lines(note)
        outbox.enqueue(s, kind=outbox.Kind.THREAD_REPLY, request_id=request_id,
                       key=("breach_reason_thread", request_id, event.id), payload={"text": thread},
                       now=now)
    return BreachReasonResult(request, True, f"Thanks: the reason is on {request.reference} and its issue.")
