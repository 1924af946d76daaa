"""Enqueue and claim outbox entries, with backoff. Safe with several workers (SKIP LOCKED on PostgreSQL)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from triage.db import insert_many, read_scope, session_scope
from triage.models import OutboxEntry, ServiceHold

# A worker holds the entries it works on for LEASE and renews the lease every RENEW_EVERY while it
# works (keep_leased), so a slow call keeps its entry, and a worker killed mid-delivery frees its
# entries within LEASE for the next worker (or the same one, restarted).
log = logging.getLogger(__name__)

LEASE = timedelta(seconds=15)
RENEW_EVERY = timedelta(seconds=5)
BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0


class Kind(StrEnum):
    """What an outbox entry does; `triage.services.delivery.HANDLERS` has one handler per GitLab and Slack kind."""

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
    # views.publish of one person's App Home, after a change they would see there.
    PUBLISH_HOME = "publish_home"
    # Salesforce's, delivered by `CrmMixin.deliver_salesforce_due` (they need the Crm port, which only a
    # process with Salesforce settings has), in the request's Salesforce lane.
    SALESFORCE_VERIFY = "salesforce_verify"
    SALESFORCE_WRITEBACK = "salesforce_writeback"
    SALESFORCE_PRIMARY_SA = "salesforce_primary_sa"


class Lane(StrEnum):
    """Which ordered stream of one request an entry joins: entries of a lane go out in id order."""

    GITLAB = "gitlab"
    SLACK = "slack"
    LEADERS = "leaders"  # breach escalations: never wait behind a card Slack has not taken yet
    # Posting the card: never behind a thread reply that waits for the card (an SLA due at once, a board
    # change before the card is up), or neither would ever go.
    CARD = "card"
    SALESFORCE = "salesforce"
    HOME = "home"  # one person's App Home (keyed by the user, not the request): never waits behind a card


GITLAB_KINDS = frozenset({Kind.CREATE_ISSUE, Kind.GITLAB_UPDATE, Kind.GITLAB_NOTE})
SALESFORCE_KINDS = frozenset({Kind.SALESFORCE_VERIFY, Kind.SALESFORCE_WRITEBACK, Kind.SALESFORCE_PRIMARY_SA})


def lane_of(lane: Lane, request_id: int | str | None) -> str:
    return f"{lane}:{request_id}"


def dedupe_key(parts: str | tuple[Any, ...]) -> str:
    """("due", 7, "2026-12-01T00:00") -> "due:7:2026-12-01T00:00"; the same effect always gets the same key."""
    return parts if isinstance(parts, str) else ":".join(str(p) for p in parts)


def entry(*, kind: Kind, key: str | tuple[Any, ...], request_id: int | None = None, lane: Lane | None = None,
          lane_key: str | None = None, payload: dict[str, Any] | None = None, not_before: datetime | None = None,
          now: datetime) -> dict[str, Any]:
    """The row of a new entry. The lane defaults to the kind's service (GitLab or Slack) for this request;
    `lane_key` names a lane that belongs to no request (the weekly digest's)."""
    kind = Kind(kind)
    lane = lane or (Lane.GITLAB if kind in GITLAB_KINDS else Lane.SLACK)
    return {
        "kind": kind.value, "lane": lane_of(lane, request_id if lane_key is None else lane_key),
        "dedupe_key": dedupe_key(key),
        "request_id": request_id, "payload": payload or {}, "created_at": now,
        "next_attempt_at": not_before or now, "attempts": 0,
    }


def enqueue(session: Session | sa.Connection, **what: Any) -> bool:
    """Add an entry (the arguments of `entry`) unless one with the same dedupe key exists; True when it
    was added."""
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
    return bool(insert_many(session, OutboxEntry.__table__, [entry(**what)], returning=("id",),
                            skip_conflicts_on="dedupe_key"))


def enqueue_all(conn: Session | sa.Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Add several entries (rows from `entry`) in one statement; any whose dedupe key exists is skipped."""
    insert_many(conn, OutboxEntry.__table__, entries, skip_conflicts_on="dedupe_key")


def claim_due(engine: Engine, *, now: datetime, limit: int = 20, lease: timedelta = LEASE,
              kinds: Sequence[str] | None = None) -> list[OutboxEntry]:
    """Take up to `limit` due entries for this worker: the oldest undone entry of each lane only.

    `kinds` limits the claim to what this worker can deliver; None means every kind. An empty `kinds`
    (no service configured for any of them) claims nothing: it must not read as "no filter".
    """
    if kinds is not None and not kinds:
        return []
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
    if kinds is not None:
        query = query.where(OutboxEntry.kind.in_(kinds))
    with session_scope(engine) as session:
        for service in _holds(session, now):
            query = query.where(~_lanes_of(service))
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


@contextmanager
def keep_leased(engine: Engine, entries: Sequence[OutboxEntry], *, claimed_at: datetime, lease: timedelta = LEASE,
                every: timedelta = RENEW_EVERY) -> Iterator[None]:
    """Renew the lease of `entries` while the block runs, in the claim's own clock (`claimed_at` plus the
    time elapsed since), so a delivery slower than LEASE is not taken over by another worker."""
    ids = [e.id for e in entries]
    if not ids:
        yield
        return
    stop = threading.Event()
    started = time.monotonic()

    def renew() -> None:
        while not stop.wait(every.total_seconds()):
            until = claimed_at + timedelta(seconds=time.monotonic() - started) + lease
            try:
                with session_scope(engine) as session:
                    # Only entries still in flight: done ones and ones sent back to wait keep what they have.
                    session.execute(sa.update(OutboxEntry).where(
                        OutboxEntry.id.in_(ids), OutboxEntry.done_at.is_(None),
                        OutboxEntry.locked_until.is_not(None), OutboxEntry.locked_until < until,
                    ).values(locked_until=until))
            except Exception:  # a missed renewal only shortens the lease; try again
                log.warning("could not renew outbox leases; trying again", exc_info=True)

    thread = threading.Thread(target=renew, name="triage-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _lanes_of(service: str) -> Any:
    gitlab = OutboxEntry.lane.like("gitlab:%")
    return gitlab if service == "gitlab" else ~gitlab


def service_of(lane: str) -> str:
    """"gitlab" or "slack": the service whose holds an entry of this lane waits out (`_lanes_of` in SQL)."""
    return "gitlab" if lane.startswith("gitlab:") else "slack"


def hold_service(engine: Engine, *, lane: str, until: datetime) -> None:
    """A service said "wait" (429 with Retry-After) to an entry of `lane`: every entry for that service
    waits until then, including entries enqueued meanwhile, not just the one that was told. GitLab's and
    Slack's limits count per token, so the others would only be refused too."""
    service = service_of(lane)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(ServiceHold).values(service=service, until=until)
    # An upsert, as parallel deliveries may be told to wait at the same moment; the later end wins.
    stmt = stmt.on_conflict_do_update(index_elements=["service"], set_={"until": sa.case(
        (ServiceHold.until < stmt.excluded.until, stmt.excluded.until), else_=ServiceHold.until)})
    with session_scope(engine) as session:
        session.execute(stmt)


def held_until(engine: Engine, *, lane: str, now: datetime) -> datetime | None:
    """When the hold on the service of `lane` ends, or None when there is none now (see hold_service)."""
    with read_scope(engine) as session:
        return _holds(session, now).get(service_of(lane))


def _holds(session: Session, now: datetime | None = None) -> dict[str, datetime]:
    query = select(ServiceHold)
    if now is not None:
        query = query.where(ServiceHold.until > now)
    return {h.service: h.until for h in session.exec(query).all()}


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
    """When the next entry can be worked: not before its lease ends or its service's hold is over
    (otherwise a restarted or rate-limited worker would poll hot)."""
    holds = _holds(session)
    due = sa.case((OutboxEntry.locked_until > OutboxEntry.next_attempt_at, OutboxEntry.locked_until),
                  else_=OutboxEntry.next_attempt_at)
    best = None
    for service in ("gitlab", "slack"):
        value = session.exec(select(sa.func.min(due)).where(OutboxEntry.done_at.is_(None),
                                                            _lanes_of(service))).one()
        if value is None:
            continue
        if isinstance(value, str):  # SQLite's CASE loses the column type
            value = datetime.fromisoformat(value)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        if service in holds and holds[service] > value:
            value = holds[service]
        best = value if best is None else min(best, value)
    return best


def backlog(session: Session) -> tuple[int, str | None]:
    """How many entries wait, and the error of the longest-waiting failed one (for /healthz)."""
    waiting = pending_count(session)
    error = session.exec(select(OutboxEntry.last_error).where(OutboxEntry.done_at.is_(None),
                                                              OutboxEntry.last_error.is_not(None))
                         .order_by(OutboxEntry.id).limit(1)).first()
    return waiting, error
