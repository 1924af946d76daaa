"""Rule 8: a crash doesn't stall delivery, and a service's "wait" holds back everything for it.
Time is the `now` handed to the worker; the fakes answer over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from freezegun import freeze_time

from tests.conftest import AE, wait_for
from tests.flows.test_intake import GOOD
from triage import outbox
from triage.db import session_scope
from triage.models import OutboxEntry
from triage.services.delivery import DELIVERY_THREADS
from triage.worker import build_notifier, build_tracker, run_once

ISSUE_CREATE = r"/projects/[^/]+/issues$"


def submit(app, n: int, now: datetime) -> None:
    for i in range(n):
        app.services.submit(submission_key=f"V{now.timestamp()}-{i}", requester=AE,
                            cleaned={**GOOD, "opportunity": None}, now=now)


def test_entries_a_killed_worker_held_are_delivered_within_seconds_of_the_restart(app, fake_gitlab, fake_slack):
    t0 = datetime.now(UTC)
    submit(app, 5, t0)
    # A worker takes the burst and is killed (-9) before it finishes any of it: its leases stay behind.
    held = outbox.claim_due(app.services.engine, now=t0, limit=50)
    assert len(held) == 5

    run_once(app.settings, t0 + timedelta(seconds=5))  # it might only be slow: its entries are left alone
    assert fake_gitlab.calls_matching("POST", ISSUE_CREATE) == []

    run_once(app.settings, t0 + outbox.LEASE + timedelta(seconds=1))
    assert timedelta(seconds=15) >= outbox.LEASE
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 5
    assert all(app.services.get(r.request_id).slack_ts for r in held)  # and every card is posted


def test_a_slow_delivery_keeps_its_lease_while_it_works(app):
    t0 = datetime.now(UTC)
    submit(app, 1, t0)
    lease = timedelta(seconds=1)
    entries = outbox.claim_due(app.services.engine, now=t0, lease=lease)

    def locked_until():
        with session_scope(app.services.engine) as s:
            return s.execute(sa.select(OutboxEntry.locked_until)).scalar_one()

    with outbox.keep_leased(app.services.engine, entries, claimed_at=t0, lease=lease,
                            every=timedelta(milliseconds=20)):
        renewed = wait_for(lambda: locked_until() > t0 + lease and locked_until(), what="the lease renewed")
        # Another worker looking when the first lease would have run out finds nothing to take.
        assert outbox.claim_due(app.services.engine, now=t0 + lease) == []
    after = locked_until()
    assert after >= renewed  # renewals stopped with the work; the lease then runs out on its own
    assert len(outbox.claim_due(app.services.engine, now=after + timedelta(seconds=1))) == 1


def test_a_429_from_gitlab_holds_back_every_gitlab_entry(app, fake_gitlab):
    t0 = datetime.now(UTC)
    submit(app, 1, t0)
    fake_gitlab.fail("POST", ISSUE_CREATE, status=429, retry_after=60, times=1)
    run_once(app.settings, t0)
    assert len(fake_gitlab.calls_matching("POST", ISSUE_CREATE)) == 1

    # A second request arrives while GitLab has asked for a minute's quiet: it waits too.
    submit(app, 1, t0 + timedelta(seconds=5))
    run_once(app.settings, t0 + timedelta(seconds=5))
    assert len(fake_gitlab.calls_matching("POST", ISSUE_CREATE)) == 1

    run_once(app.settings, t0 + timedelta(seconds=61))
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 2


def test_a_429_from_slack_holds_back_slack_but_not_gitlab(app, fake_gitlab, fake_slack):
    t0 = datetime.now(UTC)
    submit(app, 1, t0)
    fake_slack.fail("chat.postMessage", status=429, retry_after=60, times=1)
    run_once(app.settings, t0)  # the issue lands; the card is told to wait
    posts = len(fake_slack.calls_to("chat.postMessage"))

    submit(app, 1, t0 + timedelta(seconds=5))
    run_once(app.settings, t0 + timedelta(seconds=5))
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 2  # GitLab is not held
    assert len(fake_slack.calls_to("chat.postMessage")) == posts  # Slack is

    run_once(app.settings, t0 + timedelta(seconds=61))
    assert len(fake_slack.messages_in("C0AMEREAST", top_level_only=True)) == 2


def test_a_pass_longer_than_the_lease_leases_every_batch_from_its_own_claim(app, fake_gitlab, fake_slack):
    """A worker draining a backlog for minutes claims batch after batch in one pass. Each batch is leased
    from when it was claimed, so an entry being delivered is never free for a second worker to take (seen
    with 2,000 submissions: late batches were leased already expired, and DMs went out twice)."""
    with freeze_time("2026-12-01 15:00:00") as frozen:
        submit(app, 4, datetime.now(UTC))
        expired: list[str] = []

        def slow_slack(method: str) -> None:
            # Every Slack call takes 1.5 s of the clock: a batch's calls stay within its 15 s lease (renewed
            # on the real clock, so not here), the pass's do not. The entry behind each call must be leased.
            frozen.tick(1.5)
            now = datetime.now(UTC)
            with session_scope(app.services.engine) as s:
                stale = s.execute(sa.select(OutboxEntry.id, OutboxEntry.kind).where(
                    OutboxEntry.done_at.is_(None), OutboxEntry.locked_until.is_not(None),
                    OutboxEntry.locked_until <= now)).all()
            expired.extend(f"{kind} {entry_id} during {method} at {now:%H:%M:%S}" for entry_id, kind in stale)

        fake_slack.on_call(slow_slack)
        try:
            run_once(app.settings)
        finally:
            fake_slack.on_call(None)
    assert fake_slack.calls_to("chat.postMessage"), "the pass posted cards and DMs"
    assert expired == [], "\n".join(expired)


def test_a_429_holds_back_the_rest_of_the_batch_that_met_it(app, fake_gitlab, fake_slack):
    """Twenty cards go out in one batch on the worker's threads. Slack's first answer is "wait": the
    entries not yet started in that batch wait too (the notifier holds the method back for the
    Retry-After), instead of each being refused in turn."""
    t0 = datetime.now(UTC)
    submit(app, 20, t0)
    app.services.deliver_due(tracker=build_tracker(app.settings), notifier=None, now=t0)  # the issues only
    fake_slack.clear_calls()
    fake_slack.fail("chat.postMessage", status=429, retry_after=30, times=DELIVERY_THREADS)
    app.services.deliver_due(tracker=None, notifier=build_notifier(app.settings), now=t0 + timedelta(seconds=1))
    # At most the calls already under way on the other delivery threads when the 429 came back.
    assert 1 <= len(fake_slack.calls_to("chat.postMessage")) <= DELIVERY_THREADS

    for k in range(1, 10):  # then they all go, once each (a 429 left queued in the fake may hold one pass)
        run_once(app.settings, t0 + k * timedelta(seconds=32))
    assert len(fake_slack.messages_in("C0AMEREAST", top_level_only=True)) == 20


def test_an_empty_kinds_list_claims_nothing_not_everything(app):
    """A worker with no service configured asks for no kinds: that must claim nothing (no filter claimed every
    entry, and the Slack ones then ran with no Slack client)."""
    t0 = datetime.now(UTC)
    submit(app, 1, t0)
    assert outbox.claim_due(app.services.engine, now=t0, kinds=[]) == []
    assert outbox.claim_due(app.services.engine, now=t0, kinds=[outbox.Kind.POST]) == []
    assert len(outbox.claim_due(app.services.engine, now=t0)) == 1
