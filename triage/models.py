"""SQLModel tables. Timestamps are timezone-aware UTC, set in Python so freezegun controls them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from triage.core.fields import RequestFields


class EventKind(StrEnum):
    """What a `RequestEvent` records. A StrEnum, so stored rows (plain strings) compare equal."""

    SUBMITTED = "submitted"
    SLA_START = "sla_start"  # the SLA clock's own history: start, pause, resume, stop
    SLA_PAUSE = "sla_pause"
    SLA_RESUME = "sla_resume"
    SLA_STOP = "sla_stop"
    ISSUE_CREATED = "issue_created"
    CARD_POSTED = "card_posted"
    CLAIMED = "claimed"
    ASSIGNED = "assigned"
    UNCLAIMED = "unclaimed"
    STATUS = "status"
    CLOSED = "closed"
    REOPENED = "reopened"
    NEEDS_INFO = "needs_info"
    ANSWERED = "answered"
    DECLINED = "declined"
    EXPEDITED = "expedited"
    UNEXPEDITED = "unexpedited"
    GITLAB_COMMENT = "gitlab_comment"
    REMINDER_SENT = "reminder_sent"  # a reminder fraction was handled (sent, or skipped as superseded)
    BREACH_ESCALATED = "breach_escalated"  # the breach was handled: thread + leaders' channel
    BREACH_REASON = "breach_reason"
    OPPORTUNITY_SA = "opportunity_sa"  # the SA who already worked this opportunity (shown on the card)
    SHORT_NOTICE = "short_notice"  # an event asked for with less time than its SLA


def reference_of(request_id: int | None) -> str:
    """How people refer to a request: SAR-42."""
    return f"SAR-{request_id}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores UTC, always returns aware datetimes (SQLite keeps no zone; PostgreSQL timestamptz does)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), index=index, nullable=nullable))


class Request(SQLModel, table=True):
    """One AE's request for an SA; the source of truth, stored before anything external is called."""

    __tablename__ = "request"
    # Each SA's open claims (the leaders' "load") from the index alone, however many requests are stored.
    __table_args__ = (sa.Index("ix_request_status_owner", "status", "owner"),)

    id: int | None = Field(default=None, primary_key=True)
    # Slack's view id: a retried or repeated submission of the same modal maps to the same row.
    submission_key: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False,
                                                                             index=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))

    requester: str = Field(max_length=32, index=True)
    requester_name: str = Field(default="", max_length=255)
    requester_tz: str = Field(default="UTC", max_length=64)
    request_type: str = Field(max_length=32, index=True)
    queue: str = Field(max_length=64, index=True)
    customer_name: str = Field(max_length=255)
    opportunity_id: str | None = Field(default=None, max_length=18, index=True)
    expedite: bool = False
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))

    status: str = Field(default="open", max_length=16, index=True)
    owner: str | None = Field(default=None, max_length=32, index=True)
    allocated_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    deadline: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    breach_reason: str | None = Field(default=None, max_length=2000)
    # Stored when the request is allocated (claim or assignment), for the leaders' summaries to aggregate
    # in SQL: SLA-clock hours from submission to allocation (paused time excluded) and whether that was in time.
    sla_hours_to_allocate: float | None = None
    allocated_within_sla: bool | None = None
    needs_info_at: datetime | None = _ts()  # the first time an SA asked the AE for more information
    # The SLA sweep reads only rows whose next check is due (indexed), never the whole table.
    next_check_at: datetime | None = _ts(index=True)

    gitlab_project: str = Field(max_length=255)
    gitlab_iid: int | None = None
    gitlab_issue_id: int | None = None
    gitlab_url: str | None = Field(default=None, max_length=1000)
    slack_channel: str = Field(max_length=32)
    slack_ts: str | None = Field(default=None, max_length=32)

    # Salesforce: None = not checked (not configured, or no opportunity), True = checked when submitted,
    # False = Salesforce could not answer in time, so the request was stored "not verified".
    salesforce_verified: bool | None = None
    # How the SA's work ended (triage.core.opportunity.Outcome), with the evidence: who validated what.
    technical_outcome: str | None = Field(default=None, max_length=32, index=True)
    outcome_evidence: str | None = Field(default=None, max_length=3000)
    outcome_by: str | None = Field(default=None, max_length=32)
    outcome_at: datetime | None = _ts()

    @classmethod
    def unsaved(cls, **values: Any) -> Request:
        """A new request's row for a Core INSERT (repo.insert_requests), never for a session: the values and
        defaults of Request(...) (a table model validates nothing either way) at a fifth of the CPU, without
        the ORM's attribute instrumentation, which the submission's ack path would pay for nothing. Its
        attributes read as usual; set them with `fill`, as it has no ORM state to record assignments in."""
        # Reading a mapped attribute needs the mappers configured, which Request(...) would have done.
        sa.orm.configure_mappers()
        return cls.model_construct(**values)

    def fill(self, **values: Any) -> None:
        """Set attributes of a row made by `unsaved`."""
        self.__dict__.update(values)

    @property
    def reference(self) -> str:
        return reference_of(self.id)

    @property
    def details(self) -> RequestFields:
        """The stored fields, typed (dates parsed); `fields` is their JSON form. The row's own columns fill
        in what older or hand-made rows left out of it."""
        return RequestFields.model_validate({"request_type": self.request_type, "queue": self.queue,
                                             "customer_name": self.customer_name, **(self.fields or {})})


