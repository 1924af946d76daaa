"""Issue 10: the weekly digest to leaders_channel, exactly once per week, through run_once(settings, now)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.conftest import BOT_TOKEN, CONFIG_TOML, LEADERS_CHANNEL, SA1, make_settings
from tests.leaders.seed import NOW, at
from triage.worker import run_once

DIGEST = '\n[digest]\nday = "monday"\nhour = 9\ntimezone = "UTC"\n'
SLOT = at(9, 9)  # Monday 9 November 09:00 UTC; NOW is 12:00 that day


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "triage.toml"
    path.write_text(CONFIG_TOML.replace("[sla]", DIGEST + "\n[sla]", 1))
    return path


def worker_settings(history_settings, fake_slack):
    return make_settings(DATABASE_URL=history_settings.database_url, TRIAGE_CONFIG=str(history_settings.triage_config),
                         SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake_slack.url, TRIAGE_EMBEDDED_WORKER=False)


def digests(fake_slack) -> list[dict]:
    return [m for m in fake_slack.messages_in(LEADERS_CHANNEL) if "Weekly SLA digest" in m.get("text", "")]


def test_the_digest_says_what_leaders_need(history, history_settings, fake_slack):
    _, ids = history
    run_once(worker_settings(history_settings, fake_slack), NOW)
    [digest] = digests(fake_slack)
    text = digest["text"]
    assert "Weekly SLA digest: Mon 02 Nov to Sun 08 Nov 2026" in text
    # Last week 50% (2 of 4); the week before (Oct 26..Nov 1) only R6, in time.
    assert "*All queues*: 50% (2/4) allocated within SLA, 100% (1/1) the week before :arrow_down:" in text
    assert "• *AMER East*: 50% (2/4), was 100% (1/1) :arrow_down:" in text
    assert "• *EMEA*: no allocations, was no allocations" in text
    assert f"SAR-{ids['R5']}" in text and "Stark Industries" in text
    assert f"*Most loaded SAs*: <@{SA1}> 3 open" in text
    assert "No SA had capacity 1 · Seen too late 1 · not recorded yet 1" in text


def test_the_digest_gives_the_technical_win_rates(history, outcomes, history_settings, fake_slack):
    run_once(worker_settings(history_settings, fake_slack), NOW)
    [digest] = digests(fake_slack)
    assert ("*Technical wins*: Technical win rate 60% (3 of 5, counting 1 withdrawal) · 75% leaving withdrawals out"
            in digest["text"])
    assert ("• *AMER East*: Technical win rate 50% (2 of 4, counting 1 withdrawal) · 67% leaving withdrawals out"
            in digest["text"])


def test_each_slot_is_sent_once_and_not_before_its_hour(history, history_settings, fake_slack):
    settings = worker_settings(history_settings, fake_slack)
    run_once(settings, SLOT - timedelta(minutes=1))
    # At 08:59 this Monday the latest slot is last Monday's, which this fresh database never sent: it goes
    # out once (for the week before that); this Monday's waits for 09:00.
    first = digests(fake_slack)
    assert len(first) == 1 and "26 Oct to Sun 01 Nov" in first[0]["text"]
    run_once(settings, SLOT)
    run_once(settings, SLOT + timedelta(hours=2))
    assert len(digests(fake_slack)) == 2 and "02 Nov to Sun 08 Nov" in digests(fake_slack)[-1]["text"]


def test_a_missed_slot_is_sent_once_when_the_worker_is_back(history, history_settings, fake_slack):
    settings = worker_settings(history_settings, fake_slack)
    run_once(settings, SLOT)
    assert len(digests(fake_slack)) == 1
    # The worker is down from Sunday to Wednesday 16 Nov 15:00, past Monday the 16th's slot.
    back = at(18, 15)
    run_once(settings, back)
    run_once(settings, back + timedelta(minutes=5))  # a restart: a new process, the same database
    sent = digests(fake_slack)
    assert len(sent) == 2 and "09 Nov to Sun 15 Nov" in sent[-1]["text"]


@pytest.mark.postgres
def test_two_workers_on_postgres_send_it_once(pg_url, config_path, fake_slack):
    from tests.leaders import seed as seeded
    from triage.db import make_engine
    from triage.migrate import upgrade
    from triage.services import Services

    settings = make_settings(DATABASE_URL=pg_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
                             SLACK_API_URL=fake_slack.url, TRIAGE_EMBEDDED_WORKER=False)
    upgrade(pg_url)
    engine = make_engine(pg_url)
    seeded.seed(Services(settings, engine))
    engine.dispose()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker():
        try:
            start.wait()
            run_once(settings, NOW)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for later in (NOW + timedelta(minutes=1), NOW + timedelta(days=1)):
        run_once(settings, later)
    assert len(digests(fake_slack)) == 1


def test_without_slack_the_digest_waits_in_the_outbox_until_slack_is_configured(config_path, sqlite_url, fake_slack,
                                                                                caplog):
    """No SLACK_BOT_TOKEN (and no GitLab token): the worker enqueues the digest, attempts nothing with Slack,
    logs no traceback pass after pass, and the entry is delivered once Slack is configured."""
    import logging

    import sqlalchemy as sa

    from triage.db import make_engine
    from triage.migrate import upgrade
    from triage.models import OutboxEntry

    upgrade(sqlite_url)
    no_slack = make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), TRIAGE_EMBEDDED_WORKER=False)
    assert not no_slack.slack_bot_token and not no_slack.gitlab_configured
    caplog.set_level(logging.INFO)
    for later in (NOW, NOW + timedelta(minutes=1), NOW + timedelta(hours=1)):
        run_once(no_slack, later)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.text

    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            [entry] = conn.execute(sa.select(OutboxEntry.__table__).where(
                OutboxEntry.dedupe_key.startswith("digest:"))).mappings().all()
        assert entry["done_at"] is None and entry["attempts"] == 0 and entry["last_error"] is None
        assert digests(fake_slack) == []

        with_slack = make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
                                   SLACK_API_URL=fake_slack.url, TRIAGE_EMBEDDED_WORKER=False)
        run_once(with_slack, NOW + timedelta(hours=2))
        run_once(with_slack, NOW + timedelta(hours=3))
        assert len(digests(fake_slack)) == 1
        with engine.connect() as conn:
            assert conn.execute(sa.select(OutboxEntry.done_at).where(
                OutboxEntry.id == entry["id"])).scalar_one() is not None
    finally:
        engine.dispose()
