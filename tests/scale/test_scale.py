"""Horizontal scale on PostgreSQL: two `web` and two `worker` processes as the Procfile runs them.

A burst of signed submissions of the app's own modal, spread over both web processes, must give exactly
one GitLab issue, one channel card and one DM per submission, and every SLA notification once, also with
a worker SIGKILLed mid-burst, a web process SIGKILLed mid-burst, PostgreSQL restarted mid-burst, and
Slack and GitLab enforcing their rate limits.

Sizes: TRIAGE_SCALE_N submissions per test (CI default: 150 for the plain burst, 100 for the others), e.g.
`TRIAGE_SCALE_N=2000 pytest tests/scale` for the full size (see README, "Development").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import BOT_TOKEN, GITLAB_TOKEN
from tests.fakes.gitlab_api import FakeGitLab
from tests.fakes.slack_api import FakeSlack
from tests.scale.cluster import (
    LEADERS,
    Balancer,
    Cluster,
    Layout,
    landed,
    open_modal,
    percentile,
    scale_n,
    send_burst,
    shift_clock,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.scale]

LAYOUT = Layout()


@pytest.fixture
def fakes():
    with FakeSlack(token=BOT_TOKEN) as slack, FakeGitLab(token=GITLAB_TOKEN) as gitlab:
        LAYOUT.seed(slack, gitlab)
        yield slack, gitlab


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "scale.toml"
    path.write_text(LAYOUT.toml())
    return path


def drain_timeout(n: int) -> float:
    return 120 + n * 0.25


def assert_exactly_once(result, n: int, acked: set[int]) -> None:
    """One issue, one card and one DM per stored request, a request per acknowledged submission."""
    assert {f"VSC{i:08d}" for i in acked} <= result.submission_keys, "an acknowledged submission was lost"
    assert result.requests == len(result.submission_keys) == n
    assert result.outbox_waiting == 0
    assert len(result.issues) == n and set(result.issues.values()) == {1}, "missing or duplicate issues"
    assert result.issue_posts == n, "an issue was created twice (one removed later would still be a duplicate)"
    assert len(result.cards) == n and set(result.cards.values()) == {1}, "missing or duplicate cards"
    assert len(result.dms) == n and set(result.dms.values()) == {1}, "missing or duplicate DMs"
    assert set(result.issues) == set(result.cards) == set(result.dms)


def run_burst(cluster: Cluster, slack: FakeSlack, n: int, *, midway=None, concurrency: int = 16):
    view = open_modal(cluster, slack, LAYOUT.ae(0))
    balancer = Balancer([cluster.url(w) for w in cluster.webs])
    fired = threading.Event()

    def progress(k: int) -> None:
        if midway and k >= n // 3 and not fired.is_set():
            fired.set()
            threading.Thread(target=midway, args=(balancer,), daemon=True).start()

    outcomes = send_burst(balancer, view, LAYOUT, n, concurrency=concurrency, on_progress=progress)
    return outcomes, balancer


def finish(cluster: Cluster, slack: FakeSlack, gitlab: FakeGitLab, db: str, n: int, outcomes) -> None:
    acked = {o.index for o in outcomes if o.acked}
    refused = [o for o in outcomes if not o.acked]
    assert not refused, f"{len(refused)} submissions never acknowledged, e.g. {refused[:3]}"
    result = wait_until("every submission to land", lambda: (r := landed(db, slack, gitlab, LAYOUT)).complete(n)
                        and r, timeout=drain_timeout(n), cluster=cluster,
                        detail=lambda: str(landed(db, slack, gitlab, LAYOUT).__dict__.keys()))
    assert_exactly_once(result, n, acked)


def sla_notifications_once(cluster: Cluster, slack: FakeSlack, db: str, n: int) -> None:
    """13 h on (past the 50% reminder of a 24 h SLA), then 12 h more (past the deadline): each request's
    thread gets one reminder, then one breach notice, and the leaders' channel one post per request."""
    def threads() -> Counter:
        per: Counter = Counter()
        for q in range(LAYOUT.queues):
            for m in slack.messages_in(LAYOUT.channel(q)):
                if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                    per[(m["channel"], m["thread_ts"], "breach" if "missed its" in m["text"] else "reminder")] += 1
        return per

    shift_clock(db, 13)
    wait_until("a 50% reminder in every thread", lambda: sum(1 for k in threads() if k[2] == "reminder") >= n,
               timeout=drain_timeout(n), cluster=cluster)
    shift_clock(db, 12)
    wait_until("a breach notice in every thread and the leaders' channel",
               lambda: sum(1 for k in threads() if k[2] == "breach") >= n
               and len(slack.messages_in(LEADERS)) >= n and outbox_empty(db),
               timeout=drain_timeout(n), cluster=cluster)
    per = threads()
    assert sum(1 for k in per if k[2] == "reminder") == n and sum(1 for k in per if k[2] == "breach") == n
    assert set(per.values()) == {1}, "an SLA notification was sent twice"
    leaders = Counter(json.dumps(m["text"]).split("SLA missed: ")[1].split("*")[0] for m in slack.messages_in(LEADERS))
    assert len(leaders) == n and set(leaders.values()) == {1}