class RequestEvent(SQLModel, table=True):
    """The audit trail: who did what, when, from where (slack, gitlab, system)."""

    __tablename__ = "request_event"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    actor: str | None = Field(default=None, max_length=255)
    source: str = Field(max_length=16)
    kind: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class OutboxEntry(SQLModel, table=True):
    """A side effect still to perform on GitLab or Slack. Only the worker reads these.

    Entries in the same lane (one service, one request) are delivered strictly in id order, so a
    status change never overtakes the claim before it.
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "done_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    lane: str = Field(max_length=64, index=True)
    request_id: int | None = Field(default=None, foreign_key="request.id", index=True)
    # Makes "at most once" a database fact: a second enqueue of the same effect is a no-op.
    dedupe_key: str = Field(sa_column=sa.Column(sa.String(128), unique=True, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime = Field(default_factory=utcnow,
                                      sa_column=sa.Column(UTCDateTime(), nullable=False))
    locked_until: datetime | None = _ts()
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    done_at: datetime | None = _ts()


class UserLink(SQLModel, table=True):
    """A Slack user's GitLab identity, found by email or given once by the SA."""

    __tablename__ = "user_link"

    slack_user: str = Field(primary_key=True, max_length=32)
    gitlab_user_id: int | None = None
    gitlab_username: str | None = Field(default=None, max_length=255, index=True)
    email: str | None = Field(default=None, max_length=320)
    salesforce_user_id: str | None = Field(default=None, max_length=18)  # found by email, for Primary SA
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    # Who typed the GitLab username: the SA themself (confirmed against their Slack email before it is
    # used) or a leader (trusted as given).
    linked_by: str | None = Field(default=None, max_length=32)


class WebhookDelivery(SQLModel, table=True):
    """GitLab deliveries already applied, so a redelivery changes nothing."""

    __tablename__ = "webhook_delivery"

    key: str = Field(primary_key=True, max_length=128)
    received_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class SyncState(SQLModel, table=True):
    """How far drift repair has read each project's issues (GitLab's updated_after cursor)."""

    __tablename__ = "sync_state"

    project: str = Field(primary_key=True, max_length=255)
    updated_after: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    checked_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ServiceHold(SQLModel, table=True):
    """A service (gitlab, slack) asked us to wait (429 + Retry-After): nothing goes to it until `until`."""

    __tablename__ = "service_hold"

    service: str = Field(primary_key=True, max_length=16)
    until: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ViewSubmission(SQLModel, table=True):
    """Slack view submissions already acted on, by view id, so a replayed submission does nothing new."""

    __tablename__ = "view_submission"

    view_id: str = Field(primary_key=True, max_length=64)
    callback_id: str = Field(max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class HomeViewer(SQLModel, table=True):
    """Someone who has opened the app's Home tab, and the queues they work as an SA then: when a request
    they would see there changes, their Home is published again (only theirs, not everyone's)."""

    __tablename__ = "home_viewer"

    slack_user: str = Field(primary_key=True, max_length=32)
    sa_queues: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    opened_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
