"""Keyword-only queries. Each returns model objects or None; none commits (the caller's scope does)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, select

from triage.core.lifecycle import CLOSED_STATUSES
from triage.db import fetch, insert_many
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


def _of_opportunities(among: sa.ColumnElement[bool]) -> sa.Select:
    return (
        sa.select(_R.opportunity_id, _R.id, _R.gitlab_url, _R.status, _R.queue, _R.submission_key, _R.owner)
        .where(among, sa.or_(sa.and_(*(_R.status != sa.literal_column(f"'{s}'") for s in CLOSED_STATUSES)),
                             _R.owner.is_not(None)))
        .order_by(_R.id)
    )


# Built once, values bound at execution: it is on the submission's ack path (see insert_requests). On
# PostgreSQL the ids are one array parameter, so the text is the same for any number of them (db.fetch
# runs it prepared); SQLite has no arrays, and SQLAlchemy expands the IN list there.
_OF_OPPORTUNITIES_ANY = _of_opportunities(
    _R.opportunity_id == sa.any_(sa.bindparam("opportunity_ids", type_=postgresql.ARRAY(sa.String))))
_OF_OPPORTUNITIES_IN = _of_opportunities(_R.opportunity_id.in_(sa.bindparam("opportunity_ids", expanding=True)))


def opportunities_so_far(conn: sa.Connection, opportunity_ids: Sequence[str],
                         ) -> tuple[dict[str, tuple[int, str | None, str, str, str]], dict[str, tuple[str, int]]]:
    """What is known of these opportunities, in one query for a batch of submissions: for each that has
    one, (id, issue URL, status, queue, submission key) of its oldest open request, in any queue; and for
    each an SA worked, (SA, request id) of its latest request with an owner."""
    open_rows: dict[str, tuple[int, str | None, str, str, str]] = {}
    worked: dict[str, tuple[str, int]] = {}
    if opportunity_ids:
        for opportunity, request_id, url, status, queue, key, owner in fetch(
                conn, _OF_OPPORTUNITIES_ANY if conn.dialect.name == "postgresql" else _OF_OPPORTUNITIES_IN,
                {"opportunity_ids": list(dict.fromkeys(opportunity_ids))}):
            if status not in CLOSED_STATUSES:
                open_rows.setdefault(opportunity, (request_id, url, status, queue, key))
            if owner is not None:
                worked[opportunity] = (owner, request_id)  # ids ascending: the latest is kept
    return open_rows, worked


_OWNER_OF = sa.select(_R.owner).where(_R.id == sa.bindparam("request_id"))


def owner_of(conn: Session | sa.Connection, *, request_id: int) -> str | None:
    """The SA who owns this request (None when unclaimed or when there is no such request)."""
    return conn.execute(_OWNER_OF, {"request_id": request_id}).scalar_one_or_none()


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


def insert_requests(conn: sa.Connection, requests: Sequence[Request],
                    events: Sequence[Sequence[dict]]) -> list[int]:
    """Store new requests and their first audit events (`events[i]` belongs to `requests[i]`) with two Core
    INSERTs however many there are, and return their ids in order.

    This is on the submission's ack path: the ORM's unit of work (identity map, flush ordering, attribute
    history) cost more CPU than everything else the ack does, and a new row needs none of it."""
    rows = [{c: getattr(r, c) for c in _REQUEST_COLUMNS} for r in requests]
    # RETURNING gives no order of its own, and asking SQLAlchemy for the rows' order makes it send one
    # INSERT per row on SQLite; the submission key is unique, so each id is found by its row's key instead.
    returned = insert_many(conn, Request.__table__, rows, returning=("submission_key", "id"))
    by_key = {key: id_ for key, id_ in returned}
    ids = [by_key[row["submission_key"]] for row in rows]
    event_rows = [{"request_id": rid, **e} for rid, evs in zip(ids, events, strict=True) for e in evs]
    insert_many(conn, RequestEvent.__table__, event_rows)
    return ids


_REQUEST_COLUMNS = [c.name for c in Request.__table__.columns if c.name != "id"]


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
