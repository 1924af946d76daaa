"""Rate limits (429 + Retry-After): the worker waits out what it is told, for every entry under the limit,
and a refused attempt costs no extra call on the retry. Time is driven by the worker's `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from slack_sdk import WebClient

from tests.conftest import AMER_CHANNEL, BOT_TOKEN
from tests.flows.test_reliability import ISSUE_CREATE, assert_landed_once, cards, file_request, issue_posts, worker
from triage import outbox
from triage.db import make_engine
from triage.models import OutboxEntry
from triage.worker import run_once


def test_rate_limited_card_is_retried_without_looking_for_it(client, fake_slack, fake_gitlab, settings):
    """A 429 means Slack posted nothing, so the retry posts straight away instead of first reading the
    channel's history (a Tier 3 call) for a card that cannot exist."""
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    t0 = file_request(client, fake_slack)
    run_once(settings, t0)
    run_once(settings, t0 + timedelta(seconds=31))
    assert_landed_once(fake_gitlab, fake_slack)
    assert fake_slack.calls_to("conversations.history") == []


def test_rate_limited_issue_is_retried_without_searching_for_it(client, fake_slack, fake_gitlab, settings):
    fake_gitlab.fail("POST", ISSUE_CREATE, status=429, retry_after=60)
    t0 = file_request(client, fake_slack)
    run_once(settings, t0)
    run_once(settings, t0 + timedelta(seconds=61))
    assert_landed_once(fake_gitlab, fake_slack, queued=1)  # the AE is told once it is saved and queued
    searches = [c for c in fake_gitlab.calls_matching("GET", r"/projects/[^/]+/issues$") if "search" in c.query]
    assert searches == []  # no search for the marker of an issue GitLab refused to create


def waiting_until(settings) -> list[datetime]:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as c:
            return list(c.execute(sa.select(OutboxEntry.next_attempt_at).where(OutboxEntry.done_at.is_(None)))
                        .scalars())
    finally:
        engine.dispose()


def test_one_429_holds_back_every_card_of_that_worker(client, fake_slack, fake_gitlab, settings):
    for opp in ("0065g00000AbCdEAAV", "006BN0000000001", "006BN0000000002"):
        file_request(client, fake_slack, opportunity=opp)
    now = datetime.now(UTC)
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    with worker(settings) as w:
        w.services.deliver_due(tracker=w.tracker, notifier=None, now=now)  # three issues; three cards wait
        before = len(fake_slack.calls_to("chat.postMessage"))
        report = w.services.deliver_due(tracker=w.tracker, notifier=w.notifier, now=now, threads=1)
    assert report.retried == 3 and report.delivered == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == before + 1, "asked Slack again while told to wait"
    assert all(when >= now + timedelta(seconds=29) for when in waiting_until(settings))


def test_one_429_holds_back_every_new_issue_of_that_worker(client, fake_slack, fake_gitlab, settings):
    for opp in ("0065g00000AbCdEAAV", "006BN0000000001", "006BN0000000002"):
        file_request(client, fake_slack, opportunity=opp)
    fake_gitlab.fail("POST", ISSUE_CREATE, status=429, retry_after=60)
    now = datetime.now(UTC)
    with worker(settings) as w:
        report = w.services.deliver_due(tracker=w.tracker, notifier=w.notifier, now=now, threads=1)
    assert report.retried == 3
    assert issue_posts(fake_gitlab) == 1
    run_once(settings, now + timedelta(seconds=61))
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 3


def test_card_lost_behind_a_busy_channel_is_still_found(client, fake_slack, fake_gitlab, settings):
    """Slack posted the card but the answer was lost; by the retry, 250 other messages were posted (a
    burst): the retry reads back page by page, finds the card and posts no second one."""
    t0 = file_request(client, fake_slack)
    fake_slack.set_delay("chat.postMessage", 3)  # longer than the worker's client timeout: answer lost
    with worker(settings) as w:
        w.notifier.client.timeout = 1
        run_once_with(w, t0)
    fake_slack.set_delay("chat.postMessage", 0)
    assert len(cards_in(fake_slack)) == 1
    poster = WebClient(token=BOT_TOKEN, base_url=fake_slack.url)
    for i in range(250):
        poster.chat_postMessage(channel=AMER_CHANNEL, text=f"busy {i}")
    run_once(settings, t0 + timedelta(minutes=5))
    cards = [m for m in cards_in(fake_slack) if (m.get("metadata") or {}).get("event_type") == "triage_request"]
    assert len(cards) == 1
    # (with pages of 200, as before, the card was not on the first page and was posted again)


def run_once_with(w, now):
    w.run_once(now)


def cards_in(fake_slack):
    return fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)


def test_a_429_told_to_one_worker_holds_back_what_another_worker_had_already_claimed(
        client, fake_slack, fake_gitlab, settings):
    """Two worker processes: B has claimed three cards when A is told to wait (429, Retry-After 30 s). The
    Retry-After counts for the app's token, so B posts none of its three until it ends; then all land."""
    for opp in ("0065g00000AbCdEAAV", "006BN0000000001", "006BN0000000002", "006BN0000000003"):
        file_request(client, fake_slack, opportunity=opp)
    now = datetime.now(UTC)
    with worker(settings) as a, worker(settings) as b:
        a.services.deliver_due(tracker=a.tracker, notifier=None, now=now)  # four issues; four cards wait
        claimed_by_b = outbox.claim_due(b.services.engine, now=now, limit=3, kinds=[outbox.Kind.POST_CARD])
        assert len(claimed_by_b) == 3
        fake_slack.fail("chat.postMessage", status=429, retry_after=30)
        report = a.services.deliver_due(tracker=a.tracker, notifier=a.notifier, now=now, threads=1)
        assert report.retried == 1  # A's one card: refused
        posts = len(fake_slack.calls_to("chat.postMessage"))
        for entry in claimed_by_b:
            assert b.services._deliver_one(entry, tracker=b.tracker, notifier=b.notifier, now=now) == ""
        assert len(fake_slack.calls_to("chat.postMessage")) == posts, "B called Slack inside A's Retry-After"
        assert all(when >= now + timedelta(seconds=29) for when in waiting_until(settings))
    run_once(settings, now + timedelta(seconds=31))
    assert len(cards(fake_slack)) == 4
