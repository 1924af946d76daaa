"""Keyword-only queries. Each returns model objects or None; none commits (the caller's scope does)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from triage.core.lifecycle import CLOSED_STATUSES
from triage.models import Request, RequestEvent, UserLink


def get_request(*, session: Session, request_id: int) -> Request | None:
    return session.get(Request, request_id)


def get_request_by_submission(*, session: Session, submission_key: str) -> Request | None:
    return session.exec(select(Request).where(Request.submission_key == submission_key)).first()


def get_request_by_issue(*, session: Session, project: str, iid: int) -> Request | None:
    return session.exec(
        select(Request).where(Request.gitlab_project == project, Request.gitlab_iid == iid)
    ).first()


def last_queue_of(*, session: Session, requester: str) -> str | None:
    return session.exec(
        select(Request.queue).where(Request.requester == requester).order_by(Request.id.desc()).limit(1)
    ).first()


_R = Request.__table__.c
# Built once, values bound at execution: it is on the submission's ack path (see insert_request).
_OPEN_FOR_OPPORTUNITY = (
    sa.select(_R.id, _R.gitlab_url, _R.status, _R.queue, _R.submission_key)
    .where(_R.opportunity_id == sa.bindparam("opportunity_id"),
           # fixed words written into the SQL: an expanding IN would be re-rendered on every call
           *(_R.status != sa.literal_column(f"'{s}'") for s in CLOSED_STATUSES))
    .order_by(_R.id)
    .limit(1)
)
_OPEN_FOR_OPPORTUNITY_IN_QUEUE = _OPEN_FOR_OPPORTUNITY.where(_R.queue == sa.bindparam("queue"))


def open_request_for_opportunity(*, session: Session, opportunity_id: str,
                                 queue: str | None = None) -> tuple[int, str | None, str, str, str] | None:
    """(id, issue URL, status, queue, submission key) of the oldest open request for this opportunity, in
    any queue unless `queue` narrows it."""
    if queue is None:
        row = session.execute(_OPEN_FOR_OPPORTUNITY, {"opportunity_id": opportunity_id}).first()
    else:
        row = session.execute(_OPEN_FOR_OPPORTUNITY_IN_QUEUE,
                              {"opportunity_id": opportunity_id, "queue": queue}).first()
    return tuple(row) if row else None


_SA_OF_OPPORTUNITY = (
    sa.select(_R.owner, _R.id)
    .where(_R.opportunity_id == sa.bindparam("opportunity_id"), _R.owner.is_not(None))
    .order_by(_R.id.desc())
    .limit(1)
)


def sa_of_opportunity(*, session: Session, opportunity_id: str) -> tuple[str, int] | None:
    """(SA, request id) of the latest request on this opportunity that an SA worked, in any queue."""
    row = session.execute(_SA_OF_OPPORTUNITY, {"opportunity_id": opportunity_id}).first()
    return tuple(row) if row else None


def events_of(*, session: Session, request_id: int) -> Sequence[RequestEvent]:
    return session.exec(
        select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(RequestEvent.id)
    ).all()


def add_event(*, session: Session, request_id: int, kind: str, source: str, actor: str | None = None,
              at: datetime | None = None, **detail) -> RequestEvent:
    event = RequestEvent(request_id=request_id, kind=kind, source=source, actor=actor, detail=detail)
    if at is not None:
        event.at = at
    session.add(event)
    return event


def insert_request(*, session: Session, request: Request, events: Sequence[dict]) -> int:
    """Store a new request and its first audit events with two Core INSERTs, and return its id.

    This is on the submission's ack path: the ORM's unit of work (identity map, flush ordering, attribute
    history) cost more CPU than everything else the ack does, and a new row needs none of it."""
    row = {c.name: getattr(request, c.name) for c in Request.__table__.columns if c.name != "id"}
    request_id = session.execute(_INSERT_REQUEST, row).scalar_one()
    if events:
        session.execute(_INSERT_EVENT, [{"request_id": request_id, **e} for e in events])
    return request_id


_INSERT_REQUEST = sa.insert(Request.__table__).returning(_R.id)
_INSERT_EVENT = sa.insert(RequestEvent.__table__)


def get_user_link(*, session: Session, slack_user: str) -> UserLink | None:
    return session.get(UserLink, slack_user)


def slack_user_for_gitlab(*, session: Session, gitlab_user_id: int | None = None,
                          gitlab_username: str | None = None) -> str | None:
    cond = []
    if gitlab_user_id is not None:
        cond.append(UserLink.gitlab_user_id == gitlab_user_id)
    if gitlab_username:
        cond.append(sa.func.lower(UserLink.gitlab_username) == gitlab_username.lower())
    if not cond:
        return None
    return session.exec(select(UserLink.slack_user).where(sa.or_(*cond)).limit(1)).first()


def requests_between(*, session: Session, since: datetime, until: datetime,
                     queue: str | None = None) -> Sequence[Request]:
    q = select(Request).where(Request.created_at >= since, Request.created_at < until)
    if queue:
        q = q.where(Request.queue == queue)
    return session.exec(q.order_by(Request.id)).all()
