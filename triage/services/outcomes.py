"""Technical outcomes: recorded when an SA marks a request done, correctable by a leader, and counted.

``technical_summary`` is what the leaders' summaries read: per queue and per SA, the honest technical win
rate wins / (wins + losses + withdrew) beside the rate that leaves withdrawals out, the counts behind both,
and the time from request to outcome. A request counts in the period it was received (submitted) in, as
every SLA figure does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from triage.core.errors import InvalidTransition, NotAllowed, ValidationFailed
from triage.core.gitlab_text import quote as gitlab_quote
from triage.core.opportunity import OUTCOME_LABELS, Outcome, validate_outcome, win_rate
from triage.core.slack_text import quote_lines
from triage.db import read_scope, session_scope
from triage.models import Request
from triage.services.base import Change, ServiceBase, _mention

__all__ = ["OUTCOME_CSV_COLUMNS", "OutcomesMixin", "empty_figures", "outcome_columns", "technical_figures",
           "technical_summary"]

OUTCOME_CSV_COLUMNS = ("salesforce_verified", "technical_outcome", "outcome_at", "outcome_by", "days_to_outcome")


def outcome_columns(request: Request) -> dict[str, Any]:
    """The Salesforce and outcome columns of one request's row in the requests CSV."""
    days = None
    if request.outcome_at is not None:
        days = round((request.outcome_at - request.created_at).total_seconds() / 86400, 2)
    return {"salesforce_verified": "" if request.salesforce_verified is None else
            ("yes" if request.salesforce_verified else "no"),
            "technical_outcome": request.technical_outcome or "",
            "outcome_at": request.outcome_at.isoformat() if request.outcome_at else "",
            "outcome_by": request.outcome_by or "", "days_to_outcome": "" if days is None else days}


class OutcomesMixin(ServiceBase):
    def may_record_outcome(self, request: Request, actor: str) -> bool:
        """The SA who had it, once; a leader at any time (to correct it)."""
        if self.is_leader(actor):
            return True
        return actor == request.owner and request.technical_outcome is None

    def record_outcome(self, request_id: int, actor: str, outcome: str, evidence: str | None, *,
                       now: datetime | None = None) -> Change:
        """Store how the technical evaluation ended, note it on the issue and show it on the card."""
        now = now or self.now()
        errors = validate_outcome(outcome, evidence)
        if errors:
            raise ValidationFailed(errors)
        evidence = (evidence or "").strip()
        with session_scope(self.engine) as s:
            request = self._require(s, request_id)
            if request.status != "done":
                raise InvalidTransition(f"{request.reference} is not done yet: the outcome is recorded when it "
                                        "is marked done.")
            if not self.may_record_outcome(request, actor):
                raise NotAllowed("The outcome is recorded by the SA who had the request; a leader may correct it.")
            previous = request.technical_outcome
            if previous == outcome and (request.outcome_evidence or "") == evidence:
                return Change(request, False, f"{request.reference} already says {OUTCOME_LABELS[Outcome(outcome)]}.")
            s.execute(sa.update(Request).where(Request.id == request_id).values(
                technical_outcome=outcome, outcome_evidence=evidence or None, outcome_by=actor, outcome_at=now,
                updated_at=now))
            s.refresh(request)
            label = OUTCOME_LABELS[Outcome(outcome)]
            verb = "corrected the technical outcome to" if previous else "recorded the technical outcome:"
            thread = f"{_mention(actor)} {verb} *{label}*" + (f"\n{quote_lines(evidence)}" if evidence else "")
            note = (f"**Technical outcome: {label}**" + (" (corrected)" if previous else "") + " — recorded in Slack"
                    + (f"\n\nEvidence (who validated what):\n\n{gitlab_quote(evidence)}" if evidence else ""))
            self._record(s, request, kind="outcome_corrected" if previous else "outcome", actor=actor,
                         source="slack", now=now, outcome=outcome, previous=previous, thread=thread, note=note)
        self._wake()
        return Change(request, True, f"Recorded: {request.reference} ended in {label}.")

    def technical_summary(self, since: datetime, until: datetime, *, queue: str | None = None) -> dict[str, Any]:
        return technical_summary(self.engine, since, until, queue=queue)


def _percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (as the SLA figures use), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return round(ordered[int(rank) - 1], 1)


def _figures(rows: Sequence[Any]) -> dict[str, Any]:
    rate = win_rate(r.technical_outcome for r in rows if r.technical_outcome)
    days = [(r.outcome_at - r.created_at).total_seconds() / 86400 for r in rows
            if r.technical_outcome and r.outcome_at is not None]
    out: dict[str, Any] = rate.as_dict()
    out["win_rate"] = None if rate.honest is None else round(rate.honest, 4)
    out["win_rate_excluding_withdrawals"] = (None if rate.excluding_withdrawals is None
                                             else round(rate.excluding_withdrawals, 4))
    out["done"] = sum(1 for r in rows if r.status == "done")
    out["outcome_missing"] = sum(1 for r in rows if r.status == "done" and not r.technical_outcome)
    out["time_to_outcome_days"] = {"p50": _percentile(days, 50), "p90": _percentile(days, 90)}
    return out


def empty_figures() -> dict[str, Any]:
    """The figures of a group with no request done yet (every count 0, rates None)."""
    return _figures([])


def technical_figures(session: Any, since: datetime, until: datetime, *,
                      queues: Sequence[str] | None = None) -> dict[str, Any]:
    """`technical_summary` inside the caller's read transaction (the SLA summary's), with a list of queues.

    Reads only the requests done or with an outcome, and only the columns the figures need."""
    cols = (Request.queue, Request.request_type, Request.status, Request.owner, Request.outcome_by,
            Request.technical_outcome, Request.created_at, Request.outcome_at)
    cond = [Request.created_at >= since, Request.created_at < until,
            sa.or_(Request.status == "done", Request.technical_outcome.isnot(None))]
    if queues is not None:
        cond.append(Request.queue.in_(tuple(queues)))
    rows = list(session.execute(sa.select(*cols).where(*cond).order_by(Request.id)))
    by_queue: dict[str, list[Any]] = defaultdict(list)
    by_type: dict[str, list[Any]] = defaultdict(list)
    by_sa: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_queue[r.queue].append(r)
        by_type[r.request_type].append(r)
        sa_user = r.owner or r.outcome_by
        if sa_user:
            by_sa[sa_user].append(r)
    return {
        "totals": _figures(rows),
        "queues": [{"queue": k, **_figures(v)} for k, v in sorted(by_queue.items())],
        "types": [{"request_type": k, **_figures(v)} for k, v in sorted(by_type.items())],
        "sas": [{"slack_user": k, **_figures(v)} for k, v in sorted(by_sa.items())],
    }


def technical_summary(engine: Engine, since: datetime, until: datetime, *,
                      queue: str | None = None) -> dict[str, Any]:
    """Technical win figures for requests received in [since, until): totals, per queue, per type, per SA.

    Keys of each part: technical_wins, technical_losses, withdrew, not_applicable, win_rate (the honest
    wins / (wins + losses + withdrew)), win_rate_excluding_withdrawals (wins / (wins + losses)), done,
    outcome_missing (done without an outcome yet), time_to_outcome_days {p50, p90} (calendar days from the
    request to its outcome). Rates are fractions in [0, 1], None when there is nothing to divide by.
    The SLA summary (services/summary.py) carries the same figures under "technical".
    """
    with read_scope(engine) as s:
        return technical_figures(s, since, until, queues=None if queue is None else [queue])
