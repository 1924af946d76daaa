"""The background worker: outbox delivery (GitLab and Slack side effects) and the SLA sweep.

`run_once(settings, now)` is one pass, safe to run twice and concurrently (outbox entries are leased,
SKIP LOCKED on PostgreSQL). `Worker.loop` repeats it, woken early when the web process stores work.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from slack_sdk import WebClient

from triage import metrics, outbox
from triage.config import Settings
from triage.core.errors import DeliveryError
from triage.db import explain, make_engine, session_scope
from triage.models import reference_of
from triage.services import DeliveryReport, Services, digest, sla_sweep

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # how long the loop sleeps when it has nothing due and nobody wakes it


def build_tracker(settings: Settings):
    if not settings.gitlab_configured:
        return None
    from triage.gitlab_tracker import GitLabTracker

    return GitLabTracker(settings.gitlab_url, settings.gitlab_token.get_secret_value())


def build_crm(settings: Settings, *, timeout: float = 10.0):
    """The Salesforce adapter, or None when SALESFORCE_CLIENT_ID/SECRET are not set."""
    if not settings.salesforce_configured:
        return None
    from triage.salesforce_crm import SalesforceCRM

    sf = settings.config.salesforce
    return SalesforceCRM(
        client_id=settings.salesforce_client_id or "",
        client_secret=settings.salesforce_client_secret.get_secret_value() if settings.salesforce_client_secret
        else "",
        login_url=settings.salesforce_login_url, fields=sf.fields.prefill(), primary_sa_field=sf.fields.primary_sa,
        verify=str(settings.salesforce_ca_bundle) if settings.salesforce_ca_bundle else True, timeout=timeout,
    )


def build_notifier(settings: Settings):
    if not settings.slack_bot_token:
        return None
    from triage.slack.app import quiet_slack_sdk_debug
    from triage.slack.notifier import SlackNotifier

    quiet_slack_sdk_debug()
    # No retry handlers: a 429 or outage goes back to the outbox with backoff instead of blocking here.
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url,
                       timeout=10, retry_handlers=[])
    return SlackNotifier(client, settings.config)


@dataclass
class PassReport:
    delivery: DeliveryReport
    repaired: int = 0

    @property
    def delivered(self) -> int:
        return self.delivery.delivered


def _report_outcomes(batch: DeliveryReport) -> None:
    """One log line and one counter sample per delivery attempt (why one failed is logged where it failed)."""
    for kind, request_id, result in batch.outcomes:
        metrics.record_delivery(kind, result)
        reference = reference_of(request_id) if request_id else "-"
        log.log(logging.INFO if result == "delivered" else logging.WARNING, "delivery %s %s %s", kind, result,
                reference, extra={"kind": kind, "result": result, "reference": reference})


class Worker:
    def __init__(self, services: Services, *, tracker=None, notifier=None, crm=None):
        self.services = services
        self.tracker = tracker if tracker is not None else build_tracker(services.settings)
        self.notifier = notifier if notifier is not None else build_notifier(services.settings)
        self.crm = crm if crm is not None else (services.crm or build_crm(services.settings))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> PassReport:
        """One pass as of `now` (tests, "as of" runs), or of the clock as the pass goes on (the loop)."""
        as_of = now
        now = now or datetime.now(UTC)
        # The SLA sweep first, so the reminders it enqueues go out in this same pass.
        swept = sla_sweep.sweep(self.services.engine, self.services.config, now=now)
        metrics.record_sweep(swept.reminders, swept.breaches)
        try:  # the leaders' weekly digest, once per week (an outbox entry keyed by the week)
            digest.enqueue_due(self.services.engine, self.services.config, now=now)
        except Exception:  # a digest problem must never hold up deliveries; the next pass retries
            log.exception("weekly digest not enqueued; the next pass tries again")
        delivery = self._drain(as_of)
        repaired = 0
        if self.tracker is not None:
            try:
                repaired = self.services.reconcile(tracker=self.tracker, now=now)
            except DeliveryError as e:  # GitLab down: the next pass tries again
                log.warning("drift repair skipped: %s", e)
        if repaired:  # what drift repair changed has cards and threads to update
            more = self._drain(as_of)
            delivery.delivered += more.delivered
            delivery.retried += more.retried
            delivery.errors += more.errors
        return PassReport(delivery, repaired)

    def _drain(self, now: datetime | None) -> DeliveryReport:
        """Deliver what is due, batch after batch (each batch takes one entry per lane, in order), until
        nothing is due: a failure can enqueue something due now (the AE's "queued" DM). Failed entries
        are due again no sooner than a second later, so this ends."""
        total = DeliveryReport()
        while True:
            # A pass "as of" a given time runs at that time throughout. Otherwise each batch runs at the time
            # it starts: a batch's leases and retry times count from then. Claimed at the pass's first
            # time, a batch late in a long drain (a burst's backlog takes minutes) was leased already
            # expired, so another worker took entries this one was delivering (seen at 2,000: cards and
            # DMs posted twice), and a Retry-After counted from the pass's start had already passed.
            at = now or datetime.now(UTC)
            batch = self.services.deliver_due(tracker=self.tracker, notifier=self.notifier, now=at)
            _report_outcomes(batch)
            sf_claimed, sf_delivered, sf_retried = self.services.deliver_salesforce_due(
                crm=self.crm, notifier=self.notifier, now=at)
            total.delivered += batch.delivered + sf_delivered
            total.retried += batch.retried + sf_retried
            total.errors += batch.errors
            if batch.claimed == 0 and sf_claimed == 0:
                return total

    def wake(self) -> None:
        self._wake.set()

    def loop(self) -> None:
        log.info("worker started (GitLab %s, Slack %s)", "on" if self.tracker else "not configured",
                 "on" if self.notifier else "not configured")
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except sa.exc.DBAPIError as e:  # the database is down: one line a pass, not a traceback
                log.warning("worker pass failed; trying again shortly: %s",
                            explain(self.services.settings.database_url, e))
            except Exception:  # keep the loop alive; the outbox keeps the work
                log.exception("worker pass failed; trying again shortly")
            self._wake.wait(self._idle_seconds())
        log.info("worker stopped")

    def _idle_seconds(self) -> float:
        try:
            with session_scope(self.services.engine) as s:
                due = outbox.next_due(s)
        except sa.exc.DBAPIError:  # database briefly unavailable (the pass above said why): poll again soon
            return IDLE_SECONDS
        except Exception:
            log.warning("worker could not read the outbox", exc_info=True)
            return IDLE_SECONDS
        if due is None:
            return IDLE_SECONDS
        return max(0.05, min(IDLE_SECONDS, (due - datetime.now(UTC)).total_seconds()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="triage-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)


def run_once(settings: Settings, now: datetime | None = None) -> PassReport:
    """One pass from Python: deliver what the outbox holds and run the SLA sweep as of `now`."""
    if now is not None and now.tzinfo is None:
        raise ValueError("run_once needs a timezone-aware `now`")
    engine = make_engine(settings.database_url)
    try:
        return Worker(Services(settings, engine)).run_once(now)
    finally:
        engine.dispose()
