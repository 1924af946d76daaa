"""Prometheus metrics: every definition lives here; the web and worker layers record them.

Counters and histograms count what this process did. The outbox gauges are read from the database at
scrape time, so every process reports the same backlog whichever of them Prometheus asks.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from triage.db import read_scope
from triage.models import OutboxEntry

disable_created_metrics()  # no *_created series: they double the output and say nothing here
REGISTRY = CollectorRegistry(auto_describe=True)

# Slack gives an app 3 seconds to acknowledge; the buckets are finer below that.
SLACK_ACK_SECONDS = Histogram(
    "triage_slack_ack_seconds", "Time from receiving a Slack request to starting its HTTP response",
    ["kind"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0))
HTTP_REQUESTS = Counter(
    "triage_http_requests_total", "HTTP requests answered, by route template and status",
    ["method", "route", "status"], registry=REGISTRY)
DELIVERIES = Counter(
    "triage_outbox_deliveries_total", "Outbox deliveries attempted, by kind and result "
    "(delivered, retry: waits with backoff, failed: refused or unexpected error)",
    ["kind", "result"], registry=REGISTRY)
SLA_REMINDERS = Counter("triage_sla_reminders_total", "SLA reminders the sweep enqueued", registry=REGISTRY)
SLA_BREACHES = Counter("triage_sla_breaches_total", "SLA breach escalations the sweep enqueued", registry=REGISTRY)
WEBHOOKS = Counter(
    "triage_gitlab_webhooks_total", "GitLab webhook deliveries received, by result", ["result"], registry=REGISTRY)
# Slack payload types; anything else is counted as "other" so label values stay bounded.
SLACK_KINDS = frozenset({"view_submission", "view_closed", "block_actions", "block_suggestion", "shortcut",
                         "message_action", "command", "event_callback", "url_verification"})


def slack_kind(body: object) -> str:
    """The payload kind of a parsed Slack request body, for logs and labels."""
    if not isinstance(body, dict):
        return "other"
    if "command" in body and "type" not in body:
        return "command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind in SLACK_KINDS else "other"


def webhook_result(result: str) -> str:
    """A bounded label for what services made of a GitLab delivery (its text names issues and people)."""
    for prefix in ("ignored", "duplicate"):
        if result.startswith(prefix):
            return prefix
    return "applied"


def record_delivery(kind: str, result: str) -> None:
    DELIVERIES.labels(kind=kind, result=result).inc()


def record_sweep(reminders: int, breaches: int) -> None:
    if reminders:
        SLA_REMINDERS.inc(reminders)
    if breaches:
        SLA_BREACHES.inc(breaches)


def outbox_backlog(engine: Engine, now: datetime | None = None) -> tuple[int, float]:
    """(entries waiting, age in seconds of the oldest): the undone rows only, found through ix_outbox_due."""
    with read_scope(engine) as s:
        count, oldest = s.execute(sa.select(sa.func.count(), sa.func.min(OutboxEntry.created_at))
                                  .where(OutboxEntry.done_at.is_(None))).one()
    if oldest is None:
        return int(count), 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds())


class _OutboxCollector(Collector):
    """triage_outbox_depth and triage_outbox_oldest_age_seconds, read from the database at each scrape
    (nothing is reported while the database can't be read: /healthz says why)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def describe(self):
        return [GaugeMetricFamily("triage_outbox_depth", "Outbox entries not yet delivered"),
                GaugeMetricFamily("triage_outbox_oldest_age_seconds",
                                  "Age of the oldest undelivered outbox entry (0 when none)")]

    def collect(self):
        engine = self.engine
        if engine is None:
            return
        try:
            depth, age = outbox_backlog(engine)
        except sa.exc.SQLAlchemyError:
            return
        depth_family, age_family = self.describe()
        depth_family.add_metric([], depth)
        age_family.add_metric([], age)
        yield depth_family
        yield age_family


OUTBOX = _OutboxCollector()
REGISTRY.register(OUTBOX)


def watch_outbox(engine: Engine) -> None:
    """Report this database's outbox in the gauges (the web app and a worker with --metrics-port)."""
    OUTBOX.engine = engine


def exposition(engine: Engine | None = None) -> tuple[bytes, str]:
    """The text Prometheus scrapes."""
    if engine is not None:
        watch_outbox(engine)
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