def outbox_empty(db: str) -> bool:
    engine = sa.create_engine(db, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return c.execute(sa.text("select count(*) from outbox where done_at is null")).scalar_one() == 0
    finally:
        engine.dispose()


def report(name: str, outcomes, started: float, finished: float) -> None:
    acks = [o.ack_ms for o in outcomes if o.ack_ms is not None]
    retried = sum(1 for o in outcomes if o.attempts > 1)
    print(f"\n[scale] {name}: {len(outcomes)} submissions, ack p50 {percentile(acks, 50):.0f} ms, "
          f"p99 {percentile(acks, 99):.0f} ms, {retried} retried by Slack, all landed "
          f"{finished - started:.1f} s after the first was sent")


# ----------------------------------------------------------------------------- the tests


def test_burst_over_two_webs_and_two_workers_lands_exactly_once(pg_url, fakes, config_file, tmp_path):
    slack, gitlab = fakes
    n = scale_n(150)
    with Cluster(database_url=pg_url, config_path=config_file, slack=slack, gitlab=gitlab,
                 log_dir=tmp_path) as cluster:
        t0 = time.monotonic()
        outcomes, _ = run_burst(cluster, slack, n)
        served = Counter(o.url for o in outcomes)
        assert len(served) == 2 and min(served.values()) >= n // 3, f"both web processes take a share: {served}"
        finish(cluster, slack, gitlab, pg_url, n, outcomes)
        report("two webs, two workers", outcomes, t0, time.monotonic())
        assert all(o.attempts == 1 for o in outcomes), "nothing failed, so Slack had nothing to retry"
        sla_notifications_once(cluster, slack, pg_url, n)


def test_worker_sigkilled_mid_burst_and_restarted(pg_url, fakes, config_file, tmp_path):
    slack, gitlab = fakes
    n = scale_n(100)
    with Cluster(database_url=pg_url, config_path=config_file, slack=slack, gitlab=gitlab,
                 log_dir=tmp_path) as cluster:
        def kill_worker(_balancer) -> None:
            # Wait until this worker is mid-delivery (it has taken entries), then kill it without warning.
            wait_until("worker0 to hold a lease", lambda: leased(pg_url) > 0, timeout=30)
            cluster.workers[0].kill()
            time.sleep(1.0)
            cluster.workers[0].start()

        t0 = time.monotonic()
        outcomes, _ = run_burst(cluster, slack, n, midway=kill_worker)
        finish(cluster, slack, gitlab, pg_url, n, outcomes)
        report("worker SIGKILLed and restarted", outcomes, t0, time.monotonic())
        assert cluster.workers[0].starts == 2
        sla_notifications_once(cluster, slack, pg_url, n)


def leased(db: str) -> int:
    engine = sa.create_engine(db, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return c.execute(sa.text("select count(*) from outbox where done_at is null "
                                     "and locked_until is not null")).scalar_one()
    finally:
        engine.dispose()


def test_web_sigkilled_mid_burst_loses_nothing(pg_url, fakes, config_file, tmp_path):
    slack, gitlab = fakes
    n = scale_n(100)
    with Cluster(database_url=pg_url, config_path=config_file, slack=slack, gitlab=gitlab,
                 log_dir=tmp_path) as cluster:
        victim = cluster.webs[1]

        def kill_web(balancer: Balancer) -> None:
            victim.kill()  # requests in flight on it get no answer; Slack retries them
            balancer.down.add(cluster.url(victim))  # the load balancer notices after its health check fails

        t0 = time.monotonic()
        outcomes, _ = run_burst(cluster, slack, n, midway=kill_web)
        finish(cluster, slack, gitlab, pg_url, n, outcomes)
        report("web SIGKILLed", outcomes, t0, time.monotonic())
        assert not victim.alive
        retried = [o for o in outcomes if o.attempts > 1]
        # A retried submission whose first delivery was stored before the kill is the same request, once.
        assert all(o.acked for o in retried)


def cluster_of(port: int) -> tuple[str, str] | None:
    """(version, name) of the local cluster listening on `port`, from pg_lsclusters."""
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == str(port) and parts[3] == "online":
            return parts[0], parts[1]
    return None


def pg_restart(version: str, name: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m", "fast"],
                   check=True, capture_output=True, timeout=60)


def pg_ensure_up(version: str, name: str, url: str) -> None:
    """Whatever happened, the server is answering again before the test ends."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with engine.connect() as c:
                    c.execute(sa.text("select 1"))
                return
            except sa.exc.OperationalError:
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
                               capture_output=True, check=False, timeout=60)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()


def test_postgres_restarted_mid_burst(pg_url, fakes, config_file, tmp_path):
    slack, gitlab = fakes
    n = scale_n(100)
    if not (os.environ.get("CI") or os.environ.get("TRIAGE_TEST_PG_RESTART")):
        pytest.skip("restarts the PostgreSQL server, which would disturb other test runs on this machine: "
                    "set TRIAGE_TEST_PG_RESTART=1 (CI runs it) and point TRIAGE_TEST_POSTGRES_URL at a server "
                    "of your own")
    port = sa.engine.make_url(pg_url).port or 5432
    found = cluster_of(port)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to restart the PostgreSQL on port {port} (pg_ctlcluster)")
        pytest.skip(f"no local PostgreSQL cluster on port {port} that pg_ctlcluster can restart")
    try:
        with Cluster(database_url=pg_url, config_path=config_file, slack=slack, gitlab=gitlab,
                     log_dir=tmp_path) as cluster:
            restarted = threading.Event()

            def restart(_balancer) -> None:
                pg_restart(*found)
                restarted.set()

            t0 = time.monotonic()
            outcomes, _ = run_burst(cluster, slack, n, midway=restart)
            assert restarted.wait(60)
            finish(cluster, slack, gitlab, pg_url, n, outcomes)
            report("PostgreSQL restarted", outcomes, t0, time.monotonic())
            # Each process reconnected by itself, and /healthz says what happened.
            for web in cluster.webs:
                health = httpx.get(cluster.url(web) + "/healthz", timeout=5).json()
                assert health["database"]["ok"] is True
                assert "reconnected" in health["database"]["detail"], health["database"]
            assert all(w.alive for w in [*cluster.webs, *cluster.workers])
            sla_notifications_once(cluster, slack, pg_url, n)
    finally:
        pg_ensure_up(*found, pg_url)
