"""Enqueue and claim outbox entries, with backoff. Safe with several workers (SKIP LOCKED on PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from triage.db import session_scope
from triage.models import OutboxEntry

LEASE = timedelta(minutes=2)  # a worker that dies mid-delivery frees its entries after this
BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0


class Kind(StrEnum):
    """What an outbox entry does; `triage.services.delivery.HANDLERS` has one handler per kind."""

    CREATE_ISSUE = "create_issue"
    POST_CARD = "post_card"
    NOTIFY_LANDED = "notify_landed"
    NOTIFY_QUEUED = "notify_queued"
    GITLAB_UPDATE = "gitlab_update"
    GITLAB_NOTE = "gitlab_note"
    CARD_UPDATE = "card_update"
    THREAD_REPLY = "thread_reply"
    POST = "post"
    DM = "dm"
    ASK_GITLAB_USERNAME = "ask_gitlab_username"
    # Slack's users.info for an SA's email, queued in the request's GitLab lane just before the update that
    # assigns them, so the GitLab step itself talks to GitLab only.
    LOOKUP_SA_EMAIL = "lookup_sa_email"


class Lane(StrEnum):
    """Which ordered stream of one request an entry joins: entries of a lane go out in id order."""

    GITLAB = "gitlab"
    SLACK = "slack"
    LEADERS = "leaders"  # breach escalations: never wait behind a card Slack has not taken yet
    # Posting the card: never behind a thread reply that waits for the card (an SLA due at once, a board
    # change before the card is up), or neither would ever go.
    CARD = "card"


GITLAB_KINDS = frozenset({Kind.CREATE_ISSUE, Kind.GITLAB_UPDATE, Kind.GITLAB_NOTE})


def lane_of(lane: Lane, request_id: int | str | None) -> str:
    return f"{lane}:{request_id}"


def dedupe_key(parts: str | tuple[Any, ...]) -> str:
    """("due", 7, "2026-12-01T00:00") -> "due:7:2026-12-01T00:00"; the same effect always gets the same key."""
    return parts if isinstance(parts, str) else ":".join(str(p) for p in parts)


def enqueue(session: Session, *, kind: Kind, key: str | tuple[Any, ...], request_id: int | None = None,
            lane: Lane | None = None, lane_key: str | None = None, payload: dict[str, Any] | None = None,
            not_before: datetime | None = None, now: datetime) -> bool:
    """Add an entry unless one with the same dedupe key exists; True when it was added.

    The lane defaults to the kind's service (GitLab or Slack) for this request; `lane_key` names a lane
    that belongs to no request (the weekly digest's).
    """
    kind = Kind(kind)
    lane = lane or (Lane.GITLAB if kind in GITLAB_KINDS else Lane.SLACK)
    values = {
        "kind": kind.value, "lane": lane_of(lane, request_id if lane_key is None else lane_key),
        "dedupe_key": dedupe_key(key),
        "request_id": request_id, "payload": payload or {}, "created_at": now,
        "next_attempt_at": not_before or now, "attempts": 0,
    }
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
    return session.execute(_insert_statement(session.get_bind().dialect.name), values).first() is not None


_INSERTS: dict[str, Any] = {}


def _insert_statement(dialect: str) -> Any:
    """The INSERT ... ON CONFLICT DO NOTHING, built once per dialect with the values bound at execution:
    building it for every entry cost more CPU than running it (it is on the submission's ack path)."""
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = OutboxEntry.__table__
        stmt = _INSERTS[dialect] = (insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
                                    .returning(table.c.id))
    return stmt


def claim_due(engine: Engine, *, now: datetime, limit: int = 20, lease: timedelta = LEASE,
              kinds: Sequence[str] | None = None) -> list[OutboxEntry]:
    """Take up to `limit` due entries for this worker: the oldest undone entry of each lane only."""
    earlier = sa.orm.aliased(OutboxEntry)
    blocked = (
        sa.select(earlier.id)
        .where(earlier.lane == OutboxEntry.lane, earlier.id < OutboxEntry.id, earlier.done_at.is_(None))
        .exists()
    )
    query = (
        select(OutboxEntry)
        .where(OutboxEntry.done_at.is_(None), OutboxEntry.next_attempt_at <= now,
               sa.or_(OutboxEntry.locked_until.is_(None), OutboxEntry.locked_until <= now), ~blocked)
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if kinds:
        query = query.where(OutboxEntry.kind.in_(kinds))
    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=OutboxEntry)
        entries = list(session.exec(query).all())
        for e in entries:
            # attempts counts starts, not failures: a crash after the call still shows attempts > 0,
            # which tells the handler to look for what the crashed attempt may have done.
            e.attempts += 1
            e.locked_until = now + lease
            session.add(e)
    return entries


def complete(session: Session, entry_id: int, *, now: datetime) -> None:
    session.execute(sa.update(OutboxEntry).where(OutboxEntry.id == entry_id)
                    .values(done_at=now, locked_until=None, last_error=None))


def backoff(attempts: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return max(float(retry_after), 1.0)
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0)) * random.uniform(0.8, 1.2)


def retry(engine: Engine, entry: OutboxEntry, *, now: datetime, error: str,
          retry_after: float | None = None, no_effect: bool = False) -> datetime:
    """Put the entry back for later. `no_effect`: this attempt certainly changed nothing (rate limited), so
    it does not count as a start: the next attempt looks for an earlier one's result only if one before
    this may have had an effect (a lookup after every 429 would spend the same rate-limited quota)."""
    when = now + timedelta(seconds=backoff(entry.attempts, retry_after))
    values: dict[str, Any] = {"next_attempt_at": when, "locked_until": None, "last_error": error[:2000]}
    if no_effect:
        values["attempts"] = sa.func.greatest(OutboxEntry.attempts - 1, 0) if engine.dialect.name == "postgresql" \
            else sa.func.max(OutboxEntry.attempts - 1, 0)
    with session_scope(engine) as session:
        session.execute(sa.update(OutboxEntry).where(OutboxEntry.id == entry.id).values(**values))
    return when


def pending_count(session: Session) -> int:
    return session.exec(select(sa.func.count()).select_from(OutboxEntry)
                        .where(OutboxEntry.done_at.is_(None))).one()


def next_due(session: Session) -> datetime | None:
    return session.exec(select(sa.func.min(OutboxEntry.next_attempt_at))
                        .where(OutboxEntry.done_at.is_(None))).one()


def backlog(session: Session) -> tuple[int, str | None]:
    """How many entries wait, and the error of the longest-waiting failed one (for /healthz)."""
    waiting = pending_count(session)
    error = session.exec(select(OutboxEntry.last_error).where(OutboxEntry.done_at.is_(None),
                                                              OutboxEntry.last_error.is_not(None))
                         .order_by(OutboxEntry.id).limit(1)).first()
    return waiting, error
