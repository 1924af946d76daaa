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


def open_request_for_opportunity(*, session: Session, opportunity_id: str,
                                 queue: str) -> tuple[int, str | None, str, str] | None:
    """(id, issue URL, status, submission key) of the oldest open request for this opportunity in this queue."""
    row = session.exec(
        select(Request.id, Request.gitlab_url, Request.status, Request.submission_key)
        .where(Request.opportunity_id == opportunity_id, Request.queue == queue,
               Request.status.not_in(CLOSED_STATUSES))
        .order_by(Request.id)
        .limit(1)
    ).first()
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
